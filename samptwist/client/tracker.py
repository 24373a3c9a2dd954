"""
A live mirror of the hub's clients (CLI-LIB-1): their metadata and
subscriptions, kept up to date from C{samp.hub.event.register},
C{unregister}, C{metadata} and C{subscriptions}, with observers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Protocol

from twisted.internet.defer import Deferred, gatherResults

from .._log import Logger
from ..constants import CLIENT_EVENTS as EVENTS  # noqa: F401 (re-exported)
from ..constants import METADATA, REGISTER, SUBSCRIPTIONS, UNREGISTER
from ..mtype import subscription_for
from .naming import pick_by_name
from .observer import Observable


class TrackedClient(Protocol):
    """
    What a L{ClientTracker} needs of the client whose hub it mirrors: its
    clock, its own id (left out of the table) and three hub queries.
    L{samptwist.client.SAMPClient} provides it.
    """

    @property
    def reactor(self) -> Any:
        """The reactor (or clock) the tracker's observers fire on."""

    @property
    def self_id(self) -> Optional[str]:
        """This client's public id while connected."""

    def get_registered_clients(self) -> Deferred:
        """@return: a L{Deferred} firing with the other clients' ids."""

    def get_metadata(self, client_id: str) -> Deferred:
        """@return: a L{Deferred} firing with C{client_id}'s metadata map."""

    def get_subscriptions(self, client_id: str) -> Deferred:
        """@return: a L{Deferred} firing with C{client_id}'s subscriptions map."""


@dataclasses.dataclass
class ClientInfo:
    """
    What is known about one other client.
    """

    client_id: str
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    subscriptions: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> Optional[str]:
        """
        C{samp.name}, if declared.
        """
        value = self.metadata.get("samp.name")
        return value if isinstance(value, str) else None

    def subscribed_to(self, mtype: str) -> bool:
        """
        Whether the client's subscriptions match C{mtype}.
        """
        return subscription_for(self.subscriptions, mtype) is not None


@dataclasses.dataclass
class TrackerEvent:
    """
    A change seen by the tracker.

    @ivar kind: C{"register"}, C{"unregister"}, C{"metadata"},
        C{"subscriptions"} or C{"reset"} (the whole table was reloaded or
        cleared).
    @ivar client_id: the client concerned (C{""} for C{"reset"}).
    @ivar info: its record (for C{"unregister"}, the last one known).
    """

    kind: str
    client_id: str
    info: Optional[ClientInfo]


class ClientTracker:
    """
    The other clients registered with the hub of one client (the hub itself
    included, this client excluded).  The client is reached only through
    L{TrackedClient}; it feeds hub events in with L{handle} and calls
    L{refresh} / L{clear} as it connects and disconnects.

    @ivar clients: client id to L{ClientInfo}.
    @ivar changes: an L{Observable} of L{TrackerEvent}.
    """

    log = Logger()

    def __init__(self, client: TrackedClient) -> None:
        self._client = client
        self.clients: Dict[str, ClientInfo] = {}
        self.changes: Observable[TrackerEvent] = Observable(client.reactor, "tracker")
        self._waiters: List[Any] = []

    async def refresh(self) -> None:
        """
        Reload the whole table from the hub.  Events arriving meanwhile are
        applied too; a client unregistering during the reload is dropped.
        """
        ids = await self._client.get_registered_clients()
        known: Dict[str, ClientInfo] = {}

        async def load(client_id: str) -> None:
            info = ClientInfo(client_id)
            try:
                info.metadata = await self._client.get_metadata(client_id)
                info.subscriptions = await self._client.get_subscriptions(client_id)
            except Exception:
                return  # it left meanwhile (HUB-RACE-1)
            known[client_id] = info

        await gatherResults([Deferred.fromCoroutine(load(i)) for i in ids], consumeErrors=True)
        for client_id, info in known.items():
            if client_id not in self.clients:
                self.clients[client_id] = info
        self._emit("reset", "")

    def clear(self) -> None:
        """
        Forget everything (the hub is gone).
        """
        self.clients.clear()
        self._emit("reset", "")

    def handle(self, mtype: str, params: Dict[str, Any]) -> None:
        """
        Apply one hub event.
        """
        client_id = params.get("id")
        if not isinstance(client_id, str) or client_id == self._client.self_id:
            return
        if mtype == REGISTER:
            self.clients.setdefault(client_id, ClientInfo(client_id))
            self._emit("register", client_id)
        elif mtype == UNREGISTER:
            info = self.clients.pop(client_id, None)
            self._emit("unregister", client_id, info)
        elif mtype == METADATA and isinstance(params.get("metadata"), dict):
            self.clients.setdefault(client_id, ClientInfo(client_id)).metadata = dict(
                params["metadata"]
            )
            self._emit("metadata", client_id)
        elif mtype == SUBSCRIPTIONS and isinstance(params.get("subscriptions"), dict):
            self.clients.setdefault(client_id, ClientInfo(client_id)).subscriptions = dict(
                params["subscriptions"]
            )
            self._emit("subscriptions", client_id)

    def _emit(self, kind: str, client_id: str, info: Optional[ClientInfo] = None) -> None:
        if info is None:
            info = self.clients.get(client_id)
        self.changes.emit(TrackerEvent(kind, client_id, info))
        for waiter in list(self._waiters):
            predicate, d = waiter
            try:
                result = predicate(self)
            except Exception as e:
                self._waiters.remove(waiter)
                d.errback(e)
                continue
            if result:
                self._waiters.remove(waiter)
                d.callback(result)

    def when(self, predicate: Callable[[ClientTracker], Any]) -> Deferred:
        """
        Wait until C{predicate(tracker)} returns something true.

        @return: a cancellable L{Deferred} firing with that value (at once
            if it already holds).
        """
        result = predicate(self)
        if result:
            d: Deferred = Deferred()
            d.callback(result)
            return d
        waiter: List[Any] = []

        def cancel(_: Deferred) -> None:
            if waiter and waiter[0] in self._waiters:
                self._waiters.remove(waiter[0])

        d = Deferred(cancel)
        waiter.append((predicate, d))
        self._waiters.append(waiter[0])
        return d

    # Queries

    def find(self, name: str) -> Optional[str]:
        """
        @return: the id of a client named C{name}, by the rule of
            L{samptwist.client.naming.pick_by_name}, or C{None}.
        """
        return pick_by_name(((i, c.name) for i, c in self.clients.items()), name)

    def subscribed(self, mtype: str) -> Dict[str, Any]:
        """
        @return: client id to annotation map for every client subscribed to
            C{mtype}.
        """
        found = {}
        for client_id, info in self.clients.items():
            annotation = subscription_for(info.subscriptions, mtype)
            if annotation is not None:
                found[client_id] = annotation
        return found

    def name_of(self, client_id: str) -> Optional[str]:
        """
        @return: the C{samp.name} of C{client_id}, if known.
        """
        info = self.clients.get(client_id)
        return info.name if info else None
