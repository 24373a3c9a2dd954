"""
Automatic reconnection (CLI-LIB-3): after the hub is lost, look at the
lockfile again and again (waits on the package's one L{Backoff}, on the
injected clock: every C{interval} seconds, growing up to C{max_interval})
and connect again once it names a hub that answers, re-declaring metadata
and subscriptions; while connected, a heartbeat notices a hub that died
silently.

The L{Reconnector} knows nothing of L{samptwist.client.SAMPClient}: the
client hands it the few operations it needs as callables.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall

from .._backoff import Backoff
from .._log import Logger


class Reconnector:
    """
    Watches for a hub on behalf of a disconnected client, and pings the hub
    of a connected one.

    @ivar interval: seconds between two looks at the lockfile (at first).
    @ivar max_interval: the longest wait between two looks (growing from
        C{interval} by doubling).
    @ivar heartbeat: seconds between two pings while connected (0: none).
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        *,
        is_connected: Callable[[], bool],
        find_hub: Callable[[], Deferred],
        connect: Callable[[], Deferred],
        ping: Callable[[], Deferred],
        lost: Callable[[str], None],
        interval: float = 1.0,
        heartbeat: float = 5.0,
        max_interval: Optional[float] = None,
    ) -> None:
        """
        @param clock: drives both loops.
        @param is_connected: whether the client is registered now.
        @param find_hub: discovery with the client's settings: a L{Deferred}
            firing with the L{LockInfo} of the hub to try, or failing if
            there is none (yet).
        @param connect: connect (register, declare, ...); a L{Deferred}
            firing once connected, or failing.
        @param ping: ping the hub; a L{Deferred} failing if it does not answer.
        @param lost: called with C{"unreachable"} when the heartbeat finds the
            hub dead; the client tears its connection down and calls
            L{start} again.
        @param max_interval: see the class (default: C{interval}, a look
            every C{interval} seconds).
        """
        self.clock = clock
        self._is_connected = is_connected
        self._find_hub = find_hub
        self._connect = connect
        self._ping = ping
        self._lost = lost
        self.interval = interval
        self.max_interval = max(interval, interval if max_interval is None else max_interval)
        self.heartbeat = heartbeat
        self._backoff = Backoff(clock, first=interval, maximum=self.max_interval)
        self._watching = False
        self._next: Optional[IDelayedCall] = None
        self._pulse: Optional[LoopingCall] = None
        self._skip_secret: Optional[str] = None
        self._attempts = 0

    @property
    def watching(self) -> bool:
        """
        Whether the lockfile is being watched.
        """
        return self._watching

    def start(self, skip_secret: Optional[str] = None) -> None:
        """
        Start watching.

        @param skip_secret: ignore a lockfile holding this secret (the hub
            that just went away, whose lockfile may linger a moment).
        """
        self._skip_secret = skip_secret
        if self.watching:
            return
        self._watching = True
        self._backoff.reset()
        self._schedule()

    def _schedule(self) -> None:
        if self._watching:
            self._next = self.clock.callLater(self._backoff.next_delay(), self._look)

    def _look(self) -> None:
        self._next = None
        self._backoff.started()
        d = self._attempt()
        d.addErrback(lambda f: self.log.failure("reconnection attempt failed", f))
        d.addBoth(lambda _: self._schedule())

    def stop(self) -> None:
        """
        Stop watching.
        """
        self._watching = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def start_heartbeat(self) -> None:
        """
        While connected, ping the hub every C{heartbeat} seconds, so that a
        hub that died without a word (killed, machine asleep) is noticed and
        reconnection starts.
        """
        self.stop_heartbeat()
        if self.heartbeat <= 0:
            return
        self._pulse = self._every(self.heartbeat, self._beat, "hub heartbeat")

    def stop_heartbeat(self) -> None:
        """
        Stop pinging the hub.
        """
        _halt(self._pulse)
        self._pulse = None

    def _every(self, seconds: float, fn: Callable[[], Deferred], what: str) -> LoopingCall:
        """
        @return: a running L{LoopingCall} of C{fn} on L{clock}, first after
            C{seconds}; its failure is logged as C{what} failing.
        """
        loop = LoopingCall(fn)
        loop.clock = self.clock
        loop.start(seconds, now=False).addErrback(
            lambda f: self.log.failure("{what} failed", f, what=what)
        )
        return loop

    def _beat(self) -> Deferred:
        if not self._is_connected():
            self.stop_heartbeat()
            return succeed(None)
        d = self._ping()
        d.addTimeout(max(1.0, self.heartbeat), self.clock)

        def dead(f: Any) -> None:
            self.log.info("the hub does not answer: {error}", error=f.getErrorMessage())
            self.stop_heartbeat()
            self._lost("unreachable")

        d.addErrback(dead)
        return d

    def _attempt(self) -> Deferred:
        if self._is_connected():
            self.stop()
            return succeed(None)
        self._attempts += 1
        d = self._find_hub()

        def found(info: Any) -> Any:
            if self._skip_secret is not None and info.secret == self._skip_secret:
                return None
            return self._connect().addCallback(connected, info.url)

        def connected(_: Any, url: str) -> None:
            self.log.info("reconnected to the hub at {url}", url=url)
            self.stop()

        def failed(f: Any) -> None:
            self.log.debug("no hub yet: {error}", error=f.getErrorMessage())

        d.addCallback(found)
        d.addErrback(failed)
        return d


def _halt(loop: Optional[LoopingCall]) -> None:
    if loop is not None and loop.running:
        loop.stop()
