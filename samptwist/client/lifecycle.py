"""
The life cycle of one client's connection to a hub: discover the hub,
register (concurrent C{connect()}s share one attempt), keep the private key
and the ids, send hub requests with the key, unregister when asked to or
when the reactor stops, and tear down when the hub is lost, handing over to
the L{Reconnector} if there is one.

L{Lifecycle} knows nothing of L{samptwist.client.SAMPClient}: what the
client does once registered (declaring its callback, metadata and
subscriptions) and once the connection ended is given to it as callables.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, List, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from .._log import Logger
from ..errors import SAMPHubError
from ..lockfile import LockInfo
from .errors import HubUnreachable, NotConnected
from .proxy import HubProxy
from .reconnect import Reconnector


class Lifecycle:
    """
    One client's connection to a hub, from discovery to its end.

    @ivar proxy: the L{HubProxy} while connected.
    @ivar hub_info: the hub's lockfile information while connected.
    @ivar private_key: this client's private key while registered.
    @ivar self_id: this client's public id while connected.
    @ivar hub_id: the hub's public id while connected.
    @ivar reconnector: the L{Reconnector}, if reconnecting automatically.
    """

    log = Logger()

    def __init__(
        self,
        clock: Any,
        *,
        find_hub: Callable[[], Deferred],
        open_proxy: Callable[[LockInfo], HubProxy],
        setup: Callable[[], Awaitable[None]],
        cleanup: Callable[[Optional[str]], Awaitable[None]],
        connected: Callable[[], None],
        disconnected: Callable[[str], None],
        unregister_on_shutdown: bool = True,
        reconnect: bool = False,
        reconnect_interval: float = 1.0,
        heartbeat: float = 5.0,
    ) -> None:
        """
        @param clock: the reactor (system event triggers are used if it has
            them).
        @param find_hub: discovery: a L{Deferred} firing with the
            L{LockInfo} of the hub to use, or failing.
        @param open_proxy: makes the L{HubProxy} for a hub.
        @param setup: run once registered (L{private_key} and the ids set):
            declarations; if it fails, the client unregisters and the
            connection attempt fails with its error.
        @param cleanup: run when the connection ends (or a connection
            attempt fails), with the reason (C{None}: no connection to
            report lost), before the proxy closes.
        @param connected: called once a connection is complete.
        @param disconnected: called with the reason once an established
            connection ended (see L{samptwist.client.SAMPClient}).
        @param unregister_on_shutdown: unregister when the reactor stops.
        @param reconnect: reconnect when a hub appears again after the
            connection was lost (not after L{disconnect}).
        @param reconnect_interval: seconds between looks at the lockfile.
        @param heartbeat: with C{reconnect}, seconds between pings (0: none).
        """
        self.clock = clock
        self._find_hub = find_hub
        self._open_proxy = open_proxy
        self._setup = setup
        self._cleanup = cleanup
        self._connected = connected
        self._disconnected = disconnected
        self._unregister_on_shutdown = unregister_on_shutdown
        self.proxy: Optional[HubProxy] = None
        self.hub_info: Optional[LockInfo] = None
        self.private_key: Optional[str] = None
        self.self_id: Optional[str] = None
        self.hub_id: Optional[str] = None
        self._connecting: Optional[Deferred] = None
        self._waiters: List[Deferred] = []
        self._trigger: Any = None
        self._last_secret: Optional[str] = None
        self.reconnector: Optional[Reconnector] = None
        if reconnect:
            self.reconnector = Reconnector(
                clock,
                is_connected=lambda: self.is_connected,
                find_hub=find_hub,
                connect=self.connect,
                ping=self.ping,
                lost=self.lost,
                interval=reconnect_interval,
                heartbeat=heartbeat,
            )

    @property
    def is_connected(self) -> bool:
        """
        Whether the client is registered with a hub.
        """
        return self.private_key is not None

    @property
    def connecting(self) -> bool:
        """
        Whether a connection attempt is under way.
        """
        return self._connecting is not None

    def connect(self) -> Deferred:
        """
        Connect, unless connected already; concurrent calls share one
        attempt.

        @return: a L{Deferred} firing with C{None} once connected, or
            failing with C{find_hub}'s error (e.g. L{LockfileError}),
            L{HubUnreachable}, L{SAMPHubError} (the hub refused or answered
            nonsense) or C{setup}'s error.
        """
        if self.is_connected:
            return succeed(None)
        waiter: Deferred = Deferred()
        self._waiters.append(waiter)
        if self._connecting is None:
            self._connecting = Deferred.fromCoroutine(self._connect())
            self._connecting.addBoth(self._connect_done)
        return waiter

    def _connect_done(self, result: Any) -> None:
        self._connecting = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    async def _connect(self) -> None:
        info = await self._find_hub()
        proxy = self._open_proxy(info)
        try:
            registration = await proxy.call("register", info.secret)
        except BaseException:
            await _quietly(proxy.close())
            raise
        if not isinstance(registration, dict) or not isinstance(
            registration.get("samp.private-key"), str
        ):
            await _quietly(proxy.close())
            raise SAMPHubError(f"hub answered register with {registration!r:.200}")
        self.proxy = proxy
        self.hub_info = info
        self.private_key = registration["samp.private-key"]
        self.self_id = str(registration.get("samp.self-id", ""))
        self.hub_id = str(registration.get("samp.hub-id", ""))
        self.log.info(
            "registered with the hub at {url} as {client_id}", url=info.url, client_id=self.self_id
        )
        try:
            await self._setup()
        except BaseException:
            await _quietly(self.request("unregister", timeout=5.0))
            await self._teardown(None)
            raise
        if self._unregister_on_shutdown and hasattr(self.clock, "addSystemEventTrigger"):
            self._trigger = self.clock.addSystemEventTrigger(
                "before", "shutdown", self._reactor_shutdown
            )
        if self.reconnector is not None:
            self.reconnector.start_heartbeat()
        self._connected()

    def disconnect(self, timeout: float = 5.0) -> Deferred:
        """
        Unregister (after a connection attempt under way ends), stop
        reconnecting and tear down.

        @param timeout: seconds allowed for the hub to answer unregister.
        @return: a L{Deferred} firing with C{None}; it never fails.
        """
        if self.reconnector is not None:
            self.reconnector.stop()
        return Deferred.fromCoroutine(self._disconnect(timeout))

    async def _disconnect(self, timeout: float) -> None:
        if self._connecting is not None:
            await _quietly(self._connecting)
        if self.private_key is None:
            await self._teardown(None)
            return
        try:
            await self.request("unregister", timeout=timeout)
        except Exception as e:
            self.log.info("unregister failed: {error}", error=e)
        self.log.info("unregistered {client_id}", client_id=self.self_id)
        await self._teardown("closed")

    def _reactor_shutdown(self) -> Deferred:
        self._trigger = None
        return self.disconnect(timeout=3.0)

    async def _teardown(self, reason: Optional[str]) -> None:
        was = self.private_key is not None
        if self.reconnector is not None:
            self.reconnector.stop_heartbeat()
        if self.private_key is not None and self.hub_info is not None:
            self._last_secret = self.hub_info.secret
        self.private_key = None
        if self._trigger is not None:
            try:
                self.clock.removeSystemEventTrigger(self._trigger)
            except (ValueError, KeyError):
                pass
            self._trigger = None
        await self._cleanup(reason)
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            await _quietly(proxy.close())
        if was and reason is not None:
            self._disconnected(reason)

    def lost(self, reason: str) -> None:
        """
        The connection is gone (C{"shutdown"}, C{"disconnect"} or
        C{"unreachable"}): tear down, then let the L{reconnector} (if any)
        watch for a hub; after C{"disconnect"} the same hub may be taken
        again.  Does nothing if not connected.
        """
        if self.private_key is None:
            return
        self.log.info("lost the hub ({reason})", reason=reason)
        Deferred.fromCoroutine(self._teardown(reason))
        if self.reconnector is not None:
            self.reconnector.start(None if reason == "disconnect" else self._last_secret)

    def request(self, method: str, *args: Any, timeout: Optional[float] = -1.0) -> Deferred:
        """
        Call C{samp.hub.<method>(private_key, *args)}.

        @param timeout: seconds; C{-1}: the proxy's default; C{None}: none.
        @return: a L{Deferred} firing with the hub's answer, or failing with
            L{NotConnected}, L{SAMPHubError} (a fault), L{HubUnreachable}
            (the connection is then dropped as lost) or L{TimeoutError}.
        """
        if self.private_key is None or self.proxy is None:
            return fail(NotConnected(f"cannot {method}: not connected to a hub"))
        d = self.proxy.call(method, self.private_key, *args, timeout=timeout)
        d.addErrback(self._request_failed)
        return d

    def _request_failed(self, f: Failure) -> Failure:
        if f.check(HubUnreachable):
            self.clock.callLater(0, self.lost, "unreachable")
        return f

    def ping(self) -> Deferred:
        """
        C{samp.hub.ping} (no key needed).

        @return: a L{Deferred} firing with C{None} if the hub answers,
            failing with L{NotConnected} (no hub known), L{HubUnreachable}
            or L{SAMPHubError}.
        """
        if self.proxy is None:
            return fail(NotConnected("cannot ping: not connected to a hub"))
        return self.proxy.call("ping").addCallback(lambda _: None)


async def _quietly(d: Deferred) -> None:
    try:
        await d
    except BaseException:
        pass
