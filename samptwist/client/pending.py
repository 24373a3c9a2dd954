"""
The client's calls waiting for responses (asynchronous pattern, CLI-LIB-5):
fresh msg-tags, one L{Pending} record per C{call}/C{callAll}, their
time-outs and cancellation, and the listeners of low-level calls whose
msg-tag the application chose.

L{PendingCalls} knows nothing of the hub or of L{SAMPClient}: it is given a
clock, and for each call a function that sends it under a msg-tag.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, List, Optional

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from .._log import Logger
from .errors import BroadcastTimeout
from .handlers import raise_for_status

#: C{on_response(responder_id, response)} for each response to a callAll.
ResponseCallback = Callable[[str, Dict[str, Any]], Any]

#: C{listener(responder_id, msg_tag, response)} for responses to a msg-tag.
ResponseListener = Callable[[str, str, Dict[str, Any]], Any]


class Pending:
    """
    A call (or callAll) waiting for its response(s), keyed by msg-tag.

    @ivar d: the L{Deferred} handed to the caller.
    @ivar hub_call: the request to the hub that sent it, while in flight.
    @ivar recipients: for a callAll, the recipients the hub named.
    """

    def __init__(
        self,
        calls: PendingCalls,
        tag: str,
        broadcast: bool,
        on_response: Optional[ResponseCallback] = None,
    ) -> None:
        self.calls = calls
        self.tag = tag
        self.broadcast = broadcast
        self.on_response = on_response
        self.responses: Dict[str, Dict[str, Any]] = {}
        self.recipients: Optional[List[str]] = None
        self.hub_call: Optional[Deferred] = None
        self.d: Deferred = Deferred(self._cancel)

    def _cancel(self, _: Deferred) -> None:
        self.calls.discard(self.tag)
        if self.hub_call is not None and not self.hub_call.called:
            self.hub_call.cancel()

    def got(self, responder: str, response: Dict[str, Any]) -> None:
        """
        A response arrived: a call is answered (failing with
        L{SAMPCallError} for C{samp.error}); a callAll collects it.
        """
        if self.d.called:
            return
        if not self.broadcast:
            self.calls.discard(self.tag)
            try:
                self.d.callback(raise_for_status(response, responder))
            except Exception:
                self.d.errback()
            return
        self.responses[responder] = response
        if self.on_response is not None:
            try:
                self.on_response(responder, response)
            except Exception:
                self.calls.log.failure("callAll on_response callback failed")
        self._check_done()

    def sent(self, recipients: Any) -> None:
        """
        The hub accepted a callAll and named its recipients (a map id to
        msg-id).
        """
        if self.broadcast and not self.d.called:
            self.recipients = sorted(recipients) if isinstance(recipients, dict) else []
            self._check_done()

    def _check_done(self) -> None:
        if self.recipients is not None and set(self.recipients) <= set(self.responses):
            self.calls.discard(self.tag)
            self.d.callback(dict(self.responses))

    def fail(self, f: Failure) -> None:
        """
        Give up: fail L{d} with C{f} (unless it fired already).
        """
        self.calls.discard(self.tag)
        if not self.d.called:
            self.d.errback(f)

    def timed_out(self, result: Any, timeout: float) -> Any:
        """
        C{onTimeoutCancel} for L{Deferred.addTimeout}: a call fails with
        L{TimeoutError}, a callAll with L{BroadcastTimeout} carrying the
        responses that did arrive.
        """
        if isinstance(result, Failure) and result.check(CancelledError):
            if self.broadcast:
                missing = [r for r in self.recipients or [] if r not in self.responses]
                return Failure(BroadcastTimeout(dict(self.responses), missing))
            return Failure(TimeoutError(f"no response within {timeout:g}s"))
        return result


class PendingCalls:
    """
    The calls of one client waiting for responses, and the listeners of
    msg-tags the application chose (L{listen}).

    C{len(calls)} is the number of calls waiting.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        """
        @param clock: runs the time-outs.
        """
        self.clock = clock
        self._calls: Dict[str, Pending] = {}
        self._listeners: Dict[str, ResponseListener] = {}
        self._counter = 0
        self._prefix = "st" + secrets.token_hex(3)

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, msg_tag: object) -> bool:
        return msg_tag in self._calls

    def new_tag(self) -> str:
        """
        @return: a msg-tag not used before by this client.
        """
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    def track(
        self,
        send: Callable[[str], Deferred],
        *,
        broadcast: bool,
        timeout: Optional[float],
        on_response: Optional[ResponseCallback] = None,
    ) -> Deferred:
        """
        Send a call under a fresh msg-tag and wait for its response(s).

        @param send: sends the call with the msg-tag it is given; a
            L{Deferred} firing with the hub's answer (for a callAll: the
            map recipient id to msg-id), or failing.
        @param broadcast: a callAll (responses collected per recipient)
            rather than a call.
        @param timeout: seconds to wait for the response(s); C{None}: no
            limit.
        @return: a cancellable L{Deferred} firing with the response (call;
            failing with L{SAMPCallError} for C{samp.error}) or with the map
            recipient id to response (callAll); failing as C{send}'s does,
            with L{TimeoutError} (call) or L{BroadcastTimeout} (callAll)
            after C{timeout}, or as given to L{fail_all}.
        """
        pending = Pending(self, self.new_tag(), broadcast, on_response)
        # Recorded before sending, so that an instant response finds it.
        self._calls[pending.tag] = pending
        pending.hub_call = send(pending.tag)
        if broadcast:
            pending.hub_call.addCallbacks(pending.sent, pending.fail)
        else:
            pending.hub_call.addErrback(pending.fail)
        if timeout is not None:
            pending.d.addTimeout(timeout, self.clock, onTimeoutCancel=pending.timed_out)
        return pending.d

    def discard(self, msg_tag: str) -> None:
        """
        Forget the call sent with C{msg_tag} (a later response is ignored).
        """
        self._calls.pop(msg_tag, None)

    def fail_all(self, reason: BaseException) -> None:
        """
        Fail every waiting call with C{reason} (the connection ended).
        """
        calls, self._calls = self._calls, {}
        for pending in calls.values():
            pending.fail(Failure(reason))

    def listen(self, msg_tag: str, listener: ResponseListener) -> None:
        """
        Call C{listener(responder_id, msg_tag, response)} for responses to
        C{msg_tag} (calls whose msg-tag the application chose).
        """
        self._listeners[msg_tag] = listener

    def unlisten(self, msg_tag: str) -> None:
        """
        Stop listening to C{msg_tag}.
        """
        self._listeners.pop(msg_tag, None)

    def route(self, responder_id: str, msg_tag: str, response: Dict[str, Any]) -> None:
        """
        Hand a response to the call waiting for it, else to C{msg_tag}'s
        listener; ignore it (late or cancelled) if there is neither.
        """
        pending = self._calls.get(msg_tag)
        if pending is not None:
            pending.got(responder_id, response)
            return
        listener = self._listeners.get(msg_tag)
        if listener is not None:
            try:
                listener(responder_id, msg_tag, response)
            except Exception:
                self.log.failure("response listener for {tag} failed", tag=msg_tag)
            return
        self.log.debug(
            "ignoring response from {responder} to {tag} (late or cancelled)",
            responder=responder_id,
            tag=msg_tag,
        )
