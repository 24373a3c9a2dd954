"""
A web client's callback queue: the L{ICallbackTarget} of a Web Profile
client, drained by its C{pullCallbacks} long polls (WEB-CB-2..6).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from ...types import samp_size
from ..callbacks import DeliveryFailed, ICallbackTarget, QueueFull
from ..core import DISCONNECT, HUB_ID
from ..limits import DEFAULT_LIMITS

#: Default most callbacks one web client may have waiting.
MAX_QUEUE = 1000


def _is_disconnect(method: str, params: List[Any]) -> bool:
    return (
        method == "receiveNotification"
        and params[0] == HUB_ID
        and isinstance(params[1], dict)
        and params[1].get("samp.mtype") == DISCONNECT
    )


@implementer(ICallbackTarget)
class WebCallbackQueue:
    """
    Callbacks waiting for one web client to pull them.

    A callback counts as delivered once it is queued.  The queue holds at
    most C{max_size} callbacks; beyond that new callbacks fail with
    L{DeliveryFailed} and C{on_overflow} is called once, so that the client
    can be ejected (never a silent drop).  The hub's C{samp.hub.disconnect}
    is always accepted, so an ejected client can still learn why.

    At most one long poll is parked at a time; it is released on a later
    reactor turn as soon as a callback is queued, when its timeout passes
    (with an empty list), or when the queue is closed.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        max_size: int = MAX_QUEUE,
        on_overflow: Optional[Callable[[WebCallbackQueue], None]] = None,
        on_callback: Optional[Callable[[str, List[Any]], None]] = None,
        rewrite: Optional[Callable[[str, List[Any]], List[Any]]] = None,
        max_bytes: int = DEFAULT_LIMITS.max_queue_bytes,
    ) -> None:
        """
        @param max_bytes: most bytes of callbacks (L{samp_size}) waiting;
            one callback always fits into an empty queue.  Overflowing it is
            handled like overflowing C{max_size}.
        @param rewrite: given the method name and parameters of a callback,
            returns the parameters to queue (e.g. filtered hub events).
        @param on_overflow: called (once) when a callback does not fit.
        @param on_callback: called with the method name and parameters of
            every callback accepted (for URL tracking).
        """
        self.reactor = reactor
        self.max_size = max_size
        self.max_bytes = max_bytes
        #: the size of the callbacks waiting now
        self.queued_bytes = 0
        self.on_overflow = on_overflow
        self.on_callback = on_callback
        self.rewrite = rewrite
        self.closed = False
        self.overflowed = False
        self._items: Deque[Dict[str, Any]] = deque()
        self._parked: Optional[Deferred] = None
        self._timer: Optional[IDelayedCall] = None
        self._release_call: Optional[IDelayedCall] = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def polling(self) -> bool:
        """
        Whether a long poll is parked.
        """
        return self._parked is not None

    # -- ICallbackTarget ---------------------------------------------------

    def _enqueue(self, method: str, params: List[Any]) -> Deferred:
        if self.closed:
            return fail(DeliveryFailed("client is gone", unreachable=False, gone=True))
        size = samp_size(params)
        full = len(self._items) >= self.max_size or (
            self._items and self.queued_bytes + size > self.max_bytes
        )
        if full and not _is_disconnect(method, params):
            first = not self.overflowed
            self.overflowed = True
            if first and self.on_overflow is not None:
                self.on_overflow(self)
            return fail(
                QueueFull(
                    f"web client's callback queue is full ({len(self._items)} callbacks, "
                    f"{self.queued_bytes} bytes waiting; limits {self.max_size} callbacks "
                    f"and {self.max_bytes} bytes: max-queue, max-queue-bytes); "
                    "it is not pulling them"
                )
            )
        if self.rewrite is not None:
            params = self.rewrite(method, params)
        if self.on_callback is not None:
            self.on_callback(method, params)
        self._items.append({"samp.methodName": method, "samp.params": params})
        self.queued_bytes += size
        self._schedule_release()
        return succeed(None)

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("receiveNotification", [senderId, message])

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("receiveCall", [senderId, msgId, message])

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return self._enqueue("receiveResponse", [responderId, msgTag, response])

    def discard_call(self, msg_id: str) -> bool:
        """
        Drop the queued C{receiveCall} of C{msg_id} (the call ended before
        the client pulled it).

        @return: whether it was queued.
        """
        for item in self._items:
            params = item["samp.params"]
            if item["samp.methodName"] == "receiveCall" and params[1] == msg_id:
                self._items.remove(item)
                self.queued_bytes = max(0, self.queued_bytes - samp_size(params))
                return True
        return False

    def discard_queued(self) -> None:
        """
        Nothing to do: a callback counts as delivered once it is queued
        here, and the page takes the backlog and the hub's farewell together
        with its next C{pullCallbacks}.
        """

    def close(self) -> None:
        """
        The client left: accept nothing more and release a parked poll with
        whatever is still queued.  Queued callbacks stay readable with
        L{take} (the profile may keep them for a returning ejected client).
        """
        self.closed = True
        if self._parked is not None:
            self._schedule_release()

    # -- pulling -----------------------------------------------------------

    def take(self) -> List[Dict[str, Any]]:
        """
        @return: every queued callback, oldest first, removing them.
        """
        items = list(self._items)
        self._items.clear()
        self.queued_bytes = 0
        return items

    def discard(self) -> int:
        """
        Drop every queued callback (allowReverseCallbacks "0", WEB-CB-1).

        @return: how many were dropped.
        """
        count = len(self._items)
        self._items.clear()
        self.queued_bytes = 0
        return count

    def pull(self, timeout: float) -> Deferred:
        """
        Wait for callbacks.

        @param timeout: seconds to wait when nothing is queued.
        @return: a L{Deferred} firing with the list of callback maps
            (C{samp.methodName}, C{samp.params}); at once if some are
            queued or the queue is closed, else when one arrives, or with
            C{[]} after C{timeout} seconds.  Cancelling it (the client hung
            up) leaves the callbacks queued.  A newer poll releases an older
            parked one with C{[]}.
        """
        if self._items or self.closed or timeout <= 0:
            return succeed(self.take())
        if self._parked is not None:
            older = self._parked
            self._unpark()
            older.callback([])

        def cancel(d: Deferred) -> None:
            if self._parked is d:
                self._unpark()

        d: Deferred = Deferred(cancel)
        self._parked = d
        self._timer = self.reactor.callLater(timeout, self._release)
        return d

    def _unpark(self) -> None:
        self._parked = None
        for call in (self._timer, self._release_call):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._release_call = None

    def _schedule_release(self) -> None:
        # Release on a later turn: never re-entrantly inside the hub's
        # routing code, and several callbacks queued together go together.
        if self._parked is not None and self._release_call is None:
            self._release_call = self.reactor.callLater(0, self._release)

    def _release(self) -> None:
        d = self._parked
        if d is None:
            return
        self._unpark()
        d.callback(self.take())
