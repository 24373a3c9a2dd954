"""
Fixtures for the client library tests: our hub in-process and clients that
are always disconnected afterwards (from tests/conftest.py), every hub in
turn, and access to tests/peers.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_twisted

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture
def our_hub(inprocess_hub):
    """Our hub, in this process (tests/conftest.py's inprocess_hub)."""
    return inprocess_hub


@pytest_twisted.async_yield_fixture(params=["samptwist", "astropy", "jsamp"])
async def any_hub(request, lockfile, isolated_home):
    """Each of the three hubs in turn, on a private lockfile."""
    from .hubs import HUB_KINDS

    hub = HUB_KINDS[request.param](lockfile, isolated_home)
    await hub.start()
    yield hub
    await hub.stop()
