"""
C{HubService.ready} / C{.stopped} / C{when_ready()} / C{when_stopped()} and
C{WebProfileService.ready}: each consumer gets a fresh Deferred, so a first
consumer's callback returning C{None} (the README's
C{ready.addCallback(lambda h: print(...))}) does not change what a second one
receives.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from samptwist.errors import HubAlreadyRunning
from samptwist.hub.service import HubService


def _service(lockfile, **kw):
    return HubService(reactor, listen="tcp:0:interface=127.0.0.1", lockfile=lockfile,
                      shutdown_grace=0.5, **kw)


@pytest_twisted.ensureDeferred
async def test_ready_and_stopped_hand_each_consumer_its_own_deferred(lockfile):
    service = _service(lockfile, web_listen="tcp:0:interface=127.0.0.1")
    assert service.ready is not service.ready
    first = service.ready
    first.addCallback(lambda hub: None)  # the README's print(...) returns None
    web_first = service.web.ready
    web_first.addCallback(lambda web: None)
    stopped_first = service.stopped
    stopped_first.addCallback(lambda _: "eaten")
    service.startService()
    try:
        assert await service.ready is service  # a second consumer, before ready
        assert await first is None  # the first consumer's own chain
        assert await service.when_ready() is service  # later consumers too
        assert await service.web.ready is service.web
        assert await service.web.when_ready() is service.web
        assert await web_first is None
    finally:
        await service.stopService()
    assert service.has_stopped
    assert await stopped_first == "eaten"
    assert await service.stopped is None
    assert await service.when_stopped() is None


@pytest_twisted.ensureDeferred
async def test_a_handled_failure_still_reaches_the_next_consumer(inprocess_hub):
    other = _service(inprocess_hub.lockfile)
    first = other.ready
    first.addErrback(lambda failure: None)  # one consumer swallows the error
    other.startService()
    try:
        with pytest.raises(HubAlreadyRunning):
            await other.ready
        with pytest.raises(HubAlreadyRunning):
            await other.when_ready()
        assert await first is None
    finally:
        await other.stopService()
