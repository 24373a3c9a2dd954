"""
Fixtures shared by the whole suite.

Every test runs with HOME pointing at a fresh temporary directory and without
SAMP_HUB, so nothing ever reads or writes the user's real ~/.samp.  Tests
that run our hub in this process use C{inprocess_hub} (on loopback, with its
own C{lockfile}) and C{make_client} (SAMPClients disconnected afterwards).
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """
    Give each test its own HOME (and USERPROFILE) and clear SAMP_HUB.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    java = os.environ.get("JAVA_TOOL_OPTIONS", "")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"{java} -Duser.home={home}".strip())
    return home


@pytest.fixture(autouse=True)
def no_unhandled_errors():
    """
    Fail a test that left a Deferred failing unseen ("Unhandled error in
    Deferred") or let an exception escape to the reactor ("Unhandled Error"),
    as magic-wormhole's suite does.  Failures our code logs on purpose (a
    handler that raised, say) are not counted.  Garbage collection runs first
    so that lost Deferreds report in time.
    """
    import gc

    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    errors = []

    def observe(event):
        if event.get("log_level") not in (LogLevel.error, LogLevel.critical):
            return
        text = str(event.get("log_format") or "") + " " + formatEvent(event)[:200]
        if "Unhandled error in Deferred" in text or "Unhandled Error" in text:
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(observe)
    if errors:
        texts = []
        for event in errors:
            failure = event.get("log_failure")
            texts.append(formatEvent(event) + ("\n" + failure.getTraceback() if failure else ""))
        pytest.fail("unhandled errors were logged:\n" + "\n---\n".join(texts)[-6000:],
                    pytrace=False)


@pytest.fixture
def lockfile(tmp_path):
    """A private lockfile path for a hub started by the test."""
    return tmp_path / "samp-lock"


@pytest_twisted.async_yield_fixture
async def inprocess_hub(lockfile):
    """Our hub, in this process, on loopback, with its own lockfile."""
    from twisted.internet import reactor

    from samptwist.hub.service import HubService

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
    from twisted.internet import reactor

    from samptwist.client import SAMPClient

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
