"""
Optional inactivity time-outs (checklist HUB-ACT-1): a hub that stops after
a quiet period, and clients unregistered when they make no hub call for a
while.  Both are off by default.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from .._log import Logger
from .core import HUB_ID, Hub


class ActivityMonitor(Service):
    """
    Watches a L{Hub}'s activity on its reactor.

    @param hub_timeout: seconds without any client call after which
        C{on_hub_timeout} is called (0: never).
    @param client_timeout: seconds without a call from a client after which
        it is ejected with C{samp.hub.disconnect} reason C{"Timeout expired!"}
        (0: never).
    """

    log = Logger()

    def __init__(
        self,
        hub: Hub,
        hub_timeout: float = 0,
        client_timeout: float = 0,
        on_hub_timeout: Optional[Callable[[], Any]] = None,
    ) -> None:
        self.hub = hub
        self.hub_timeout = hub_timeout
        self.client_timeout = client_timeout
        self.on_hub_timeout = on_hub_timeout
        self._loop: Optional[LoopingCall] = None

    def startService(self) -> None:
        super().startService()
        timeouts = [t for t in (self.hub_timeout, self.client_timeout) if t > 0]
        if timeouts:
            self._loop = LoopingCall(self.check)
            self._loop.clock = self.hub.reactor  # type: ignore[assignment]
            self._loop.start(max(0.05, min(timeouts) / 10), now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def check(self) -> None:
        """
        Eject idle clients and stop an idle hub.
        """
        now = self.hub.reactor.seconds()
        if self.client_timeout > 0:
            for client in self.hub.clients:
                if client.public_id != HUB_ID and now - client.last_seen > self.client_timeout:
                    self.hub.eject(client, "Timeout expired!")
        if self.hub_timeout > 0 and now - self.hub.last_activity > self.hub_timeout:
            self.log.info(
                "no client activity for {seconds:g}s: stopping the hub", seconds=self.hub_timeout
            )
            self.hub_timeout = 0
            if self.on_hub_timeout is not None:
                self.on_hub_timeout()
