"""
What the hub core tells its observers (status page, activity monitor):
typed, immutable events, delivered in order on a later reactor turn by an
L{EventFeed}, so an observer never runs inside the core's routing code and
cannot change what a hub call answers.  Each event's C{at} is when it
happened, in reactor seconds (not when it is delivered).

These are the hub's own bookkeeping events; the C{samp.hub.event.*}
notifications to clients are messages, sent by the core as it acts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Union

from twisted.internet.interfaces import IDelayedCall

from .._log import Logger
from .pending import PendingCall
from .registry import Client


@dataclass(frozen=True)
class ClientRegistered:
    """C{client} registered."""

    client: Client
    at: float = 0.0


@dataclass(frozen=True)
class ClientUnregistered:
    """C{client} left (C{reason}: C{"unregistered"}, or why it was ejected)."""

    client: Client
    reason: str
    at: float = 0.0


@dataclass(frozen=True)
class MetadataDeclared:
    """C{client} declared C{metadata}."""

    client: Client
    metadata: Dict[str, Any]
    at: float = 0.0


@dataclass(frozen=True)
class SubscriptionsDeclared:
    """C{client} declared C{subscriptions}."""

    client: Client
    subscriptions: Dict[str, Any]
    at: float = 0.0


@dataclass(frozen=True)
class Notified:
    """The hub handed C{message} from C{sender} to C{recipient}'s target."""

    sender: Client
    recipient: Client
    message: Dict[str, Any]
    at: float = 0.0


@dataclass(frozen=True)
class Called:
    """The hub handed a call (C{pending}) to its recipient's target."""

    pending: PendingCall
    message: Dict[str, Any]
    at: float = 0.0


@dataclass(frozen=True)
class Replied:
    """The call C{pending} ended with C{response} (a reply, or the hub's
    error response when delivery failed or the recipient left)."""

    pending: PendingCall
    response: Dict[str, Any]
    at: float = 0.0


#: Why a call ended (L{CallEnded.why}).
REPLIED = "replied"
DELIVERY_FAILED = "delivery failed"
RECIPIENT_LEFT = "recipient left"
TIMED_OUT = "timed out"
CANCELLED = "cancelled"
SENDER_LEFT = "sender left"
HUB_STOPPED = "hub stopped"

#: The endings after which a response goes to the caller (a L{Replied}
#: event follows the L{CallEnded}).
ANSWERED = frozenset({REPLIED, DELIVERY_FAILED, RECIPIENT_LEFT})


@dataclass(frozen=True)
class CallEnded:
    """The call C{pending} is no longer waiting for a reply: C{why} is one
    of L{REPLIED}, L{DELIVERY_FAILED}, L{RECIPIENT_LEFT}, L{TIMED_OUT},
    L{CANCELLED}, L{SENDER_LEFT} or L{HUB_STOPPED}.  Emitted for every
    ending, before the L{Replied} event of those that answer the caller."""

    pending: PendingCall
    why: str
    at: float = 0.0

    @property
    def answered(self) -> bool:
        """Whether a response goes to the caller (a L{Replied} follows)."""
        return self.why in ANSWERED


HubEvent = Union[
    ClientRegistered, ClientUnregistered, MetadataDeclared, SubscriptionsDeclared,
    Notified, Called, Replied, CallEnded,
]
Observer = Callable[[HubEvent], None]


class EventFeed:
    """
    Observers of L{HubEvent}s.  L{emit} queues an event; the queue is
    delivered, oldest first, to every observer on a later turn of
    C{reactor} (a C{task.Clock} in tests: advance it by 0).  With no
    observer, emitting costs nothing.  An observer's exception is logged,
    never raised.
    """

    log = Logger()

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._observers: List[Observer] = []
        self._queue: Deque[HubEvent] = deque()
        self._call: Optional[IDelayedCall] = None

    def observe(self, observer: Observer) -> Callable[[], None]:
        """
        Deliver every later event to C{observer}.

        @return: a callable that stops the deliveries.
        """
        self._observers.append(observer)

        def stop() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return stop

    def emit(self, event: HubEvent) -> None:
        if not self._observers:
            return
        self._queue.append(event)
        if self._call is None:
            self._call = self.reactor.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Deliver the queued events now (the reactor does this on its next
        turn; also called when the hub stops).
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        queue = self._queue
        while queue:
            event = queue.popleft()
            for observer in list(self._observers):
                try:
                    observer(event)
                except Exception:
                    self.log.failure(
                        "hub observer failed on {event}", event=type(event).__name__
                    )
