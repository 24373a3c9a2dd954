"""
Optional inactivity time-outs (checklist HUB-ACT-1): a hub that stops after
a quiet period, and clients unregistered when they make no hub call for a
while.  Both are off by default.

Client time-outs are kept in deadline order (a heap), so a check costs
O(clients whose deadline has come), not O(clients): an active client is
looked at about once per time-out period, when its last known deadline
passes and is found to have moved on.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, List, Optional, Tuple

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from .._log import Logger
from . import events
from .core import Client, Hub


class ActivityMonitor(Service):
    """
    Watches a L{Hub}'s activity on its reactor.

    @param hub_timeout: seconds without any client call after which
        C{on_hub_timeout} is called (0: never).
    @param client_timeout: seconds without a call from a client after which
        it is ejected with C{samp.hub.disconnect} reason C{"Timeout expired!"}
        (0: never).
    @ivar examined: how many client deadlines checks have looked at (for
        tests and benchmarks: it grows with expiring clients, not with the
        number of registered clients).
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
        self.examined = 0
        self._loop: Optional[LoopingCall] = None
        # (deadline, registration serial, client): one entry per client
        self._deadlines: List[Tuple[float, int, Client]] = []
        self._unobserve: Optional[Callable[[], None]] = None

    def startService(self) -> None:
        super().startService()
        if self.client_timeout > 0:
            for client in self.hub.clients:  # once, at start
                self._watch(client)
            self._unobserve = self.hub.observe(self._observe)
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
        if self._unobserve is not None:
            self._unobserve()
            self._unobserve = None
        self._deadlines.clear()

    def _observe(self, event: events.HubEvent) -> None:
        if isinstance(event, events.ClientRegistered):
            self._watch(event.client)

    def _watch(self, client: Client) -> None:
        if client is not self.hub.hub_client and client.registered:
            heapq.heappush(
                self._deadlines,
                (client.last_seen + self.client_timeout, client.serial, client),
            )

    def check(self) -> None:
        """
        Eject idle clients and stop an idle hub.
        """
        now = self.hub.reactor.seconds()
        if self.client_timeout > 0:
            self._expire(now)
        if self.hub_timeout > 0 and now - self.hub.last_activity > self.hub_timeout:
            self.log.info(
                "no client activity for {seconds:g}s: stopping the hub", seconds=self.hub_timeout
            )
            self.hub_timeout = 0
            if self.on_hub_timeout is not None:
                self.on_hub_timeout()

    def _expire(self, now: float) -> None:
        heap = self._deadlines
        while heap and heap[0][0] < now:
            _, serial, client = heapq.heappop(heap)
            self.examined += 1
            if not client.registered:
                continue  # it left: forget it
            deadline = client.last_seen + self.client_timeout
            if now > deadline:
                self.hub.eject(client, "Timeout expired!")
            else:
                heapq.heappush(heap, (deadline, serial, client))
