"""Fixtures for the real-peer tests; the helpers themselves live in tests/peers.py."""

import socket
import sys
from pathlib import Path

import pytest

# tests/ may or may not be a package, and pytest's import mode is not ours to choose:
# make ``import peers`` work either way.
_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import peers  # noqa: E402


@pytest.fixture
def hub(tmp_path):
    """Our hub in a subprocess, private HOME and lockfile; stopped and checked afterwards."""
    with peers.running_hub(tmp_path) as running:
        yield running


@pytest.fixture
def jsamp():
    return peers.require_jsamp()


@pytest.fixture(autouse=True)
def _bounded_sockets():
    """
    pyvo/astropy XML-RPC proxies have no timeout of their own: a hub that never
    answers would hang the suite.  Every socket made during a test gets a deadline.
    """
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(peers.SOCKET_TIMEOUT)
    yield
    socket.setdefaulttimeout(old)


@pytest.fixture(params=["pyvo.samp", "astropy.samp"])
def samp(request):
    """The pyvo.samp or astropy.samp module (same API; astropy's is deprecated since 8.0)."""
    return peers.require_samp_module(request.param)


@pytest.fixture
def samp_client(samp, hub):
    """
    Factory of SAMPIntegratedClient objects connected to ``hub`` (via its lockfile
    contents); every client still connected is disconnected before the hub stops.
    """
    clients = []

    def make(name="samptwist-interop", *, metadata=None, callable=True, connect=True):
        client = samp.SAMPIntegratedClient(
            name=name, metadata=metadata, callable=callable, addr="127.0.0.1"
        )
        clients.append(client)
        if connect:
            client.connect(hub_params=hub.hub_params)
        return client

    yield make
    for client in reversed(clients):
        peers.disconnect_quietly(client)
