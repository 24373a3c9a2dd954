"""
How the hub core reaches a client: the L{ICallbackTarget} interface, which
the Standard Profile (XML-RPC callbacks), the Web Profile (pull queues) and
the hub's own client implement, and the failures a delivery can end in.
"""

from __future__ import annotations

from typing import Any, Dict

from twisted.internet.defer import Deferred
from zope.interface import Interface


class DeliveryFailed(Exception):
    """
    A callback could not be delivered.

    @ivar unreachable: C{True} when the client could not be reached at all
        (connection refused, timeout, garbage answer); C{False} when the
        client answered with a fault, which shows it is alive.
    @ivar gone: C{True} when the callback was dropped because the client
        left the hub (not worth a warning).
    """

    def __init__(self, reason: str, unreachable: bool = True, gone: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.gone = gone


class QueueFull(DeliveryFailed):
    """
    A callback was refused because too many callbacks, or too many bytes of
    them, are already waiting for the client (it is alive but slow).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, unreachable=False)


class ICallbackTarget(Interface):
    """
    Something the hub can deliver callbacks to on behalf of one client.

    Every method returns a L{Deferred} that fires with C{None} once the client
    accepted the callback, or fails with L{DeliveryFailed}.  Implementations
    deliver callbacks to one client in the order they were given.
    """

    def receiveNotification(senderId: str, message: Dict[str, Any]) -> Deferred:
        """Deliver a notification."""

    def receiveCall(senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        """Deliver a call; the client answers later through the hub's reply."""

    def receiveResponse(responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        """Deliver the response to a call this client made."""

    def discard_queued() -> None:
        """
        Fail every callback still waiting to be delivered (not one already
        under way) with L{DeliveryFailed} (C{gone=True}): the hub is about
        to send the client its C{samp.hub.disconnect} and must not make it
        wait behind a backlog.  Later callbacks are accepted as usual.
        """

    def discard_call(msgId: str) -> bool:
        """
        The call C{msgId} ended (timed out, or its sender left) before the
        client took it: drop it if it is still waiting here.  (A target
        whose queued deliveries are Deferreds the hub cancels may simply
        answer C{False}.)

        @return: whether it was still waiting.
        """

    def close() -> None:
        """
        The client is gone: fail every queued callback with L{DeliveryFailed}
        and release resources.
        """
