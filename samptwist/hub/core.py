"""
The hub core: registered clients, their metadata and subscriptions, pending
calls, and routing.  No network I/O happens here; clients are reached through
L{ICallbackTarget} providers and every timeout runs on the injected reactor,
so the whole core can be driven by a L{twisted.internet.task.Clock}.

Profiles (Standard, Web) are thin layers that authenticate a request and call
the methods below with a private key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import CancelledError, Deferred, DeferredList, TimeoutError, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from .._log import Logger
from .._version import __version__
from ..constants import (  # noqa: F401 (re-exported: hub modules import them from here)
    DISCONNECT,
    HUB_ID,
    METADATA,
    PING,
    REGISTER,
    SHUTDOWN,
    STATUS_ERROR,
    SUBSCRIPTIONS,
    UNREGISTER,
)
from ..errors import SAMPHubError, SAMPValueError
from ..mtype import check_mtype, check_subscriptions, subscription_for
from ..types import check_map, check_string, decode_int, samp_size
from .callbacks import DeliveryFailed, ICallbackTarget, QueueFull
from .limits import DEFAULT_LIMITS, Limits, over_limit


def error_response(text: str, **extra: str) -> Dict[str, Any]:
    """
    @return: a SAMP response map with C{samp.status} C{samp.error} and an
        error map whose C{samp.errortxt} is C{text}.
    """
    return {"samp.status": STATUS_ERROR, "samp.error": {"samp.errortxt": text, **extra}}


def _lookup_hash(key: str) -> bytes:
    # Clients are found by a digest of their key, then the key itself is
    # compared in constant time: a lookup leaks nothing about stored keys.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(eq=False)
class Client:
    """
    One registered client, as the hub sees it.

    @ivar public_id: the id other clients know it by.
    @ivar private_key: the secret it authenticates with.
    @ivar profile: C{"standard"}, C{"web"} or C{"hub"}.
    @ivar target: where callbacks go, or C{None} while it is not callable.
    @ivar failures: consecutive deliveries that could not reach it.
    """

    public_id: str
    private_key: str
    profile: str
    metadata: Dict[str, Any] = field(default_factory=dict)
    subscriptions: Dict[str, Any] = field(default_factory=dict)
    target: Optional[ICallbackTarget] = None
    failures: int = 0
    registered: bool = True
    last_seen: float = 0.0
    #: registration order (the hub's own client is 0)
    serial: int = 0

    @property
    def name(self) -> str:
        name = self.metadata.get("samp.name")
        return name if isinstance(name, str) else self.public_id


@dataclass(eq=False)
class PendingCall:
    """
    A call that has been (or is being) delivered and is waiting for a reply.

    @ivar number: the hub's count of calls when this one was made (for
        status displays).
    @ivar started: when it was made, in reactor seconds.
    @ivar delivery: the delivery of the call while it is under way; it is
        cancelled when the call ends first, so a queued callback of an
        ended call does not linger.
    """

    msg_id: str
    sender: Client
    recipient: Client
    msg_tag: Optional[str]
    mtype: str = ""
    waiter: Optional[Deferred] = None  # set for callAndWait
    number: int = 0
    started: float = 0.0
    delivery: Optional[Deferred] = None


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

    @ivar hub_id: the hub's own public client id.
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
        sender_filter: Optional[Callable[[Client, str], None]] = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """
        @param reactor: provides C{callLater} for timeouts.
        @param metadata: the hub client's metadata; a sensible default is used.
        @param max_failures: consecutive unreachable deliveries after which a
            client is forcibly unregistered (0 disables ejection).
        @param max_wait: cap, in seconds, on any callAndWait (HUB-WAIT-3).
        @param max_pending_per_client: how many calls one client may have
            waiting for replies at once (default: C{limits.max_pending_calls}).
        @param limits: what one client may hold (L{Limits}).
        """
        self.reactor = reactor
        self.max_failures = max_failures
        self.max_wait = max_wait
        self.limits = limits
        self.max_pending_per_client = (
            limits.max_pending_calls if max_pending_per_client is None
            else max_pending_per_client
        )
        self.stats = HubStats()
        self.started = reactor.seconds()
        #: when a client last made a hub call (for inactivity time-outs)
        self.last_activity = self.started
        self.running = True
        self._last_id = 0
        self._clients: Dict[str, Client] = {}
        self._by_key: Dict[bytes, Client] = {}
        self._pending: Dict[str, PendingCall] = {}
        self._pending_count: Dict[str, int] = {}
        # Routing index: subscription key ("a.b", "a.*", "*") -> the clients
        # declaring it (a dict as an ordered set), so finding the
        # subscribers of an MType touches only them, never every client.
        self._by_pattern: Dict[str, Dict[Client, None]] = {}
        #: clients whose full queue has been logged (until a delivery succeeds)
        self._full_logged: set = set()
        self._subscribed_cache: Dict[str, List[Tuple[Client, Any]]] = {}
        self._observers: List[Callable[[str, Dict[str, Any]], None]] = []
        self.sender_filters: List[Callable[[Client, Dict[str, Any]], None]] = []
        from .hubclient import HubClientTarget

        self.hub_client = Client(HUB_ID, self._new_key(), "hub")
        self.hub_client.metadata = metadata or default_hub_metadata()
        self.hub_client.subscriptions = {
            PING: {},
            "x-samp.query.by-meta": {},
            "samp.query.by-meta": {},
        }
        self.hub_client.target = HubClientTarget(self)
        self._add(self.hub_client)

    # -- bookkeeping -------------------------------------------------------

    @staticmethod
    def _new_key() -> str:
        return "k-" + secrets.token_urlsafe(24)

    def _add(self, client: Client) -> None:
        self._clients[client.public_id] = client
        self._by_key[_lookup_hash(client.private_key)] = client
        self._index(client, client.subscriptions)

    def _index(self, client: Client, subscriptions: Dict[str, Any]) -> None:
        for pattern in subscriptions:
            self._by_pattern.setdefault(pattern, {})[client] = None
        if subscriptions:
            self._subscribed_cache.clear()

    def _unindex(self, client: Client) -> None:
        for pattern in client.subscriptions:
            holders = self._by_pattern.get(pattern)
            if holders is not None:
                holders.pop(client, None)
                if not holders:
                    del self._by_pattern[pattern]
        if client.subscriptions:
            self._subscribed_cache.clear()

    def observe(self, observer: Callable[[str, Dict[str, Any]], None]) -> None:
        """
        Call C{observer(event, details)} on registrations, unregistrations,
        metadata and subscription changes and message traffic (for status
        displays).  Observer exceptions are logged, never raised.
        """
        self._observers.append(observer)

    def _emit(self, event: str, **details: Any) -> None:
        for observer in list(self._observers):
            try:
                observer(event, details)
            except Exception:
                self.log.failure("hub observer failed on {event}", event=event)

    def client_for_key(self, private_key: Any) -> Client:
        """
        @return: the registered client owning C{private_key}.
        @raise SAMPHubError: if no registered client has that key.
        """
        if isinstance(private_key, str):
            client = self._by_key.get(_lookup_hash(private_key))
            if (
                client is not None
                and client.registered
                and secrets.compare_digest(
                    client.private_key.encode("utf-8", "surrogatepass"),
                    private_key.encode("utf-8", "surrogatepass"),
                )
            ):
                client.last_seen = self.last_activity = self.reactor.seconds()
                return client
        raise SAMPHubError("unknown or expired private key (register first)", code=5)

    def client_by_id(self, public_id: Any) -> Client:
        """
        @return: the registered client with that public id.
        @raise SAMPHubError: if there is none, saying whether it never
            existed or has gone.
        """
        if not isinstance(public_id, str):
            raise SAMPValueError(f"client id must be a string, not {type(public_id).__name__}")
        client = self._clients.get(public_id)
        if client is None:
            if self._was_issued(public_id):
                raise SAMPHubError(f"client {public_id!r} is no longer registered", code=6)
            raise SAMPHubError(f"no client with id {public_id!r}", code=6)
        return client

    def _was_issued(self, public_id: str) -> bool:
        digits = public_id[1:]
        return (
            public_id.startswith("c")
            and digits.isdigit()
            and len(digits) < 12
            and 0 < int(digits) <= self._last_id
        )

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
            "clients": len(self._clients),
            "keys": len(self._by_key),
            "pending": len(self._pending),
            "pending_senders": len(self._pending_count),
        }

    @property
    def clients(self) -> List[Client]:
        """
        Every registered client, the hub's own client first (a new list:
        O(clients); use L{client_count} for the number).
        """
        return list(self._clients.values())

    @property
    def client_count(self) -> int:
        """
        How many clients are registered, the hub's own included.
        """
        return len(self._clients)

    # -- registration ------------------------------------------------------

    def register(self, profile: str) -> Client:
        """
        Register a new client (the profile has checked its credentials).

        @return: the new L{Client}; its registration map is
            L{registration_map}.
        @raise SAMPHubError: if the hub is shutting down.
        """
        if not self.running:
            raise SAMPHubError("the hub is shutting down")
        most = self.limits.max_clients
        if most and len(self._clients) > most:  # the hub client is not counted
            raise SAMPHubError(
                f"registration refused: the hub already has {most} registered clients, "
                "its limit (max-clients)"
            )
        self._last_id += 1
        client = Client(
            f"c{self._last_id}", self._new_key(), profile, serial=self._last_id,
        )
        client.last_seen = self.last_activity = self.reactor.seconds()
        self._add(client)
        self.stats.registrations += 1
        self.log.info(
            "registered {client_id} ({profile} profile)",
            client_id=client.public_id,
            profile=profile,
        )
        self._emit("register", client=client)
        self._hub_event(REGISTER, {"id": client.public_id})
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
            discard = getattr(target, "discard_queued", None)
            if discard is not None:
                discard()
            d = target.receiveNotification(HUB_ID, _message(DISCONNECT, {"reason": reason}))
            d.addErrback(lambda _: None)
            d.addBoth(lambda _: target.close())
            self._remove(client, reason, close=False)
        else:
            self._remove(client, reason)

    def _remove(self, client: Client, reason: str, close: bool = True) -> None:
        if not client.registered:
            return
        client.registered = False
        self._clients.pop(client.public_id, None)
        self._by_key.pop(_lookup_hash(client.private_key), None)
        self._full_logged.discard(client.public_id)
        self._unindex(client)
        target, client.target = client.target, None
        for pending in list(self._pending.values()):
            if pending.recipient is client:
                self._finish(
                    pending,
                    error_response(f"recipient {client.public_id} ({client.name}) {reason}"
                                   " before replying"),
                )
            elif pending.sender is client:
                # Nobody is left to answer: forget the call (a later reply
                # from its recipient is refused).
                self._discard(pending)
                if pending.waiter is not None:
                    pending.waiter.cancel()
        if close and target is not None:
            target.close()
        self.log.info(
            "{client_id} ({name}) left: {reason}",
            client_id=client.public_id,
            name=client.name,
            reason=reason,
        )
        self._emit("unregister", client=client, reason=reason)
        self._hub_event(UNREGISTER, {"id": client.public_id})

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
            self._subscribed_cache.clear()  # it became (un)callable
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
        self._emit("metadata", client=client)
        self._hub_event(METADATA, {"id": client.public_id, "metadata": client.metadata})

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
        self._unindex(client)
        client.subscriptions = subscriptions
        self._index(client, subscriptions)
        self._emit("subscriptions", client=client)
        self._hub_event(
            SUBSCRIPTIONS, {"id": client.public_id, "subscriptions": client.subscriptions}
        )

    def get_subscriptions(self, private_key: str, client_id: Any) -> Dict[str, Any]:
        """
        @return: the subscriptions map C{client_id} declared.
        """
        self.client_for_key(private_key)
        return self.client_by_id(client_id).subscriptions

    def get_registered_clients(self, private_key: str) -> List[str]:
        """
        @return: public ids of all registered clients but the caller, the hub
            included (HUB-LIST-1).
        """
        caller = self.client_for_key(private_key)
        return [c.public_id for c in self._clients.values() if c is not caller]

    def subscribed(self, mtype: str) -> List[Tuple[Client, Any]]:
        """
        @return: (client, annotation) for every callable client subscribed to
            C{mtype}, hub included, sender not excluded.
        """
        cached = self._subscribed_cache.get(mtype)
        if cached is None:
            found: Dict[Client, None] = {}
            for pattern in _keys_matching(mtype):
                holders = self._by_pattern.get(pattern)
                if holders:
                    found.update(holders)
            ordered = sorted(found, key=_serial) if len(found) > 1 else list(found)
            cached = []
            for client in ordered:
                if client.target is not None:
                    note = subscription_for(client.subscriptions, mtype)
                    if note is not None:
                        cached.append((client, note))
            if len(self._subscribed_cache) > 10_000:
                self._subscribed_cache.clear()
            self._subscribed_cache[mtype] = cached
        return cached

    def get_subscribed_clients(self, private_key: str, mtype: Any) -> Dict[str, Any]:
        """
        @return: map of client id to annotation for every callable client but
            the caller subscribed to C{mtype} (HUB-LIST-2).
        """
        caller = self.client_for_key(private_key)
        self._check_mtype_length(mtype)
        check_mtype(mtype)
        return {c.public_id: note for c, note in self.subscribed(mtype) if c is not caller}

    # -- messaging ---------------------------------------------------------

    def _check_message(self, sender: Client, message: Any) -> str:
        check_map(message, "message")
        mtype = message.get("samp.mtype")
        if mtype is None:
            raise SAMPValueError("message has no samp.mtype")
        self._check_mtype_length(mtype)
        check_mtype(mtype)
        params = message.get("samp.params", {})
        if not isinstance(params, dict):
            raise SAMPValueError(f"samp.params must be a map, not {type(params).__name__}")
        for check in self.sender_filters:
            check(sender, message)
        return mtype

    def _check_mtype_length(self, mtype: Any) -> None:
        most = self.limits.max_mtype_length
        if isinstance(mtype, str) and len(mtype) > most:
            raise over_limit("MType", len(mtype), most, "characters", "max-mtype-length")

    def _recipient(self, recipient_id: Any, mtype: str) -> Client:
        recipient = self.client_by_id(recipient_id)
        if recipient.target is None:
            raise SAMPHubError(f"client {recipient.public_id} ({recipient.name}) is not callable")
        if subscription_for(recipient.subscriptions, mtype) is None:
            raise SAMPHubError(
                f"client {recipient.public_id} ({recipient.name}) is not subscribed to {mtype}"
            )
        return recipient

    def notify(self, private_key: str, recipient_id: Any, message: Any) -> None:
        """
        Send a notification to one subscribed client.  Returns as soon as the
        notification is queued; delivery happens asynchronously.

        @raise SAMPHubError: for an unknown, uncallable or unsubscribed
            recipient, an invalid message, or a recipient whose queue is
            full (L{QueueFull}: it is not taking callbacks fast enough).
        """
        sender = self.client_for_key(private_key)
        mtype = self._check_message(sender, message)
        recipient = self._recipient(recipient_id, mtype)
        full = self._deliver_notification(sender, recipient, message)
        if full is not None:
            raise SAMPHubError(
                f"notification not delivered to {recipient.public_id} ({recipient.name}): "
                f"{full}"
            )

    def notify_all(self, private_key: str, message: Any) -> List[str]:
        """
        Notify every subscribed client except the sender.

        @return: the recipients' ids.
        """
        sender = self.client_for_key(private_key)
        mtype = self._check_message(sender, message)
        recipients = [c for c, _ in self.subscribed(mtype) if c is not sender]
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
        self.log.debug(
            "notify {mtype} {sender} -> {recipient}: {params}",
            mtype=message.get("samp.mtype"),
            sender=sender.public_id,
            recipient=recipient.public_id,
            params=message.get("samp.params"),
        )
        self._emit("notify", sender=sender, recipient=recipient, message=message)
        d = target.receiveNotification(sender.public_id, message)
        full: List[str] = []

        def failed(f: Failure) -> None:
            reason = self._failed(f, recipient, "notification", message)
            if f.check(QueueFull):
                full.append(reason)

        d.addCallbacks(lambda _: self._delivered(recipient), failed)
        return full[0] if full else None

    def _delivered(self, recipient: Client) -> None:
        recipient.failures = 0
        if self._full_logged:
            self._full_logged.discard(recipient.public_id)

    def _failed(self, f: Failure, recipient: Client, what: str, message: Dict) -> str:
        error = f.value if isinstance(f.value, DeliveryFailed) else None
        reason = error.reason if error is not None else f.getErrorMessage()
        if error is not None and error.gone:
            return reason
        self.stats.delivery_failures += 1
        if isinstance(error, QueueFull):
            # A sender flooding a slow client: one line, not one per message.
            if recipient.public_id in self._full_logged:
                return reason
            self._full_logged.add(recipient.public_id)
        self.log.warn(
            "{what} {mtype} to {client_id} ({name}) failed: {reason}",
            what=what,
            mtype=message.get("samp.mtype"),
            client_id=recipient.public_id,
            name=recipient.name,
            reason=reason,
        )
        if error is not None and error.unreachable and recipient.registered:
            recipient.failures += 1
            if self.max_failures and recipient.failures >= self.max_failures:
                self.eject(
                    recipient,
                    f"callback failed {recipient.failures} times in a row (last: {reason})",
                )
        return reason

    def _check_pending(self, sender: Client, more: int = 1) -> None:
        count = self._pending_count.get(sender.public_id, 0)
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
        count = self._pending_count.get(sender.public_id, 0)
        msg_id = "m-" + secrets.token_urlsafe(18)
        pending = PendingCall(msg_id, sender, recipient, msg_tag, mtype)
        self._pending[msg_id] = pending
        self._pending_count[sender.public_id] = count + 1
        return pending

    def _discard(self, pending: PendingCall, drop_delivery: bool = True) -> bool:
        """
        Forget C{pending}, whatever ended it, and (with C{drop_delivery})
        cancel its delivery if that is still under way: a time-out or a
        departed caller leaves no callback queued behind.

        @return: whether it was still pending.
        """
        if self._pending.pop(pending.msg_id, None) is None:
            return False
        delivery, pending.delivery = pending.delivery, None
        if drop_delivery:
            if delivery is not None and not delivery.called:
                delivery.cancel()
            # Targets that count a queued callback as delivered (the Web
            # Profile's pull queue) drop it themselves.
            discard_call = getattr(pending.recipient.target, "discard_call", None)
            if discard_call is not None:
                discard_call(pending.msg_id)
        key = pending.sender.public_id
        left = self._pending_count.get(key, 1) - 1
        if left:
            self._pending_count[key] = left
        else:
            self._pending_count.pop(key, None)
        return True

    def _deliver_call(self, pending: PendingCall, message: Dict) -> None:
        # The pending record exists before delivery starts, so an instant
        # reply always finds it.
        target = pending.recipient.target
        assert target is not None
        self.stats.calls += 1
        pending.number = self.stats.calls
        pending.started = self.reactor.seconds()
        self.log.debug(
            "call {mtype} {sender} -> {recipient} ({msg_id}): {params}",
            mtype=message.get("samp.mtype"),
            sender=pending.sender.public_id,
            recipient=pending.recipient.public_id,
            msg_id=pending.msg_id,
            params=message.get("samp.params"),
        )
        self._emit(
            "call",
            sender=pending.sender,
            recipient=pending.recipient,
            message=message,
            msg_id=pending.msg_id,
            pending=pending,
        )
        d = target.receiveCall(pending.sender.public_id, pending.msg_id, message)
        if not d.called:
            pending.delivery = d

        def delivered(_: object) -> None:
            pending.delivery = None
            self._delivered(pending.recipient)

        def failed(f: Failure) -> None:
            pending.delivery = None
            if f.check(CancelledError):
                return  # the call ended before its delivery: nothing to say
            reason = self._failed(f, pending.recipient, "call", message)
            if pending.msg_id in self._pending:
                self._finish(
                    pending,
                    error_response(
                        f"delivery to {pending.recipient.public_id} "
                        f"({pending.recipient.name}) failed: {reason}"
                    ),
                )

        d.addCallbacks(delivered, failed)

    def _check_call(self, private_key: str, msg_tag: Any, message: Any) -> Tuple[Client, str]:
        sender = self.client_for_key(private_key)
        if not isinstance(msg_tag, str):
            raise SAMPValueError("msg-tag must be a string")
        if len(msg_tag) > self.limits.max_msg_tag_length:
            raise over_limit(
                "msg-tag", len(msg_tag), self.limits.max_msg_tag_length, "characters",
                "max-msg-tag-length",
            )
        check_string(msg_tag, "msg-tag")
        mtype = self._check_message(sender, message)
        self._require_callable(sender)
        return sender, mtype

    def _require_callable(self, sender: Client) -> None:
        if sender.target is None:
            raise SAMPHubError(
                "the caller is not callable, so a response could not reach it; "
                "set a callback first or use callAndWait"
            )

    def call(self, private_key: str, recipient_id: Any, msg_tag: Any, message: Any) -> str:
        """
        Send a call to one client; its reply reaches the sender through
        receiveResponse with C{msg_tag}.

        @return: the msg-id.
        """
        sender, mtype = self._check_call(private_key, msg_tag, message)
        recipient = self._recipient(recipient_id, mtype)
        pending = self._new_pending(sender, recipient, msg_tag, mtype)
        self._deliver_call(pending, message)
        return pending.msg_id

    def call_all(self, private_key: str, msg_tag: Any, message: Any) -> Dict[str, str]:
        """
        Call every subscribed client except the sender.

        @return: map of recipient id to msg-id.
        """
        sender, mtype = self._check_call(private_key, msg_tag, message)
        recipients = [c for c, _ in self.subscribed(mtype) if c is not sender]
        self._check_pending(sender, len(recipients))
        pendings = [self._new_pending(sender, r, msg_tag, mtype) for r in recipients]
        for pending in pendings:
            self._deliver_call(pending, message)
        return {p.recipient.public_id: p.msg_id for p in pendings}

    def call_and_wait(
        self, private_key: str, recipient_id: Any, message: Any, timeout: Any
    ) -> Deferred:
        """
        Call one client and wait for its reply.

        @param timeout: seconds, as a SAMP int (an int is tolerated); zero or
            less waits up to the hub's cap.
        @return: a L{Deferred} firing with the response map (a C{samp.error}
            response if delivery failed or the recipient left), or failing
            with L{SAMPHubError} when the timeout passes or the hub stops.
        """
        sender = self.client_for_key(private_key)
        seconds = _timeout_seconds(timeout)
        mtype = self._check_message(sender, message)
        recipient = self._recipient(recipient_id, mtype)
        pending = self._new_pending(sender, recipient, None, mtype)
        limit = self.max_wait if seconds <= 0 else min(seconds, self.max_wait)

        def cancelled(waiter: Deferred) -> None:
            self._discard(pending)

        pending.waiter = Deferred(cancelled)
        result = pending.waiter

        def timed_out(f: Failure) -> Failure:
            if f.check(TimeoutError):
                self._discard(pending)
                raise SAMPHubError(
                    f"callAndWait timed out after {limit:g}s waiting for "
                    f"{recipient.public_id} ({recipient.name}) to reply",
                    code=1,
                )
            if f.check(CancelledError):
                raise SAMPHubError("callAndWait cancelled (sender left or hub stopped)")
            return f

        result.addTimeout(limit, self.reactor)
        result.addErrback(timed_out)
        self._deliver_call(pending, message)
        return result

    def reply(self, private_key: str, msg_id: Any, response: Any) -> None:
        """
        Answer a call.  Only the client the call was delivered to may reply,
        and only once.

        @raise SAMPHubError: for an unknown, expired or foreign msg-id, or an
            invalid response map.
        """
        replier = self.client_for_key(private_key)
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
        self.log.debug(
            "reply {msg_id} from {recipient}: {response}",
            msg_id=msg_id,
            recipient=replier.public_id,
            response=response,
        )
        self._finish(pending, response)

    def _finish(self, pending: PendingCall, response: Dict[str, Any]) -> None:
        # A reply proves delivery; other endings come after it failed.
        if not self._discard(pending, drop_delivery=False):
            return
        self._emit("reply", pending=pending, response=response)
        if pending.waiter is not None:
            pending.waiter.callback(response)
            return
        sender = pending.sender
        target = sender.target
        if not sender.registered or target is None:
            return
        d = target.receiveResponse(pending.recipient.public_id, pending.msg_tag or "", response)
        d.addCallbacks(
            lambda _: self._delivered(sender),
            lambda f: self._failed(f, sender, "response", {"samp.mtype": "(response)"}),
        )

    # -- the hub as a sender ----------------------------------------------

    def _hub_event(self, mtype: str, params: Dict[str, Any]) -> None:
        message = _message(mtype, params)
        for recipient, _ in self.subscribed(mtype):
            if recipient is not self.hub_client:
                self._deliver_notification(self.hub_client, recipient, message)

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
        message = _message(SHUTDOWN, {})
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
            for pending in list(self._pending.values()):
                self._discard(pending)
                if pending.waiter is not None:
                    pending.waiter.cancel()
            for client in list(self._clients.values()):
                client.registered = False
                if client.target is not None:
                    client.target.close()
                    client.target = None
            self._clients.clear()
            self._by_key.clear()
            self._by_pattern.clear()
            self._subscribed_cache.clear()

        done.addCallback(close)
        return done


def _serial(client: Client) -> int:
    return client.serial


def _keys_matching(mtype: str) -> List[str]:
    """
    @return: every subscription key that can match C{mtype}: itself, C{"*"}
        and C{"a.*"}, C{"a.b.*"}... for each proper prefix (see L{mtype}).
    """
    keys = [mtype, "*"]
    end = mtype.find(".")
    while end >= 0:
        keys.append(mtype[: end + 1] + "*")
        end = mtype.find(".", end + 1)
    return keys


def _message(mtype: str, params: Dict[str, Any]) -> Dict[str, Any]:
    return {"samp.mtype": mtype, "samp.params": params}


def _timeout_seconds(timeout: Any) -> float:
    if isinstance(timeout, bool):
        raise SAMPValueError("timeout must be a SAMP int (a string of digits)")
    if isinstance(timeout, int):
        return float(timeout)
    if isinstance(timeout, str):
        try:
            return float(decode_int(timeout.strip()))
        except ValueError:
            try:
                return float(timeout)
            except ValueError:
                pass
    raise SAMPValueError(f"timeout must be a SAMP int number of seconds, not {timeout!r:.40}")


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
