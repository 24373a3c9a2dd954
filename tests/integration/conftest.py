"""
Fixtures for tests against an in-process hub on loopback sockets.
"""

import pytest
import pytest_twisted
from twisted.internet import defer

from .hubtools import Participant, start_hub


@pytest.fixture
def hub(tmp_path):
    service = pytest_twisted.blockon(defer.ensureDeferred(start_hub(tmp_path, callback_timeout=3)))
    yield service
    if service.running:
        pytest_twisted.blockon(defer.maybeDeferred(service.stopService))


@pytest.fixture
def clients(hub):
    made = []

    async def make(**kw):
        c = await Participant(hub.url).register(hub.secret, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        pytest_twisted.blockon(defer.ensureDeferred(c.close()))
