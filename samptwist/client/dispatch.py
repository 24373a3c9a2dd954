"""
Incoming messages: what a client does with a notification or call its
callback server accepted.  Messages from the hub itself (shutdown,
disconnect, the tracker's events) are handled by the library
(L{Dispatcher.internal}); everything else goes to the most specific handler
of the client's L{HandlerTable}, and a call is answered with the handler's
result, or with an error response if nothing handles it.

The L{Dispatcher} reaches its client through L{DispatchHost} only.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Tuple

from twisted.internet.defer import Deferred

from .._log import Logger
from ..constants import DISCONNECT as HUB_DISCONNECT
from ..constants import PING
from ..constants import SHUTDOWN as HUB_SHUTDOWN
from ..mtype import is_mtype
from .handlers import HandlerTable, Message, error, ok, run_handler
from .tracker import EVENTS as TRACKER_EVENTS
from .tracker import ClientTracker

#: The MTypes every client subscribes to (the tracker's events are added
#: when it tracks).
BUILTIN_MTYPES: Tuple[str, ...] = (PING, HUB_SHUTDOWN, HUB_DISCONNECT)


class DispatchHost(Protocol):
    """
    What a L{Dispatcher} needs of the connection whose messages it handles:
    the hub's id, a way to send a reply, and a way to drop the connection.
    L{samptwist.client.lifecycle.Lifecycle} provides it.
    """

    @property
    def hub_id(self) -> Optional[str]:
        """The hub's public id while connected (its messages are internal)."""

    def request(self, method: str, *args: Any) -> Deferred:
        """Call the hub's C{samp.hub.<method>} with this client's key."""

    def lost(self, reason: str) -> None:
        """The hub ended the connection (C{"shutdown"}, C{"disconnect"})."""


def builtin_mtypes(tracker: Optional[ClientTracker]) -> Tuple[str, ...]:
    """
    @return: the MTypes the library subscribes to itself: ping, hub
        shutdown and disconnect, and the tracker's events if C{tracker}.
    """
    return BUILTIN_MTYPES + (TRACKER_EVENTS if tracker is not None else ())


class Dispatcher:
    """
    Hands a client's incoming notifications and calls to its handlers and
    sends the replies.
    """

    log = Logger()

    def __init__(
        self,
        clock: Any,
        host: DispatchHost,
        handlers: HandlerTable,
        tracker: Optional[ClientTracker],
    ) -> None:
        """
        @param clock: schedules dropping the connection after the reply.
        @param host: the connection (hub id, replies, losing it).
        @param handlers: the application's handlers.
        @param tracker: fed the hub's client events, if tracking.
        """
        self.clock = clock
        self.host = host
        self.handlers = handlers
        self.tracker = tracker

    def dispatch(self, sender_id: str, msg_id: Optional[str], message: Dict[str, Any]) -> None:
        """
        Handle a notification (C{msg_id} C{None}) or a call from
        C{sender_id}; a call is answered later, through the host, exactly
        once (CLI-CB-2) unless its handler replies itself.
        """
        mtype = message.get("samp.mtype")
        params = message.get("samp.params", {})
        if not is_mtype(mtype) or not isinstance(params, dict):
            if msg_id is not None:
                self.send_reply(msg_id, error("malformed message: bad samp.mtype or samp.params"))
            return
        assert isinstance(mtype, str)
        msg = Message(mtype, params, sender_id, msg_id, message)
        internal = self.internal(msg)
        entry = self.handlers.lookup(mtype)
        if mtype in builtin_mtypes(self.tracker) and (entry is None or entry.pattern != mtype):
            # The library's exact subscription is more specific than a
            # user's wildcard (CLI-CB-6): only an exact handler sees these.
            entry = None
            internal = True
        if entry is None:
            if msg_id is not None:
                self.send_reply(
                    msg_id, ok() if internal else error(f"no handler for {mtype} in this client")
                )
            return
        d = run_handler(entry, msg)
        if msg_id is not None:
            d.addCallback(self._reply_with, msg_id)

    def _reply_with(self, response: Optional[Dict[str, Any]], msg_id: str) -> None:
        if response is not None:
            self.send_reply(msg_id, response)

    def internal(self, msg: Message) -> bool:
        """
        Handle what the library handles itself in a message from the hub:
        shutdown and disconnect (the connection is dropped once the
        callback is answered) and the tracker's events.

        @return: whether C{msg} was such a message.
        """
        if msg.sender_id != self.host.hub_id:
            return False
        if msg.mtype in (HUB_SHUTDOWN, HUB_DISCONNECT):
            reason = "shutdown" if msg.mtype == HUB_SHUTDOWN else "disconnect"
            if msg.mtype == HUB_DISCONNECT:
                self.log.info(
                    "the hub disconnected this client: {reason}",
                    reason=msg.params.get("reason", "(no reason given)"),
                )
            # Answer the callback first, then let go of the connection.
            self.clock.callLater(0, self.host.lost, reason)
            return True
        if msg.mtype in TRACKER_EVENTS and self.tracker is not None:
            self.tracker.handle(msg.mtype, msg.params)
            return True
        return False

    def send_reply(self, msg_id: str, response: Dict[str, Any]) -> None:
        """
        Send C{response} to the call C{msg_id}; a failure is logged.
        """
        d = self.host.request("reply", msg_id, response)
        d.addErrback(
            lambda f: self.log.warn(
                "reply to {msg_id} failed: {error}", msg_id=msg_id, error=f.getErrorMessage()
            )
        )
