"""
The hub core: registration, metadata and subscriptions, shutdown, and the
hub methods of messaging (done by its L{Messaging}).  No network I/O happens
here; clients are reached through L{ICallbackTarget} providers and every
timeout runs on the injected reactor, so the whole core can be driven by a
L{twisted.internet.task.Clock}.

The core's state lives in one module per concept: the clients
(L{registry}), the routing index (L{subscriptions}), the calls waiting for
replies (L{pending}), what it tells its observers (L{events}), what a
profile's clients may send (L{policy}) and how messages travel
(L{messaging}).  Profiles (Standard, Web) are thin layers that authenticate
a request and call the methods below with a private key.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime

from .._log import Logger
from .._version import __version__
from ..constants import (  # noqa: F401 (re-exported: hub modules import them from here)
    DISCONNECT,
    HUB_ID,
    METADATA,
    PING,
    QUERY_BY_META,
    QUERY_BY_META_X,
    REGISTER,
    SHUTDOWN,
    STATUS_ERROR,
    SUBSCRIPTIONS,
    UNREGISTER,
)
from ..errors import SAMPHubError
from ..mtype import check_mtype, check_subscriptions, subscription_for
from ..types import check_map, samp_size
from . import events
from .callbacks import ICallbackTarget
from .checks import check_mtype_length
from .checks import message as samp_message
from .failures import DeliveryHealth
from .limits import DEFAULT_LIMITS, Limits, over_limit
from .messaging import Messaging, error_response
from .pending import PendingCall, PendingCalls
from .policy import SendPolicy
from .registry import Client, ClientRegistry, new_key
from .subscriptions import SubscriptionIndex

__all__ = ["Client", "Hub", "HubStats", "PendingCall", "error_response"]


class HubStats:
    """
    Counters for status displays and benchmarks.
    """

    def __init__(self) -> None:
        self.registrations = 0
        self.notifications = 0
        self.calls = 0
        self.replies = 0
        self.delivery_failures = 0
        self.ejections = 0


class Hub:
    """
    The SAMP hub's state and routing, shared by all profiles.

    @ivar hub_client: the hub's own client (public id L{HUB_ID}).
    @ivar events: the L{events.EventFeed} observers listen to.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        metadata: Optional[Dict[str, Any]] = None,
        max_failures: int = 3,
        max_wait: float = 12 * 3600,
        max_pending_per_client: Optional[int] = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """
        @param reactor: provides C{callLater} for timeouts and for delivering
            events to observers on a later turn.
        @param metadata: the hub client's metadata; a sensible default is used.
        @param max_failures: consecutive unreachable deliveries after which a
            client is forcibly unregistered (0 disables ejection).
        @param max_wait: cap, in seconds, on any callAndWait (HUB-WAIT-3).
        @param max_pending_per_client: how many calls one client may have
            waiting for replies at once (default: C{limits.max_pending_calls}).
        @param limits: what one client may hold (L{Limits}).
        """
        self.reactor = reactor
        self.limits = limits
        self.stats = HubStats()
        self.started = reactor.seconds()
        #: when a client last made a hub call (for inactivity time-outs)
        self.last_activity = self.started
        self.running = True
        self.events = events.EventFeed(reactor)
        self._registry = ClientRegistry()
        self._pending = PendingCalls()
        self._routing = SubscriptionIndex()
        self._policies: Dict[str, SendPolicy] = {}
        self._health = DeliveryHealth(self.stats, max_failures, self.eject)
        from .hubclient import HubClientTarget

        self.hub_client = Client(HUB_ID, new_key(), "hub")
        self.hub_client.metadata = metadata or default_hub_metadata()
        self.hub_client.subscriptions = {
            PING: {},
            QUERY_BY_META_X: {},
            QUERY_BY_META: {},
        }
        self.hub_client.target = HubClientTarget(self)
        self._add(self.hub_client)
        #: notifications, calls and replies
        self.messaging = Messaging(
            reactor,
            stats=self.stats,
            limits=limits,
            registry=self._registry,
            routing=self._routing,
            pending=self._pending,
            feed=self.events,
            policies=self._policies,
            health=self._health,
            hub_client=self.hub_client,
            max_wait=max_wait,
            max_pending_per_client=(
                limits.max_pending_calls if max_pending_per_client is None
                else max_pending_per_client
            ),
        )

    # -- bookkeeping -------------------------------------------------------

    @property
    def max_failures(self) -> int:
        """
        Consecutive unreachable deliveries after which a client is ejected.
        """
        return self._health.max_failures

    @max_failures.setter
    def max_failures(self, value: int) -> None:
        self._health.max_failures = value

    def _add(self, client: Client) -> None:
        self._registry.add(client)
        self._routing.add(client)

    def observe(self, observer: Callable[[events.HubEvent], None]) -> Callable[[], None]:
        """
        Call C{observer(event)} with every L{events.HubEvent} (registrations,
        unregistrations, metadata and subscription changes, message
        traffic), in order, on a later reactor turn than the hub call that
        caused it.  Observer exceptions are logged, never raised.

        @return: a callable that stops the deliveries.
        """
        return self.events.observe(observer)

    def set_policy(self, profile: str, policy: SendPolicy) -> None:
        """
        Consult C{policy} for every message a client of C{profile} sends,
        and tell it when such a client leaves (see L{SendPolicy}).
        """
        self._policies[profile] = policy

    def client_for_key(self, private_key: Any) -> Client:
        """
        @return: the registered client owning C{private_key}; the call counts
            as its activity.
        @raise SAMPHubError: if no registered client has that key.
        """
        client = self._registry.for_key(private_key)
        if client is None:
            raise SAMPHubError("unknown or expired private key (register first)", code=5)
        client.last_seen = self.last_activity = self.reactor.seconds()
        return client

    def client_by_id(self, public_id: Any) -> Client:
        """
        @return: the registered client with that public id.
        @raise SAMPHubError: if there is none, saying whether it never
            existed or has gone.
        """
        return self._registry.by_id(public_id)

    def find(self, public_id: Any) -> Optional[Client]:
        """
        @return: the registered client with that public id, or C{None}.
        """
        return self._registry.get(public_id)

    @property
    def pending_calls(self) -> int:
        """
        How many calls are waiting for replies.
        """
        return len(self._pending)

    def record_counts(self) -> Dict[str, int]:
        """
        @return: how many records of each kind the hub holds (for tests and
            leak hunting): registered clients and key index entries, pending
            calls and senders with pending calls.
        """
        return {
            "clients": len(self._registry),
            "keys": self._registry.key_count(),
            "pending": len(self._pending),
            "pending_senders": self._pending.sender_count(),
        }

    @property
    def clients(self) -> List[Client]:
        """
        Every registered client, the hub's own client first (a new list:
        O(clients); use L{client_count} for the number).
        """
        return self._registry.all()

    @property
    def client_count(self) -> int:
        """
        How many clients are registered, the hub's own included.
        """
        return len(self._registry)

    # -- registration ------------------------------------------------------

    def register(self, profile: str) -> Client:
        """
        Register a new client (the profile has checked its credentials).

        @return: the new L{Client}; its registration map is
            L{registration_map}.
        @raise SAMPHubError: if the hub is shutting down or full.
        """
        if not self.running:
            raise SAMPHubError("the hub is shutting down")
        most = self.limits.max_clients
        if most and len(self._registry) > most:  # the hub client is not counted
            raise SAMPHubError(
                f"registration refused: the hub already has {most} registered clients, "
                "its limit (max-clients)"
            )
        serial = self._registry.next_serial()
        client = Client(
            f"c{serial}", new_key(), profile, serial=serial,
        )
        client.last_seen = self.last_activity = self.reactor.seconds()
        self._add(client)
        self.stats.registrations += 1
        self.log.info(
            "registered {client_id} ({profile} profile)",
            client_id=client.public_id,
            profile=profile,
        )
        self.events.emit(events.ClientRegistered(client, at=client.last_seen))
        self.messaging.hub_event(REGISTER, {"id": client.public_id})
        return client

    def registration_map(self, client: Client) -> Dict[str, str]:
        """
        @return: the map C{register} answers with (HUB-REG-1).
        """
        return {
            "samp.private-key": client.private_key,
            "samp.hub-id": HUB_ID,
            "samp.self-id": client.public_id,
        }

    def unregister(self, private_key: str) -> None:
        """
        Unregister the caller.

        @raise SAMPHubError: for an unknown key.
        """
        client = self.client_for_key(private_key)
        self._remove(client, "unregistered")

    def eject(self, client: Client, reason: str) -> None:
        """
        Forcibly unregister C{client}: tell it with C{samp.hub.disconnect}
        (best effort) if it is subscribed, then remove it (ADM-DISC-1).
        """
        if not client.registered or client is self.hub_client:
            return
        self.stats.ejections += 1
        self.log.warn(
            "ejecting {client_id} ({name}): {reason}",
            client_id=client.public_id,
            name=client.name,
            reason=reason,
        )
        target = client.target
        if target is not None and subscription_for(client.subscriptions, DISCONNECT) is not None:
            client.target = None  # nothing else is delivered to it
            # Do not make the farewell wait behind a backlog (a hung client
            # may have thousands of callbacks queued): drop them first.
            target.discard_queued()
            d = target.receiveNotification(HUB_ID, samp_message(DISCONNECT, {"reason": reason}))
            d.addErrback(lambda _: None)
            d.addBoth(lambda _: target.close())
            self._remove(client, reason, close=False)
        else:
            self._remove(client, reason)

    def _remove(self, client: Client, reason: str, close: bool = True) -> None:
        # O(the client's subscriptions and pending calls), not O(clients).
        if not client.registered:
            return
        client.registered = False
        self._registry.remove(client)
        self._health.forget(client)
        self._routing.remove(client)
        target, client.target = client.target, None
        self.messaging.client_left(client, reason)
        if close and target is not None:
            target.close()
        self.log.info(
            "{client_id} ({name}) left: {reason}",
            client_id=client.public_id,
            name=client.name,
            reason=reason,
        )
        policy = self._policies.get(client.profile)
        if policy is not None:
            policy.client_left(client, reason)
        self.events.emit(events.ClientUnregistered(client, reason, at=self.reactor.seconds()))
        self.messaging.hub_event(UNREGISTER, {"id": client.public_id})

    def set_callback(self, private_key: str, target: Optional[ICallbackTarget]) -> Client:
        """
        Make the caller callable through C{target} (or not callable, if
        C{None}), replacing any previous target.

        @return: the client.
        """
        client = self.client_for_key(private_key)
        old, client.target = client.target, target
        client.failures = 0
        if (old is None) != (target is None) and client.subscriptions:
            self._routing.invalidate()  # it became (un)callable
        if old is not None and old is not target:
            old.close()
        return client

    # -- metadata and subscriptions ---------------------------------------

    def declare_metadata(self, private_key: str, metadata: Any) -> None:
        """
        Replace the caller's metadata and announce it (HUB-META-1).

        @raise SAMPValueError: if C{metadata} is not a SAMP map.
        """
        client = self.client_for_key(private_key)
        check_map(metadata, "metadata")
        size = samp_size(metadata)
        if size > self.limits.max_metadata_bytes:
            raise over_limit(
                "metadata", size, self.limits.max_metadata_bytes, "bytes", "max-metadata-bytes"
            )
        client.metadata = metadata
        self.events.emit(events.MetadataDeclared(client, metadata, at=client.last_seen))
        self.messaging.hub_event(METADATA, {"id": client.public_id, "metadata": client.metadata})

    def get_metadata(self, private_key: str, client_id: Any) -> Dict[str, Any]:
        """
        @return: the latest metadata of C{client_id} (empty if none declared).
        """
        self.client_for_key(private_key)
        return self.client_by_id(client_id).metadata

    def declare_subscriptions(self, private_key: str, subscriptions: Any) -> None:
        """
        Replace the caller's subscriptions and announce them (HUB-SUB-1).

        @raise SAMPValueError: for a malformed subscriptions map.
        """
        client = self.client_for_key(private_key)
        check_map(subscriptions, "subscriptions")
        size = samp_size(subscriptions)
        if size > self.limits.max_subscriptions_bytes:
            raise over_limit(
                "subscriptions map", size, self.limits.max_subscriptions_bytes, "bytes",
                "max-subscriptions-bytes",
            )
        check_subscriptions(subscriptions)
        self._routing.remove(client)
        client.subscriptions = subscriptions
        self._routing.add(client)
        self.events.emit(events.SubscriptionsDeclared(client, subscriptions, at=client.last_seen))
        self.messaging.hub_event(
            SUBSCRIPTIONS, {"id": client.public_id, "subscriptions": client.subscriptions}
        )

    def get_subscriptions(self, private_key: str, client_id: Any) -> Dict[str, Any]:
        """
        @return: the subscriptions map C{client_id} declared, as far as the
            caller's profile policy lets it see them.
        """
        caller = self.client_for_key(private_key)
        subscriptions = self.client_by_id(client_id).subscriptions
        policy = self._policies.get(caller.profile)
        if policy is not None:
            return policy.visible_subscriptions(caller, subscriptions)
        return subscriptions

    def get_registered_clients(self, private_key: str) -> List[str]:
        """
        @return: public ids of all registered clients but the caller, the hub
            included (HUB-LIST-1).
        """
        caller = self.client_for_key(private_key)
        return [c.public_id for c in self._registry if c is not caller]

    def subscribed(self, mtype: str) -> List[Tuple[Client, Any]]:
        """
        @return: (client, annotation) for every callable client subscribed to
            C{mtype}, hub included, sender not excluded; O(subscribers).
        """
        return self._routing.subscribed(mtype)

    def get_subscribed_clients(self, private_key: str, mtype: Any) -> Dict[str, Any]:
        """
        @return: map of client id to annotation for every callable client but
            the caller subscribed to C{mtype} (HUB-LIST-2), leaving out those
            the caller's profile policy would not let it send C{mtype} to
            (WEB-SEC-5).
        """
        caller = self.client_for_key(private_key)
        check_mtype_length(self.limits, mtype)
        check_mtype(mtype)
        policy = self._policies.get(caller.profile)
        return {
            c.public_id: note
            for c, note in self.subscribed(mtype)
            if c is not caller and (policy is None or policy.may_send(caller, mtype, note))
        }

    # -- messaging (L{messaging.Messaging} does it) ------------------------

    def notify(self, private_key: str, recipient_id: Any, message: Any) -> None:
        """
        Send a notification to one subscribed client (L{Messaging.notify}).
        """
        self.messaging.notify(self.client_for_key(private_key), recipient_id, message)

    def notify_all(self, private_key: str, message: Any) -> List[str]:
        """
        Notify every subscribed client but the sender (L{Messaging.notify_all}).

        @return: the recipients' ids.
        """
        return self.messaging.notify_all(self.client_for_key(private_key), message)

    def call(self, private_key: str, recipient_id: Any, msg_tag: Any, message: Any) -> str:
        """
        Send a call to one client (L{Messaging.call}).

        @return: the msg-id.
        """
        return self.messaging.call(
            self.client_for_key(private_key), recipient_id, msg_tag, message
        )

    def call_all(self, private_key: str, msg_tag: Any, message: Any) -> Dict[str, str]:
        """
        Call every subscribed client but the sender (L{Messaging.call_all}).

        @return: map of recipient id to msg-id.
        """
        return self.messaging.call_all(self.client_for_key(private_key), msg_tag, message)

    def call_and_wait(
        self, private_key: str, recipient_id: Any, message: Any, timeout: Any
    ) -> Deferred:
        """
        Call one client and wait for its reply (L{Messaging.call_and_wait}).

        @return: a L{Deferred} firing with the response map, or failing with
            L{SAMPHubError} when the timeout passes or the hub stops.
        """
        return self.messaging.call_and_wait(
            self.client_for_key(private_key), recipient_id, message, timeout
        )

    def reply(self, private_key: str, msg_id: Any, response: Any) -> None:
        """
        Answer a call (L{Messaging.reply}).

        @raise SAMPHubError: for an unknown, expired or foreign msg-id.
        """
        self.messaging.reply(self.client_for_key(private_key), msg_id, response)

    def shutdown(self, grace: float = 5.0) -> Deferred:
        """
        Stop the hub: notify C{samp.hub.event.shutdown}, wait up to C{grace}
        seconds for those notifications, then invalidate every client and end
        every pending callAndWait with a fault.

        @return: a L{Deferred} firing when done; it never fails.
        """
        if not self.running:
            return succeed(None)
        self.log.info("hub shutting down")
        message = samp_message(SHUTDOWN, {})
        deliveries = []
        for recipient, _ in self.subscribed(SHUTDOWN):
            if recipient is not self.hub_client and recipient.target is not None:
                deliveries.append(
                    recipient.target.receiveNotification(HUB_ID, message).addErrback(
                        lambda _: None
                    )
                )
        self.running = False
        done = DeferredList(deliveries)
        done.addTimeout(grace, self.reactor)
        done.addErrback(lambda _: None)

        def close(_: object) -> None:
            self.messaging.end_all()
            for client in self._registry.all():
                client.registered = False
                if client.target is not None:
                    client.target.close()
                    client.target = None
            self._registry.clear()
            self._routing.clear()

        done.addCallback(close)
        return done


def default_hub_metadata() -> Dict[str, Any]:
    """
    @return: the hub client's metadata (HUB-SELFCLI-2).
    """
    return {
        "samp.name": "samptwist",
        "samp.description.text": "SAMP hub built on Twisted (samptwist " + __version__ + ")",
        "author.name": "samptwist developers",
        "hub.impl": "samptwist " + __version__,
    }
