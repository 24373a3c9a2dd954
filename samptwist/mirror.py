"""
Mirroring clients onto a hub: what C{samptwist bridge} (two hubs on one
machine) and C{samptwist remote} (a hub here, a hub on another machine) share.

A L{HubSide} is one hub as a mirroring program sees it: a manager client
that tracks the hub's clients, one web site serving the callbacks of every
client the program registers there, and the ids of its proxies.  A
L{ProxySet} keeps, on one L{HubSide}, a proxy client for each client that
lives elsewhere (on another hub, on another machine), with that client's
metadata and subscriptions; a message sent to a proxy is handed to a
C{forward} function, and L{ProxySet.deliver} passes a message coming from
elsewhere on to a client of this hub, sent by the proxy of its sender.

Loop protection: proxies carry the metadata key L{MARKER}; no client
carrying it (our proxies, or another bridge's) is ever mirrored, so two
mirroring programs between the same hubs do not echo clients back and forth.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Set, Tuple

from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from ._net import url_host
from .client import SAMPClient
from .client.handlers import Message, error
from .client.tracker import ClientInfo, TrackerEvent
from .constants import DEFAULT_LISTEN
from .errors import SAMPCallError

#: the metadata key every proxy carries (loop protection)
MARKER = "x-samptwist.bridge"

Forward = Callable[[str, Message], Awaitable[Optional[Dict[str, Any]]]]


class Gone(Exception):
    """
    The client left while its proxy was being made.
    """


class HubSide:
    """
    One hub, as a mirroring program sees it.

    @ivar manager: the client tracking this hub (connected by L{start}).
    @ivar proxy_ids: ids of this program's proxies on this hub.
    """

    def __init__(self, reactor: Any, label: str, lockfile: Optional[str] = None,
                 listen: str = DEFAULT_LISTEN,
                 advertise: Optional[str] = None) -> None:
        self.reactor = reactor
        self.label = label
        self.lockfile = lockfile
        self.listen = listen
        self.advertise = advertise
        self.root = Resource()
        self.base = ""
        self.port: Any = None
        self.manager: Optional[SAMPClient] = None
        self.proxy_ids: Set[str] = set()
        self._n = 0

    def new_client(self, **kwargs: Any) -> SAMPClient:
        """
        @return: an unconnected client of this side's hub whose callbacks
            this side's site serves.
        """
        self._n += 1
        name = f"c{self._n}".encode()
        client = SAMPClient(self.reactor, lockfile=self.lockfile,
                            callback_url=f"{self.base}c{self._n}/", **kwargs)
        self.root.putChild(name, client.callback_resource)
        client.disconnected.subscribe(lambda _: self.root.children.pop(name, None))
        return client

    async def start(self, name: str, description: str) -> SAMPClient:
        """
        Open the callback site and connect the manager.

        @return: the manager, connected.
        @raise SAMPError: (and subclasses) if the hub cannot be used.
        """
        if self.port is None and not self.base:  # (a test may serve callbacks itself)
            self.port = await serverFromString(self.reactor, self.listen).listen(Site(self.root))
            host = self.port.getHost()
            self.base = self.advertise or f"http://{url_host(host.host)}:{host.port}/"
            if not self.base.endswith("/"):
                self.base += "/"
        manager = self.new_client(name=name, description=description,
                                  metadata={MARKER: "manager"}, track=True)
        self.manager = manager
        await manager.connect()
        return manager

    async def stop(self) -> None:
        """
        Disconnect the manager and close the callback site.
        """
        if self.manager is not None:
            await self.manager.disconnect()
        if self.port is not None:
            port, self.port = self.port, None
            self.base = ""  # a new start opens a new site
            await port.stopListening()

    def foreign(self, client_id: str) -> Optional[ClientInfo]:
        """
        @return: what the tracker knows of C{client_id}, if it is a client
            to mirror elsewhere (not the hub, not a proxy of ours or of
            another bridge), else C{None}.
        """
        manager = self.manager
        if manager is None or manager.tracker is None:
            return None
        info = manager.tracker.clients.get(client_id)
        if info is None or client_id == manager.hub_id or client_id in self.proxy_ids:
            return None
        return None if MARKER in info.metadata else info

    def watch(self, on_update: Callable[[str, ClientInfo], None],
              on_drop: Callable[[str], None]) -> None:
        """
        Call C{on_update(client_id, info)} for every client to mirror, now
        and whenever its metadata or subscriptions change, and
        C{on_drop(client_id)} when it leaves.
        """
        manager = self.manager
        assert manager is not None and manager.tracker is not None
        tracker = manager.tracker

        def update(client_id: str) -> None:
            info = self.foreign(client_id)
            if info is not None:
                on_update(client_id, info)

        def changed(event: TrackerEvent) -> None:
            if event.kind == "reset":
                for client_id in list(tracker.clients):
                    update(client_id)
            elif event.kind == "unregister":
                on_drop(event.client_id)
            elif event.kind in ("metadata", "subscriptions"):
                # Not at "register": a proxy's marker arrives with its metadata.
                update(event.client_id)

        tracker.changes.subscribe(changed)
        for client_id in list(tracker.clients):
            update(client_id)


class ProxySet:
    """
    Proxy clients on one hub for clients that live elsewhere, each known by
    a key (its id where it lives).

    @ivar wanted: key to the (metadata, subscriptions) its proxy should
        have; a key is here from L{update} until L{drop}.
    @ivar proxies: key to its proxy, once registered.
    """

    def __init__(self, side: HubSide, forward: Forward, *,
                 announce: Callable[[str, SAMPClient], None] = lambda key, proxy: None,
                 timeout: float = 600.0) -> None:
        """
        @param forward: called as C{forward(key, message)} for each message
            a client of this hub sends to the proxy of C{key}; returns (an
            awaitable of) the response for a call, C{None} for a notification.
        @param announce: called with each new proxy, once registered.
        @param timeout: seconds a delivered call may wait for its reply.
        """
        self.side = side
        self.forward = forward
        self.announce = announce
        self.timeout = timeout
        self.wanted: Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]] = {}
        self.proxies: Dict[str, SAMPClient] = {}
        self._creating: Dict[str, Deferred] = {}

    def update(self, key: str, metadata: Mapping[str, Any],
               subscriptions: Mapping[str, Any]) -> Deferred:
        """
        Give the proxy of C{key} this metadata (marked with L{MARKER}) and
        these subscriptions (hub MTypes left out), creating it if need be.

        @return: a L{Deferred} firing with the proxy, or failing (with
            L{Gone} if C{key} was dropped meanwhile, or the hub's error).
        """
        self.wanted[key] = (dict(metadata), dict(subscriptions))
        proxy = self.proxies.get(key)
        if proxy is None:
            # Created with what is wanted now; whatever changes meanwhile is
            # applied once it exists.
            return self.ensure(key).addCallback(self._refresh, key)
        return self._refresh(proxy, key)

    def _refresh(self, proxy: SAMPClient, key: str) -> Deferred:
        if key not in self.wanted:
            return succeed(proxy)
        self._configure(proxy, key)
        return proxy.declare_metadata(proxy.metadata).addCallback(lambda _: proxy)

    def _configure(self, proxy: SAMPClient, key: str) -> None:
        metadata, subscriptions = self.wanted[key]
        proxy.metadata = dict(metadata)
        proxy.metadata.setdefault(MARKER, f"proxy of {key}")
        wanted = {p: a for p, a in subscriptions.items()
                  if isinstance(p, str) and not p.startswith("samp.hub.")}
        for pattern in list(proxy.handlers):
            if pattern not in wanted:
                proxy.remove_handler(pattern)
        handler = self._handler(key)
        for pattern, annotation in wanted.items():
            proxy.add_handler(pattern, handler, annotation if isinstance(annotation, dict) else {})

    def _handler(self, key: str) -> Any:
        def handle(message: Message) -> Any:
            return Deferred.fromCoroutine(self._handle(key, message))

        return handle

    async def _handle(self, key: str, message: Message) -> Optional[Dict[str, Any]]:
        manager = self.side.manager
        sender = message.sender_id
        if manager is None or sender == manager.hub_id or sender in self.side.proxy_ids:
            return error("not forwarded: only messages between clients are forwarded")
        if self.side.foreign(sender) is None:
            return error(f"cannot forward messages from {sender}")
        return await self.forward(key, message)

    def ensure(self, key: str) -> Deferred:
        """
        @return: a L{Deferred} firing with the proxy of C{key} (registered
            if need be), or failing with L{Gone} if C{key} is not wanted.
        """
        if key in self.proxies:
            return succeed(self.proxies[key])
        if key not in self.wanted:
            return Deferred.fromCoroutine(_raise(Gone(key)))
        creating = self._creating.get(key)
        if creating is None:
            creating = Deferred.fromCoroutine(self._create(key))
            if not creating.called:  # (it may finish at once, on an in-memory hub)
                self._creating[key] = creating
        waiter: Deferred = Deferred()
        creating.addBoth(_pass_to, waiter)
        return waiter

    async def _create(self, key: str) -> SAMPClient:
        proxy = self.side.new_client(track=False)
        self._configure(proxy, key)
        try:
            await proxy.connect()
        finally:
            self._creating.pop(key, None)
        assert proxy.self_id is not None
        self.side.proxy_ids.add(proxy.self_id)
        if key not in self.wanted:  # dropped meanwhile
            await proxy.disconnect()
            raise Gone(key)
        self.proxies[key] = proxy
        self.announce(key, proxy)
        return proxy

    def drop(self, key: str) -> Optional[SAMPClient]:
        """
        Unregister the proxy of C{key} (in the background), if any.

        @return: the proxy dropped, or C{None}.
        """
        self.wanted.pop(key, None)
        proxy = self.proxies.pop(key, None)
        if proxy is not None:
            proxy.disconnect()
        return proxy

    async def clear(self) -> None:
        """
        Unregister every proxy and wait until they are gone.
        """
        self.wanted.clear()
        proxies, self.proxies = list(self.proxies.values()), {}
        for proxy in proxies:
            await proxy.disconnect(timeout=2.0)

    async def deliver(self, sender: str, target: str, body: Dict[str, Any], is_call: bool,
                      timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """
        Send C{body} to C{target} (a client of this hub) from the proxy of
        C{sender}.

        @return: the response to a call (an error response if it could not
            be delivered or timed out), C{None} for a notification.
        @raise Exception: if a notification could not be delivered.
        """
        try:
            proxy = await self.ensure(sender)
        except Gone:
            if is_call:
                return error(f"unknown sender {sender}")
            raise
        except Exception as e:
            if is_call:
                return error(f"could not register the proxy of {sender}: {e}")
            raise
        if not is_call:
            await proxy.notify(target, body)
            return None
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        try:
            response: Dict[str, Any] = await proxy.call(target, body, timeout=limit)
        except SAMPCallError as e:
            response = e.response
        except TimeoutError:
            return error(f"no reply within {limit:g}s")
        except Exception as e:
            return error(f"delivery to {target} failed: {e}")
        return response


async def _raise(e: Exception) -> Any:
    raise e


def _pass_to(result: Any, d: Deferred) -> Any:
    if isinstance(result, Failure):
        d.errback(result)
        return None  # handled by the waiter
    d.callback(result)
    return result
