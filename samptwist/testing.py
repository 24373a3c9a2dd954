"""
Fakes for testing code that uses samptwist, and samptwist itself.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from .hub.callbacks import DeliveryFailed, ICallbackTarget


@implementer(ICallbackTarget)
class RecordingTarget:
    """
    An L{ICallbackTarget} that records every callback in L{received}.

    By default each delivery succeeds at once.  Set L{hold} to keep the
    Deferreds pending (they collect in L{held}), or L{fail_with} to fail every
    delivery with that L{DeliveryFailed}.

    @ivar received: C{(method, args)} tuples in delivery order.
    """

    def __init__(self) -> None:
        self.received: List[Tuple[str, tuple]] = []
        self.held: List[Deferred] = []
        self.hold = False
        self.fail_with: Optional[DeliveryFailed] = None
        self.closed = False
        self.on_call: Optional[Any] = None

    def _record(self, method: str, args: tuple) -> Deferred:
        self.received.append((method, args))
        if self.fail_with is not None:
            d: Deferred = Deferred()
            d.errback(self.fail_with)
            return d
        if self.hold:
            d = Deferred()
            self.held.append(d)
            return d
        return succeed(None)

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return self._record("receiveNotification", (senderId, message))

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        d = self._record("receiveCall", (senderId, msgId, message))
        if self.on_call is not None:
            self.on_call(senderId, msgId, message)
        return d

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return self._record("receiveResponse", (responderId, msgTag, response))

    def close(self) -> None:
        self.closed = True

    def of(self, method: str) -> List[tuple]:
        """
        @return: the argument tuples of every recorded C{method} callback.
        """
        return [args for name, args in self.received if name == method]

    def mtypes(self) -> List[str]:
        """
        @return: the MTypes of recorded notifications and calls, in order.
        """
        return [
            args[-1]["samp.mtype"]
            for name, args in self.received
            if name in ("receiveNotification", "receiveCall")
        ]
