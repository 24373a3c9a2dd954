"""
Automatic reconnection (CLI-LIB-3): after the hub is lost, watch the
lockfile on a reactor-driven L{LoopingCall} and connect again once it names
a hub that answers, re-declaring metadata and subscriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

from .._log import Logger
from .discovery import find_hub

if TYPE_CHECKING:
    from .connection import SAMPClient


class Reconnector:
    """
    Watches for a hub on behalf of a disconnected L{SAMPClient}.

    @ivar interval: seconds between two looks at the lockfile.
    """

    log = Logger()

    def __init__(
        self, client: SAMPClient, interval: float = 1.0, heartbeat: float = 5.0
    ) -> None:
        self.client = client
        self.interval = interval
        self.heartbeat = heartbeat
        self._loop: Optional[LoopingCall] = None
        self._pulse: Optional[LoopingCall] = None
        self._skip_secret: Optional[str] = None
        self._attempts = 0

    @property
    def watching(self) -> bool:
        """
        Whether the lockfile is being watched.
        """
        return self._loop is not None and self._loop.running

    def start(self, skip_secret: Optional[str] = None) -> None:
        """
        Start watching.

        @param skip_secret: ignore a lockfile holding this secret (the hub
            that just went away, whose lockfile may linger a moment).
        """
        self._skip_secret = skip_secret
        if self.watching:
            return
        self._loop = LoopingCall(self._attempt)
        self._loop.clock = self.client.reactor
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: self.log.failure("reconnection loop failed", f)
        )

    def stop(self) -> None:
        """
        Stop watching.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def start_heartbeat(self) -> None:
        """
        While connected, ping the hub every C{heartbeat} seconds, so that a
        hub that died without a word (killed, machine asleep) is noticed and
        reconnection starts.
        """
        self.stop_heartbeat()
        if self.heartbeat <= 0:
            return
        self._pulse = LoopingCall(self._beat)
        self._pulse.clock = self.client.reactor
        self._pulse.start(self.heartbeat, now=False).addErrback(
            lambda f: self.log.failure("hub heartbeat failed", f)
        )

    def stop_heartbeat(self) -> None:
        """
        Stop pinging the hub.
        """
        if self._pulse is not None and self._pulse.running:
            self._pulse.stop()
        self._pulse = None

    def _beat(self) -> Deferred:
        client = self.client
        if not client.is_connected:
            self.stop_heartbeat()
            done: Deferred = Deferred()
            done.callback(None)
            return done
        d = client.ping()
        d.addTimeout(max(1.0, self.heartbeat), client.reactor)

        def dead(f: Any) -> None:
            self.log.info("the hub does not answer: {error}", error=f.getErrorMessage())
            self.stop_heartbeat()
            client._lost("unreachable")

        d.addErrback(dead)
        return d

    def _attempt(self) -> Deferred:
        if self.client.is_connected:
            self.stop()
            d: Deferred = Deferred()
            d.callback(None)
            return d
        self._attempts += 1
        d = find_hub(self.client.reactor, **self.client._discovery)

        def found(info: Any) -> Any:
            if self._skip_secret is not None and info.secret == self._skip_secret:
                return None
            return self.client.connect().addCallback(connected)

        def connected(_: Any) -> None:
            url = self.client.hub_info.url if self.client.hub_info else "?"
            self.log.info("reconnected to the hub at {url}", url=url)
            self.stop()

        def failed(f: Any) -> None:
            self.log.debug("no hub yet: {error}", error=f.getErrorMessage())

        d.addCallback(found)
        d.addErrback(failed)
        return d
