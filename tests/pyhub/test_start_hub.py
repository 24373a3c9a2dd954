"""
Starting and stopping hubs from Python on a running reactor (issue 9):
samptwist.hub.runner.start_hub.
"""

import pytest
import pytest_twisted
from twisted.internet import error, reactor

from samptwist.errors import HubAlreadyRunning
from samptwist.hub.runner import start_hub
from tests.integration.hubtools import Participant


@pytest_twisted.ensureDeferred
async def test_start_stop_cycles(tmp_path):
    """Cycles leave no lockfile and no listening port behind."""
    lockfile = tmp_path / "private.samp"
    for _ in range(3):
        hub = await start_hub(reactor, lockfile=lockfile)
        assert hub.lockfile == lockfile and lockfile.exists()
        assert hub.params["samp.hub.xmlrpc.url"] == hub.url
        assert hub.samp_hub == "std-lockurl:" + lockfile.as_uri()
        c = await Participant(hub.url).register(hub.secret, subs={"samp.hub.event.shutdown": {}})
        await hub.stop()
        assert not hub.is_running
        assert not lockfile.exists()
        assert c.recorder.mtypes()[-1] == "samp.hub.event.shutdown"  # sent before stop fired
        with pytest.raises(error.ConnectionRefusedError):
            await Participant(hub.url).hub.callRemote("samp.hub.ping")
        await c.close()


@pytest_twisted.ensureDeferred
async def test_private_hub_beside_default(tmp_path, isolated_home):
    """A private lockfile never touches ~/.samp (here the test's own HOME)."""
    desktop = await start_hub(reactor)  # the "user's" hub at $HOME/.samp
    private = await start_hub(reactor, lockfile=tmp_path / "mine.samp")
    try:
        assert desktop.lockfile == isolated_home / ".samp"
        assert desktop.url != private.url
        assert (isolated_home / ".samp").read_text() != (tmp_path / "mine.samp").read_text()
    finally:
        await private.stop()
        await desktop.stop()
    assert not (isolated_home / ".samp").exists()


@pytest_twisted.ensureDeferred
async def test_second_hub_same_error(tmp_path):
    """The same clear error as `twistd samphub`, and the loser leaves nothing open."""
    first = await start_hub(reactor, lockfile=tmp_path / "lock")
    try:
        with pytest.raises(HubAlreadyRunning) as e:
            await start_hub(reactor, lockfile=tmp_path / "lock")
        assert str(e.value) == (
            f"a SAMP hub is already running at {first.url} (lockfile {tmp_path / 'lock'})"
        )
        assert first.params["samp.secret"] == first.secret
    finally:
        await first.stop()


@pytest_twisted.ensureDeferred
async def test_options_pass_through(tmp_path):
    hub = await start_hub(reactor, lockfile=tmp_path / "lock", label="Test hub",
                          secret="fixed-secret", callback_timeout=2)
    try:
        assert hub.params["hub.label"] == "Test hub"
        assert hub.secret == "fixed-secret"
        assert hub.service.caller.timeout == 2
    finally:
        await hub.stop()


@pytest_twisted.ensureDeferred
async def test_hub_timeout_stops_hub(tmp_path):
    """HUB-ACT-1: an idle hub stops by itself and removes its lockfile."""
    hub = await start_hub(reactor, lockfile=tmp_path / "lock", hub_timeout=0.5)
    await hub.service.stopped
    assert not hub.lockfile.exists()
    assert not hub.is_running
