"""
Fixtures for the client library tests: our hub in-process, clients that are
always disconnected afterwards, and access to tests/peers.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from samptwist.client import SAMPClient  # noqa: E402
from samptwist.hub.service import HubService  # noqa: E402


@pytest.fixture
def lockfile(tmp_path):
    return tmp_path / "samp-lock"


@pytest_twisted.async_yield_fixture
async def our_hub(lockfile):
    """Our hub, in this process, on loopback, with its own lockfile."""
    service = HubService(reactor, listen="tcp:0:interface=127.0.0.1", lockfile=lockfile,
                         shutdown_grace=2.0)
    service.startService()
    await service.ready
    yield service
    if service.running:
        await service.stopService()


@pytest_twisted.async_yield_fixture
async def make_client(lockfile):
    """Factory of connected SAMPClients; all are disconnected afterwards."""
    clients = []

    async def make(name="test-client", connect=True, **kwargs):
        kwargs.setdefault("lockfile", lockfile)
        client = SAMPClient(reactor, name=name, **kwargs)
        clients.append(client)
        if connect:
            await client.connect()
        return client

    yield make
    for client in clients:
        await client.disconnect()


@pytest_twisted.async_yield_fixture(params=["samptwist", "astropy", "jsamp"])
async def any_hub(request, lockfile, isolated_home):
    """Each of the three hubs in turn, on a private lockfile."""
    from .hubs import HUB_KINDS

    hub = HUB_KINDS[request.param](lockfile, isolated_home)
    await hub.start()
    yield hub
    await hub.stop()
