"""
Unit tests of the connection life cycle (samptwist.client.lifecycle) on its
own: a Lifecycle registering with the in-memory hub, with recording hooks
and no SAMPClient.
"""

from __future__ import annotations

from typing import Any, List, Optional

import pytest
from twisted.internet.defer import Deferred, succeed

from samptwist.client.errors import NotConnected
from samptwist.client.lifecycle import Lifecycle
from samptwist.client.proxy import HubProxy
from samptwist.constants import HUB_ID
from samptwist.errors import SAMPHubError
from samptwist.testing import MemoryRig, failure_of, result_of


class Hooks:
    """Records what the Lifecycle asks of its client."""

    def __init__(self, rig: MemoryRig, fail_setup: bool = False) -> None:
        self.rig = rig
        self.fail_setup = fail_setup
        self.found = 0
        self.events: List[Any] = []

    def find_hub(self) -> Any:
        self.found += 1
        return succeed(self.rig.hub.lock_info())

    def open_proxy(self, info: Any) -> HubProxy:
        return HubProxy(info.url, self.rig.reactor, poster=self.rig.network, timeout=5)

    async def setup(self) -> None:
        self.events.append("setup")
        if self.fail_setup:
            raise ValueError("declaring failed")

    async def cleanup(self, reason: Optional[str]) -> None:
        self.events.append(("cleanup", reason))

    def make(self, **kwargs: Any) -> Lifecycle:
        return Lifecycle(
            self.rig.reactor,
            find_hub=self.find_hub,
            open_proxy=self.open_proxy,
            setup=self.setup,
            cleanup=self.cleanup,
            connected=lambda: self.events.append("connected"),
            disconnected=lambda reason: self.events.append(("disconnected", reason)),
            **kwargs,
        )


@pytest.fixture
def rig():
    return MemoryRig()


def test_concurrent_connects_share_one_attempt(rig):
    hooks = Hooks(rig)
    held: Deferred = Deferred()
    found = hooks.find_hub
    hooks.find_hub = lambda: held.addCallback(lambda _: found())  # type: ignore[method-assign]
    link = hooks.make()
    first, second = link.connect(), link.connect()
    assert link.connecting and not first.called and not second.called
    held.callback(None)
    rig.settle()
    assert result_of(first) is None and result_of(second) is None
    assert hooks.found == 1 and hooks.events == ["setup", "connected"]
    assert link.is_connected and not link.connecting
    assert rig.hub.hub.client_by_id(link.self_id) is not None
    assert link.hub_id == HUB_ID


def test_requests_carry_the_key_and_disconnect_unregisters(rig):
    hooks = Hooks(rig)
    link = hooks.make()
    link.connect()
    rig.settle()
    d = link.request("getRegisteredClients")
    rig.settle()
    assert HUB_ID in result_of(d)
    d = link.disconnect()
    rig.settle()
    assert result_of(d) is None
    assert not link.is_connected and link.proxy is None
    assert hooks.events[-2:] == [("cleanup", "closed"), ("disconnected", "closed")]
    assert failure_of(link.request("getRegisteredClients")).check(NotConnected)
    assert failure_of(link.ping()).check(NotConnected)


def test_failed_setup_unregisters_and_fails_connect(rig):
    hooks = Hooks(rig, fail_setup=True)
    link = hooks.make()
    d = link.connect()
    rig.settle()
    assert failure_of(d).check(ValueError)
    assert not link.is_connected
    assert [c.public_id for c in rig.hub.hub.clients] == [HUB_ID]
    # Torn down without a reason: nothing was connected to report lost.
    assert hooks.events == ["setup", ("cleanup", None)]


def test_wrong_secret_fails_without_hooks(rig):
    hooks = Hooks(rig)
    hooks.find_hub = lambda: succeed(type(rig.hub.lock_info())(secret="wrong",  # type: ignore
                                                               url=rig.hub.url))
    link = hooks.make()
    d = link.connect()
    rig.settle()
    assert failure_of(d).check(SAMPHubError)
    assert hooks.events == []


def test_lost_tears_down_once_and_reports_the_reason(rig):
    hooks = Hooks(rig)
    link = hooks.make()
    link.connect()
    rig.settle()
    link.lost("shutdown")
    link.lost("shutdown")  # already gone: nothing more
    rig.settle()
    assert hooks.events[-2:] == [("cleanup", "shutdown"), ("disconnected", "shutdown")]
    assert hooks.events.count(("cleanup", "shutdown")) == 1


def test_reconnector_is_wired_to_the_life_cycle(rig):
    hooks = Hooks(rig)
    link = hooks.make(reconnect=True, reconnect_interval=1.0, heartbeat=0)
    assert link.reconnector is not None
    link.connect()
    rig.settle()
    first_id = link.self_id
    link.lost("disconnect")  # the hub ejected us: the same hub may be taken again
    rig.settle()
    assert link.reconnector.watching
    rig.advance(1.0)
    rig.settle()
    assert link.is_connected and link.self_id != first_id
    assert not link.reconnector.watching
