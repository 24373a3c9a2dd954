"""
Messaging: notifications, calls, callAndWait and replies, and the calls
waiting for replies.  The L{Hub<samptwist.hub.core.Hub>} owns one
L{Messaging} and hands it the authenticated sender; this module talks to the
hub's registry, routing index, pending calls, event feed, profile policies
and delivery health, and does no network I/O itself.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from .._log import Logger, debugging
from ..constants import STATUS_ERROR
from ..errors import SAMPHubError, SAMPValueError
from ..mtype import subscription_for
from ..types import check_map
from . import events
from .callbacks import QueueFull
from .checks import check_message, check_msg_tag, timeout_seconds
from .checks import message as samp_message
from .failures import DeliveryHealth
from .limits import Limits
from .pending import PendingCall, PendingCalls, new_msg_id
from .policy import SendPolicy
from .registry import Client, ClientRegistry
from .subscriptions import SubscriptionIndex

__all__ = ["Messaging", "error_response"]


def error_response(text: str, **extra: str) -> Dict[str, Any]:
    """
    @return: a SAMP response map with C{samp.status} C{samp.error} and an
        error map whose C{samp.errortxt} is C{text}.
    """
    return {"samp.status": STATUS_ERROR, "samp.error": {"samp.errortxt": text, **extra}}


class Messaging:
    """
    Routes messages between registered clients and keeps the calls waiting
    for replies.  Every public method takes the sender as a L{Client} the
    L{Hub<samptwist.hub.core.Hub>} has authenticated (and whose activity it
    has counted).

    @ivar max_wait: cap, in seconds, on any callAndWait (HUB-WAIT-3).
    @ivar max_pending_per_client: calls one client may have waiting at once.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        stats: Any,
        limits: Limits,
        registry: ClientRegistry,
        routing: SubscriptionIndex,
        pending: PendingCalls,
        feed: events.EventFeed,
        policies: Mapping[str, SendPolicy],
        health: DeliveryHealth,
        hub_client: Client,
        max_wait: float,
        max_pending_per_client: int,
    ) -> None:
        self.reactor = reactor
        self.stats = stats
        self.limits = limits
        self.events = feed
        self.hub_client = hub_client
        self.max_wait = max_wait
        self.max_pending_per_client = max_pending_per_client
        self._registry = registry
        self._routing = routing
        self._pending = pending
        self._policies = policies
        self._health = health

    # -- the hub's own messages --------------------------------------------

    def hub_event(self, mtype: str, params: Dict[str, Any]) -> None:
        """
        Notify C{mtype} (a C{samp.hub.event.*}) from the hub to every
        subscribed client.
        """
        message = samp_message(mtype, params)
        for recipient, _ in self._routing.subscribed(mtype):
            if recipient is not self.hub_client:
                self._deliver_notification(self.hub_client, recipient, message)

    # -- messaging ---------------------------------------------------------

    def _recipient(self, sender: Client, recipient_id: Any, mtype: str) -> Client:
        recipient = self._registry.by_id(recipient_id)
        policy = self._policies.get(sender.profile)
        if policy is not None:
            note = subscription_for(recipient.subscriptions, mtype)
            if not policy.may_send(sender, mtype, note):
                raise policy.refusal(sender, mtype, recipient)
        if recipient.target is None:
            raise SAMPHubError(f"client {recipient.public_id} ({recipient.name}) is not callable")
        if subscription_for(recipient.subscriptions, mtype) is None:
            raise SAMPHubError(
                f"client {recipient.public_id} ({recipient.name}) is not subscribed to {mtype}"
            )
        return recipient

    def _recipients(self, sender: Client, mtype: str) -> List[Client]:
        subscribed = [(c, note) for c, note in self._routing.subscribed(mtype) if c is not sender]
        policy = self._policies.get(sender.profile)
        if policy is not None:
            subscribed = policy.recipients(sender, mtype, subscribed)
        return [c for c, _ in subscribed]

    def notify(self, sender: Client, recipient_id: Any, message: Any) -> None:
        """
        Send a notification to one subscribed client.  Returns as soon as the
        notification is queued; delivery happens asynchronously.

        @raise SAMPHubError: for an unknown, uncallable or unsubscribed
            recipient, one the sender's policy refuses, an invalid message,
            or a recipient whose queue is full (L{QueueFull}: it is not
            taking callbacks fast enough).
        """
        mtype = check_message(self.limits, message)
        recipient = self._recipient(sender, recipient_id, mtype)
        full = self._deliver_notification(sender, recipient, message)
        if full is not None:
            raise SAMPHubError(
                f"notification not delivered to {recipient.public_id} ({recipient.name}): "
                f"{full}"
            )

    def notify_all(self, sender: Client, message: Any) -> List[str]:
        """
        Notify every subscribed client except the sender (and those the
        sender's policy leaves out).

        @return: the recipients' ids.
        @raise SAMPHubError: for an invalid message, or a broadcast the
            sender's policy refuses.
        """
        mtype = check_message(self.limits, message)
        recipients = self._recipients(sender, mtype)
        for recipient in recipients:
            self._deliver_notification(sender, recipient, message)
        return [c.public_id for c in recipients]
    def _deliver_notification(
        self, sender: Client, recipient: Client, message: Dict
    ) -> Optional[str]:
        # Returns why, if the recipient's queue refused it there and then.
        target = recipient.target
        assert target is not None
        self.stats.notifications += 1
        if debugging():
            self.log.debug(
                "notify {mtype} {sender} -> {recipient}: {params}",
                mtype=message.get("samp.mtype"),
                sender=sender.public_id,
                recipient=recipient.public_id,
                params=message.get("samp.params"),
            )
        self.events.emit(events.Notified(sender, recipient, message, at=self.reactor.seconds()))
        d = target.receiveNotification(sender.public_id, message)
        full: List[str] = []

        def failed(f: Failure) -> None:
            reason = self._health.failed(f, recipient, "notification", message)
            if f.check(QueueFull):
                full.append(reason)

        d.addCallbacks(lambda _: self._health.delivered(recipient), failed)
        return full[0] if full else None

    def _check_pending(self, sender: Client, more: int = 1) -> None:
        count = self._pending.count_from(sender)
        if count + more > self.max_pending_per_client:
            raise SAMPHubError(
                f"too many outstanding calls ({count} waiting for replies, limit "
                f"{self.max_pending_per_client}: max-pending-calls); wait for replies "
                "before calling again"
            )

    def _new_pending(
        self, sender: Client, recipient: Client, msg_tag: Optional[str], mtype: str
    ) -> PendingCall:
        self._check_pending(sender)
        pending = PendingCall(new_msg_id(), sender, recipient, msg_tag, mtype)
        self._pending.add(pending)
        return pending

    def _discard(self, pending: PendingCall, why: str, drop_delivery: bool = True) -> bool:
        """
        Forget C{pending}, ended for reason C{why} (an L{events.CallEnded}
        reason), and (with C{drop_delivery}) cancel its delivery if that is
        still under way: a time-out or a departed caller leaves no callback
        queued behind.  Emits L{events.CallEnded}.

        @return: whether it was still pending.
        """
        if not self._pending.remove(pending):
            return False
        self.events.emit(events.CallEnded(pending, why, at=self.reactor.seconds()))
        delivery, pending.delivery = pending.delivery, None
        if drop_delivery:
            if delivery is not None and not delivery.called:
                delivery.cancel()
            # Targets that count a queued callback as delivered (the Web
            # Profile's pull queue) drop it themselves.
            target = pending.recipient.target
            if target is not None:
                target.discard_call(pending.msg_id)
        return True

    def _deliver_call(self, pending: PendingCall, message: Dict) -> None:
        # The pending record exists before delivery starts, so an instant
        # reply always finds it.
        target = pending.recipient.target
        assert target is not None
        self.stats.calls += 1
        pending.number = self.stats.calls
        pending.started = self.reactor.seconds()
        if debugging():
            self.log.debug(
                "call {mtype} {sender} -> {recipient} ({msg_id}): {params}",
                mtype=message.get("samp.mtype"),
                sender=pending.sender.public_id,
                recipient=pending.recipient.public_id,
                msg_id=pending.msg_id,
                params=message.get("samp.params"),
            )
        self.events.emit(events.Called(pending, message, at=pending.started))
        d = target.receiveCall(pending.sender.public_id, pending.msg_id, message)
        if not d.called:
            pending.delivery = d

        def delivered(_: object) -> None:
            pending.delivery = None
            self._health.delivered(pending.recipient)

        def failed(f: Failure) -> None:
            pending.delivery = None
            if f.check(CancelledError):
                return  # the call ended before its delivery: nothing to say
            reason = self._health.failed(f, pending.recipient, "call", message)
            if pending.msg_id in self._pending:
                self._finish(
                    pending,
                    error_response(
                        f"delivery to {pending.recipient.public_id} "
                        f"({pending.recipient.name}) failed: {reason}"
                    ),
                    events.DELIVERY_FAILED,
                )

        d.addCallbacks(delivered, failed)

    def _check_call(self, sender: Client, msg_tag: Any, message: Any) -> str:
        check_msg_tag(self.limits, msg_tag)
        mtype = check_message(self.limits, message)
        self._require_callable(sender)
        return mtype

    def _require_callable(self, sender: Client) -> None:
        if sender.target is None:
            raise SAMPHubError(
                "the caller is not callable, so a response could not reach it; "
                "set a callback first or use callAndWait"
            )

    def call(self, sender: Client, recipient_id: Any, msg_tag: Any, message: Any) -> str:
        """
        Send a call to one client; its reply reaches the sender through
        receiveResponse with C{msg_tag}.

        @return: the msg-id.
        """
        mtype = self._check_call(sender, msg_tag, message)
        recipient = self._recipient(sender, recipient_id, mtype)
        pending = self._new_pending(sender, recipient, msg_tag, mtype)
        self._deliver_call(pending, message)
        return pending.msg_id

    def call_all(self, sender: Client, msg_tag: Any, message: Any) -> Dict[str, str]:
        """
        Call every subscribed client except the sender.

        @return: map of recipient id to msg-id.
        """
        mtype = self._check_call(sender, msg_tag, message)
        recipients = self._recipients(sender, mtype)
        self._check_pending(sender, len(recipients))
        pendings = [self._new_pending(sender, r, msg_tag, mtype) for r in recipients]
        for pending in pendings:
            self._deliver_call(pending, message)
        return {p.recipient.public_id: p.msg_id for p in pendings}

    def call_and_wait(
        self, sender: Client, recipient_id: Any, message: Any, timeout: Any
    ) -> Deferred:
        """
        Call one client and wait for its reply.

        @param timeout: seconds, as a SAMP int (an int is tolerated); zero or
            less waits up to the hub's cap.
        @return: a L{Deferred} firing with the response map (a C{samp.error}
            response if delivery failed or the recipient left), or failing
            with L{SAMPHubError} when the timeout passes or the hub stops.
        """
        seconds = timeout_seconds(timeout)
        mtype = check_message(self.limits, message)
        recipient = self._recipient(sender, recipient_id, mtype)
        pending = self._new_pending(sender, recipient, None, mtype)
        limit = self.max_wait if seconds <= 0 else min(seconds, self.max_wait)

        def cancelled(waiter: Deferred) -> None:
            self._discard(pending, events.CANCELLED)

        pending.waiter = Deferred(cancelled)
        result = pending.waiter

        def timed_out() -> None:
            # Not Deferred.addTimeout: that cancels, and a time-out must be
            # told from a cancel (events.CallEnded.why).
            if self._discard(pending, events.TIMED_OUT):
                result.errback(SAMPHubError(
                    f"callAndWait timed out after {limit:g}s waiting for "
                    f"{recipient.public_id} ({recipient.name}) to reply",
                    code=1,
                ))

        timer = self.reactor.callLater(limit, timed_out)

        def ended(outcome: object) -> object:
            if timer.active():
                timer.cancel()
            if isinstance(outcome, Failure) and outcome.check(CancelledError):
                raise SAMPHubError("callAndWait cancelled (sender left or hub stopped)")
            return outcome

        result.addBoth(ended)
        self._deliver_call(pending, message)
        return result

    def reply(self, replier: Client, msg_id: Any, response: Any) -> None:
        """
        Answer a call.  Only the client the call was delivered to may reply,
        and only once.

        @raise SAMPHubError: for an unknown, expired or foreign msg-id, or an
            invalid response map.
        """
        if not isinstance(msg_id, str):
            raise SAMPValueError("msg-id must be a string")
        check_map(response, "response")
        status = response.get("samp.status")
        if not isinstance(status, str):
            raise SAMPValueError("response has no samp.status")
        pending = self._pending.get(msg_id)
        if pending is None or pending.recipient is not replier:
            raise SAMPHubError(
                f"no call {msg_id!r:.80} is waiting for a reply from you "
                "(unknown msg-id, already answered, timed out, or its sender left)"
            )
        self.stats.replies += 1
        if debugging():
            self.log.debug(
                "reply {msg_id} from {recipient}: {response}",
                msg_id=msg_id,
                recipient=replier.public_id,
                response=response,
            )
        self._finish(pending, response, events.REPLIED)

    def _finish(self, pending: PendingCall, response: Dict[str, Any], why: str) -> None:
        # A reply proves delivery; other endings come after it failed.
        if not self._discard(pending, why, drop_delivery=False):
            return
        self.events.emit(events.Replied(pending, response, at=self.reactor.seconds()))
        if pending.waiter is not None:
            pending.waiter.callback(response)
            return
        sender = pending.sender
        target = sender.target
        if not sender.registered or target is None:
            return
        d = target.receiveResponse(pending.recipient.public_id, pending.msg_tag or "", response)
        d.addCallbacks(
            lambda _: self._health.delivered(sender),
            lambda f: self._health.failed(f, sender, "response", {"samp.mtype": "(response)"}),
        )

    # -- departures --------------------------------------------------------

    def client_left(self, client: Client, reason: str) -> None:
        """
        End the calls to C{client} with an error response to their callers,
        and forget the calls from it (nobody is left to answer).
        """
        for pending in self._pending.to_recipient(client):
            self._finish(
                pending,
                error_response(f"recipient {client.public_id} ({client.name}) {reason}"
                               " before replying"),
                events.RECIPIENT_LEFT,
            )
        for pending in self._pending.from_sender(client):
            # A later reply from its recipient is refused.
            self._discard(pending, events.SENDER_LEFT)
            if pending.waiter is not None:
                pending.waiter.cancel()

    def end_all(self) -> None:
        """
        The hub stopped: forget every call; each callAndWait fails with
        L{SAMPHubError}.
        """
        for pending in self._pending.all():
            self._discard(pending, events.HUB_STOPPED)
            if pending.waiter is not None:
                pending.waiter.cancel()
