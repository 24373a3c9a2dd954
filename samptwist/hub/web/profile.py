"""
The Web Profile: the hub's methods as an XML-RPC resource with the
C{samp.webhub.} prefix (WEB-HTTP-3/4), registration through a consent
policy, pull-model callbacks, idle expiry, MType restrictions and URL
tracking.

Timings (documented in docs/web-profile.md):

  - a web client that makes no request for C{idle_timeout} seconds (default
    300; a parked C{pullCallbacks} counts as activity) is ejected with
    C{samp.hub.disconnect};
  - C{pullCallbacks} waits at most C{max_pull_wait} seconds (default 600);
  - at most C{max_queue} callbacks (default 1000) wait for one client; on
    overflow the client is ejected and the senders get delivery failures.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, maybeDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure
from twisted.web import server, xmlrpc

from ..._log import Logger
from ...errors import SAMPHubError, SAMPValueError
from ...mtype import check_mtype, subscription_for
from ...types import check_map, decode_int, samp_size
from ..core import HUB_ID, METADATA, SUBSCRIPTIONS, Client, Hub, _timeout_seconds
from ..httpguard import reject_unsafe_xml
from ..limits import over_limit
from .access import request_host_name
from .consent import ConsentRequest, IConsentPolicy, printable
from .queue import MAX_QUEUE, WebCallbackQueue
from .restrict import MessageRestriction
from .urls import UrlTracker

PREFIX = "samp.webhub."

#: Default seconds without any request after which a web client is ejected.
IDLE_TIMEOUT = 300.0
#: Default longest C{pullCallbacks} wait, in seconds.
MAX_PULL_WAIT = 600.0
#: Default seconds an ejected client's leftover callbacks (its
#: C{samp.hub.disconnect}) stay available to one last C{pullCallbacks}.
TOMBSTONE_TIME = 120.0


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(eq=False)
class WebClient:
    """
    What the Web Profile keeps about one registered web client.
    """

    client: Client
    token: str
    origin: Optional[str]
    permitted: Any
    queue: Optional[WebCallbackQueue] = None
    idle: Optional[IDelayedCall] = None
    polls: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


class WebProfile(xmlrpc.XMLRPC):
    """
    The Web Profile XML-RPC endpoint of a L{Hub}.

    Every method answers its SAMP result or an XML-RPC fault whose
    faultString says what was wrong; methods without a SAMP result answer
    C{""}.

    @ivar port: the port the site listens on, for translator URLs (set by
        the service once listening).
    """

    log = Logger()
    allowNone = False
    useDateTime = False

    def __init__(
        self,
        hub: Hub,
        consent: IConsentPolicy,
        reactor: Any,
        *,
        restriction: Optional[MessageRestriction] = None,
        tracker: Optional[UrlTracker] = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_queue: int = MAX_QUEUE,
        max_pull_wait: float = MAX_PULL_WAIT,
        max_clients: int = 100,
        max_consent_pending: int = 10,
        consent_timeout: float = 300.0,
        tombstone_time: float = TOMBSTONE_TIME,
    ) -> None:
        super().__init__(allowNone=False, useDateTime=False)
        self.hub = hub
        self.consent = consent
        self.reactor = reactor
        self.restriction = restriction or MessageRestriction()
        self.tracker = tracker or UrlTracker()
        self.idle_timeout = idle_timeout
        self.max_queue = max_queue
        self.max_pull_wait = max_pull_wait
        self.max_clients = max_clients
        self.max_consent_pending = max_consent_pending
        self.consent_timeout = consent_timeout
        self.tombstone_time = tombstone_time
        self.port: Optional[int] = None
        self._clients: Dict[str, WebClient] = {}
        self._by_token: Dict[bytes, WebClient] = {}
        self._tombstones: Dict[bytes, Tuple[str, WebCallbackQueue, IDelayedCall]] = {}
        self._consent_pending = 0
        hub.observe(self._observe)
        self._methods: Dict[str, Tuple[Callable[..., Any], int, int, bool]] = {
            "register": (self.register, 1, 1, True),
            "unregister": (self.unregister, 1, 1, False),
            "declareMetadata": (self.declareMetadata, 2, 2, False),
            "getMetadata": (self.getMetadata, 2, 2, False),
            "declareSubscriptions": (self.declareSubscriptions, 2, 2, False),
            "getSubscriptions": (self.getSubscriptions, 2, 2, False),
            "getRegisteredClients": (self.getRegisteredClients, 1, 1, False),
            "getSubscribedClients": (self.getSubscribedClients, 2, 2, False),
            "notify": (self.notify, 3, 3, False),
            "notifyAll": (self.notifyAll, 2, 2, False),
            "call": (self.call, 4, 4, False),
            "callAll": (self.callAll, 3, 3, False),
            "callAndWait": (self.callAndWait, 4, 4, False),
            "reply": (self.reply, 3, 3, False),
            "ping": (lambda *key: "", 0, 1, False),
            "allowReverseCallbacks": (self.allowReverseCallbacks, 2, 2, False),
            "pullCallbacks": (self.pullCallbacks, 2, 2, True),
        }

    # -- clients -------------------------------------------------------------

    @property
    def clients(self) -> List[WebClient]:
        """
        The registered web clients.
        """
        return list(self._clients.values())

    def _web(self, private_key: Any) -> WebClient:
        client = self.hub.client_for_key(private_key)
        state = self._clients.get(client.public_id)
        if client.profile != "web" or state is None or state.client is not client:
            # A Standard Profile key is not valid here; say no more than that.
            raise SAMPHubError("unknown or expired private key (register first)", code=5)
        self._touch(state)
        return state

    def for_token(self, token: str) -> Optional[WebClient]:
        """
        @return: the web client whose translator token is C{token}, or
            C{None} (compared in constant time).
        """
        state = self._by_token.get(_digest(token))
        if state is None or not secrets.compare_digest(
            state.token.encode("ascii"), token.encode("utf-8", "surrogatepass")
        ):
            return None
        return state

    def _touch(self, state: WebClient) -> None:
        if state.polls or not state.client.registered or self.idle_timeout <= 0:
            return
        if state.idle is not None and state.idle.active():
            state.idle.reset(self.idle_timeout)
        else:
            state.idle = self.reactor.callLater(self.idle_timeout, self._expire, state)

    def _pause_idle(self, state: WebClient) -> None:
        state.polls += 1
        if state.idle is not None and state.idle.active():
            state.idle.cancel()
        state.idle = None

    def _resume_idle(self, state: WebClient) -> None:
        state.polls -= 1
        self._touch(state)

    def _expire(self, state: WebClient) -> None:
        state.idle = None
        if state.client.registered:
            self.hub.eject(
                state.client,
                f"no request for {self.idle_timeout:g}s (web client stopped polling)",
            )

    def _overflow(self, state: WebClient, queue: WebCallbackQueue) -> None:
        self.log.warn(
            "callback queue of web client {client_id} ({name}) overflowed ({n} callbacks "
            "waiting); ejecting it",
            client_id=state.client.public_id,
            name=printable(state.client.name),
            n=queue.max_size,
        )
        self.reactor.callLater(
            0,
            self.hub.eject,
            state.client,
            f"callback queue overflow: more than {queue.max_size} callbacks waiting "
            "(the client stopped pulling them)",
        )

    def _filter_event(self, method: str, params: List[Any]) -> List[Any]:
        # samp.hub.event.subscriptions tells a page only the subscriptions it
        # may send to (ADM-SUBS-1 practice, as JSAMP does).
        if method != "receiveNotification" or params[0] != HUB_ID:
            return params
        message = params[1]
        if message.get("samp.mtype") != SUBSCRIPTIONS:
            return params
        event = message.get("samp.params") or {}
        subs = event.get("subscriptions")
        if not isinstance(subs, dict):
            return params
        shown = self.restriction.visible(subs)
        if shown is subs or len(shown) == len(subs):
            return params
        filtered = dict(message, **{"samp.params": dict(event, subscriptions=shown)})
        return [params[0], filtered]

    def _incoming(self, state: WebClient, method: str, params: List[Any]) -> None:
        # URL tracking (WEB-URL-3): only content from trusted clients
        # permits URLs; hub events vouch only for non-web clients' data.
        sender = self.hub._clients.get(params[0]) if isinstance(params[0], str) else None
        if sender is None or sender.profile == "web":
            return
        payload = params[-1]
        if sender.public_id == HUB_ID:
            mtype = payload.get("samp.mtype") if isinstance(payload, dict) else None
            if mtype != METADATA:
                return
            about = self.hub._clients.get(payload.get("samp.params", {}).get("id"))
            if about is None or about.profile == "web":
                return
        self.tracker.incoming(payload, state.permitted)

    def _observe(self, event: str, details: Dict[str, Any]) -> None:
        if event != "unregister":
            return
        client = details.get("client")
        if client is None or client.profile != "web":
            return
        state = self._clients.pop(client.public_id, None)
        if state is None:
            return
        self._by_token.pop(_digest(state.token), None)
        if state.idle is not None and state.idle.active():
            state.idle.cancel()
        state.idle = None
        queue = state.queue
        if queue is not None and len(queue) and details.get("reason") != "unregistered":
            key = client.private_key
            digest = _digest(key)
            timer = self.reactor.callLater(
                self.tombstone_time, self._tombstones.pop, digest, None
            )
            old = self._tombstones.pop(digest, None)
            if old is not None and old[2].active():
                old[2].cancel()
            self._tombstones[digest] = (key, queue, timer)

    def close(self) -> None:
        """
        Forget leftover state (the hub is stopping).
        """
        for _, _, timer in self._tombstones.values():
            if timer.active():
                timer.cancel()
        self._tombstones.clear()
        for state in self._clients.values():
            if state.idle is not None and state.idle.active():
                state.idle.cancel()

    # -- registration ------------------------------------------------------

    def register(self, request: Any, identity: Any) -> Deferred:
        """
        C{samp.webhub.register(identity-info)} (WEB-REG-*): ask the consent
        policy, then register.

        @param identity: a map with at least C{samp.name}, or (legacy) the
            application name as a string.
        @return: a L{Deferred} firing with the registration map (with
            C{samp.url-translator}), or failing with L{SAMPHubError} if
            consent was refused or the hub cannot take more web clients.
        """
        if isinstance(identity, str):
            self.log.info("Web Profile register() with a plain name (legacy form)")
            identity = {"samp.name": identity}
        check_map(identity, "identity-info")
        size, most = samp_size(identity), self.hub.limits.max_metadata_bytes
        if size > most:
            raise over_limit("identity-info", size, most, "bytes", "max-metadata-bytes")
        name = identity.get("samp.name")
        if not isinstance(name, str) or not name.strip():
            raise SAMPValueError("identity-info has no samp.name (the application's name)")
        if not self.hub.running:
            raise SAMPHubError("the hub is shutting down")
        if len(self._clients) >= self.max_clients:
            raise SAMPHubError(f"too many web clients ({self.max_clients}); try again later")
        if self._consent_pending >= self.max_consent_pending:
            raise SAMPHubError("too many registration requests are waiting; try again later")

        def header(name: bytes) -> Optional[str]:
            value = request.getHeader(name)
            return None if value is None else value.decode("latin-1")

        peer = getattr(request.getClientAddress(), "host", "?")
        ask = ConsentRequest(
            name=name,
            origin=header(b"origin"),
            referer=header(b"referer"),
            peer=str(peer),
            identity=identity,
        )
        self._consent_pending += 1
        decision = maybeDeferred(self.consent.request, ask)
        if self.consent_timeout > 0:
            decision.addTimeout(self.consent_timeout, self.reactor)
        request.notifyFinish().addErrback(lambda _: decision.cancel())
        host = request_host_name(request)

        def decided(allowed: Any) -> Dict[str, str]:
            self._consent_pending -= 1
            if isinstance(allowed, Failure):
                if allowed.check(TimeoutError):
                    raise SAMPHubError(
                        "registration refused: no answer in time (nobody allowed this page "
                        "on the hub's status page or terminal)",
                        code=7,
                    )
                if not allowed.check(CancelledError):
                    self.log.failure("consent policy failed; refusing", allowed)
                allowed = False
            if allowed is not True:
                raise SAMPHubError(
                    "registration refused: the user (or the hub's consent policy) did not allow "
                    "this page to use SAMP",
                    code=7,
                )
            return self._registered(ask, host)

        return decision.addBoth(decided)

    def _registered(self, ask: ConsentRequest, host: str) -> Dict[str, str]:
        if not self.hub.running:
            raise SAMPHubError("the hub is shutting down")
        client = self.hub.register("web")
        token = "t-" + secrets.token_urlsafe(24)
        state = WebClient(client, token, ask.origin, self.tracker.new_permitted())
        self._clients[client.public_id] = state
        self._by_token[_digest(token)] = state
        self._touch(state)
        self.log.info(
            "web client {client_id} registered: {name} from {origin}",
            client_id=client.public_id,
            name=printable(ask.name),
            origin=printable(ask.origin),
        )
        result = self.hub.registration_map(client)
        port = f":{self.port}" if self.port is not None else ""
        result["samp.url-translator"] = f"http://{host}{port}/translator/{token}?ref="
        return result

    def unregister(self, private_key: Any) -> str:
        """
        C{samp.webhub.unregister(private-key)}.
        """
        self._web(private_key)
        self.hub.unregister(private_key)
        return ""

    # -- metadata and subscriptions ---------------------------------------

    def declareMetadata(self, private_key: Any, metadata: Any) -> str:
        state = self._web(private_key)
        self.hub.declare_metadata(private_key, metadata)
        self.tracker.outgoing(metadata, state.permitted)
        return ""

    def getMetadata(self, private_key: Any, client_id: Any) -> Dict[str, Any]:
        state = self._web(private_key)
        metadata = self.hub.get_metadata(private_key, client_id)
        if self.hub.client_by_id(client_id).profile != "web":
            self.tracker.incoming(metadata, state.permitted)
        return metadata

    def declareSubscriptions(self, private_key: Any, subscriptions: Any) -> str:
        self._web(private_key)
        self.hub.declare_subscriptions(private_key, subscriptions)
        return ""

    def getSubscriptions(self, private_key: Any, client_id: Any) -> Dict[str, Any]:
        """
        Like the Standard Profile's, but only the entries the caller may send
        to (WEB-SEC-5, ADM-SUBS-1).
        """
        self._web(private_key)
        return self.restriction.visible(self.hub.get_subscriptions(private_key, client_id))

    def getRegisteredClients(self, private_key: Any) -> List[str]:
        self._web(private_key)
        return self.hub.get_registered_clients(private_key)

    def getSubscribedClients(self, private_key: Any, mtype: Any) -> Dict[str, Any]:
        """
        Like the Standard Profile's, but recipients the caller may not send
        C{mtype} to are left out (WEB-SEC-5).
        """
        self._web(private_key)
        found = self.hub.get_subscribed_clients(private_key, mtype)
        return {
            cid: note for cid, note in found.items() if self.restriction.permits(mtype, note)
        }

    # -- messaging ---------------------------------------------------------

    def _mtype(self, message: Any) -> str:
        check_map(message, "message")
        mtype = message.get("samp.mtype")
        if mtype is None:
            raise SAMPValueError("message has no samp.mtype")
        return check_mtype(mtype)

    def _blocked(self, mtype: str) -> SAMPHubError:
        return SAMPHubError(
            f"web clients may not send {mtype} (not on the hub's list of MTypes safe for "
            "web pages, and the recipient does not mark it samp.mostly-harmless)",
            code=8,
        )

    def _check_recipient(self, state: WebClient, recipient_id: Any, mtype: str) -> None:
        recipient = self.hub.client_by_id(recipient_id)
        note = subscription_for(recipient.subscriptions, mtype)
        if not self.restriction.permits(mtype, note):
            self.log.warn(
                "web client {client_id} refused: may not send {mtype} to {recipient}",
                client_id=state.client.public_id,
                mtype=mtype,
                recipient=recipient.public_id,
            )
            raise self._blocked(mtype)

    def _recipients(self, state: WebClient, mtype: str) -> List[Client]:
        subscribed = [
            (c, note) for c, note in self.hub.subscribed(mtype) if c is not state.client
        ]
        allowed = [c for c, note in subscribed if self.restriction.permits(mtype, note)]
        if not allowed and (subscribed or not self.restriction.permits(mtype)):
            self.log.warn(
                "web client {client_id} refused: may not broadcast {mtype}",
                client_id=state.client.public_id,
                mtype=mtype,
            )
            raise self._blocked(mtype)
        return allowed

    def notify(self, private_key: Any, recipient_id: Any, message: Any) -> str:
        state = self._web(private_key)
        self._check_recipient(state, recipient_id, self._mtype(message))
        self.hub.notify(private_key, recipient_id, message)
        self.tracker.outgoing(message, state.permitted)
        return ""

    def notifyAll(self, private_key: Any, message: Any) -> List[str]:
        state = self._web(private_key)
        recipients = self._recipients(state, self._mtype(message))
        sent = []
        for recipient in recipients:
            self.hub.notify(private_key, recipient.public_id, message)
            sent.append(recipient.public_id)
        self.tracker.outgoing(message, state.permitted)
        return sent

    def call(self, private_key: Any, recipient_id: Any, msg_tag: Any, message: Any) -> str:
        state = self._web(private_key)
        self._check_recipient(state, recipient_id, self._mtype(message))
        msg_id = self.hub.call(private_key, recipient_id, msg_tag, message)
        self.tracker.outgoing(message, state.permitted)
        return msg_id

    def callAll(self, private_key: Any, msg_tag: Any, message: Any) -> Dict[str, str]:
        state = self._web(private_key)
        recipients = self._recipients(state, self._mtype(message))
        if state.client.target is None:
            self.hub.call_all(private_key, msg_tag, message)  # raises "not callable"
        ids = {}
        for recipient in recipients:
            ids[recipient.public_id] = self.hub.call(
                private_key, recipient.public_id, msg_tag, message
            )
        self.tracker.outgoing(message, state.permitted)
        return ids

    def callAndWait(
        self, private_key: Any, recipient_id: Any, message: Any, timeout: Any
    ) -> Deferred:
        """
        @return: a L{Deferred} firing with the response map, or failing with
            L{SAMPHubError} on timeout.
        """
        state = self._web(private_key)
        self._check_recipient(state, recipient_id, self._mtype(message))
        d = self.hub.call_and_wait(private_key, recipient_id, message, timeout)
        self.tracker.outgoing(message, state.permitted)
        responder = self.hub.client_by_id(recipient_id)

        def answered(response: Dict[str, Any]) -> Dict[str, Any]:
            if responder.profile != "web" and state.client.registered:
                self.tracker.incoming(response, state.permitted)
            return response

        return d.addCallback(answered)

    def reply(self, private_key: Any, msg_id: Any, response: Any) -> str:
        state = self._web(private_key)
        self.hub.reply(private_key, msg_id, response)
        self.tracker.outgoing(response, state.permitted)
        return ""

    # -- callbacks -----------------------------------------------------------

    def allowReverseCallbacks(self, private_key: Any, allow: Any) -> str:
        """
        C{samp.webhub.allowReverseCallbacks(private-key, allow)} (WEB-CB-1):
        C{"1"} makes the client callable through its queue, C{"0"} stops
        that and discards waiting callbacks.
        """
        state = self._web(private_key)
        if not isinstance(allow, str):
            raise SAMPValueError('allow must be a SAMP boolean ("1" or "0")')
        try:
            on = decode_int(allow.strip()) != 0
        except ValueError:
            raise SAMPValueError('allow must be a SAMP boolean ("1" or "0")') from None
        if on and state.queue is None:
            queue = WebCallbackQueue(
                self.reactor,
                self.max_queue,
                on_overflow=lambda q: self._overflow(state, q),
                on_callback=lambda method, params: self._incoming(state, method, params),
                rewrite=self._filter_event,
                max_bytes=self.hub.limits.max_queue_bytes,
            )
            state.queue = queue
            self.hub.set_callback(private_key, queue)
        elif not on and state.queue is not None:
            queue, state.queue = state.queue, None
            dropped = queue.discard()
            if dropped:
                self.log.info(
                    "web client {client_id} turned callbacks off; {n} waiting callbacks dropped",
                    client_id=state.client.public_id,
                    n=dropped,
                )
            self.hub.set_callback(private_key, None)
        return ""

    def pullCallbacks(self, request: Any, private_key: Any, timeout: Any) -> Any:
        """
        C{samp.webhub.pullCallbacks(private-key, timeout-secs)} (WEB-CB-2..4).

        @return: a L{Deferred} firing with the list of callback maps: at once
            if any are queued, else as soon as one is, else C{[]} after
            C{timeout} seconds (at most C{max_pull_wait}).
        """
        try:
            state = self._web(private_key)
        except SAMPHubError:
            left = self._tombstone(private_key)
            if left is None:
                raise
            return left
        if state.queue is None:
            raise SAMPHubError(
                "the client is not callable: call samp.webhub.allowReverseCallbacks(key, \"1\") "
                "first"
            )
        seconds = min(max(_timeout_seconds(timeout), 0.0), self.max_pull_wait)
        self._pause_idle(state)
        d = state.queue.pull(seconds)
        request.notifyFinish().addErrback(lambda _: d.cancel())

        def done(result: Any) -> Any:
            self._resume_idle(state)
            if isinstance(result, Failure) and result.check(CancelledError):
                return []  # the page hung up; nothing was taken from the queue
            return result

        return d.addBoth(done)

    def _tombstone(self, private_key: Any) -> Optional[List[Dict[str, Any]]]:
        if not isinstance(private_key, str):
            return None
        entry = self._tombstones.get(_digest(private_key))
        if entry is None or not secrets.compare_digest(
            entry[0].encode("utf-8", "surrogatepass"),
            private_key.encode("utf-8", "surrogatepass"),
        ):
            return None
        self._tombstones.pop(_digest(private_key), None)
        if entry[2].active():
            entry[2].cancel()
        return entry[1].take()

    # -- XML-RPC plumbing --------------------------------------------------

    def render_POST(self, request: Any) -> Any:
        if reject_unsafe_xml(self, request, check_content_type=False):
            return server.NOT_DONE_YET
        return super().render_POST(request)

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (
            b"SAMP hub, Web Profile: POST XML-RPC calls (samp.webhub.*) to this URL.\n"
            b"JavaScript client: /samptwist-web.js\n"
        )

    def lookupProcedure(self, procedurePath: str) -> Callable[..., Any]:
        name = procedurePath[len(PREFIX):] if procedurePath.startswith(PREFIX) else None
        if name not in self._methods:
            raise xmlrpc.Fault(
                self.NOT_FOUND, f"no such method {procedurePath!r:.100} in the SAMP Web Profile"
            )
        method, low, high, with_request = self._methods[name]

        def dispatch(request: Any, *args: Any) -> Any:
            if not low <= len(args) <= high:
                want = str(low) if low == high else f"{low} to {high}"
                return xmlrpc.Fault(
                    self.FAILURE, f"{procedurePath} takes {want} argument(s), got {len(args)}"
                )
            try:
                result = method(request, *args) if with_request else method(*args)
            except SAMPHubError as e:
                self.log.debug("{method} refused: {error}", method=procedurePath, error=e)
                return xmlrpc.Fault(e.code, str(e))
            if isinstance(result, Deferred):
                if name == "callAndWait":
                    request.notifyFinish().addErrback(lambda _: result.cancel())
                result.addErrback(self._fault)
            return result

        dispatch.withRequest = True  # type: ignore[attr-defined]
        return dispatch

    def _fault(self, failure: Failure) -> Any:
        if isinstance(failure.value, SAMPHubError):
            return xmlrpc.Fault(failure.value.code, str(failure.value))
        return failure
