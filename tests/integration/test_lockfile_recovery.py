"""
A damaged or hostile lockfile never keeps the hub from starting, and every
refusal says why in one line: empty, truncated, garbage and symlinked
lockfiles, directories in the way, and two hubs starting at the same moment.
"""

import subprocess

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from samptwist.errors import HubAlreadyRunning, LockfileError
from samptwist.hub.service import HubService
from samptwist.lockfile import LockInfo, create_exclusive, inspect_lockfile
from tests.peers import hub_command, peer_env, running_hub

STALE = LockInfo("old", "http://127.0.0.1:9/xmlrpc", "1.3")

DAMAGE = {
    "empty": b"",
    "truncated": b"# SAMP Standard Profile lockfile\nsamp.secret=ab",
    "garbage": bytes(range(256)) * 40,
}


def damage(path, kind, tmp_path):
    if kind in DAMAGE:
        path.write_bytes(DAMAGE[kind])
    elif kind == "symlink":
        victim = tmp_path / "victim"
        victim.write_text("not yours\n")
        path.symlink_to(victim)
    elif kind == "dangling-symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "stale":
        create_exclusive(path, STALE)


async def outcome(service):
    try:
        return await service.ready
    except Exception as e:
        return e


@pytest.mark.parametrize(
    "kind", ["empty", "truncated", "garbage", "symlink", "dangling-symlink", "stale"]
)
@pytest_twisted.ensureDeferred
async def test_hub_starts_over_a_damaged_lockfile(tmp_path, kind):
    path = tmp_path / "lock"
    damage(path, kind, tmp_path)
    service = HubService(reactor, lockfile=path)
    service.startService()
    try:
        await service.ready
        state = inspect_lockfile(path)
        assert state.kind == "valid" and state.info.secret == service.secret
        if kind == "symlink":
            assert (tmp_path / "victim").read_text() == "not yours\n"
    finally:
        await service.stopService()
    assert not path.exists() and not path.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["victim"] if kind == "symlink" else []
    )


@pytest.mark.parametrize("kind", ["none", "stale", "empty", "dangling-symlink"])
@pytest_twisted.ensureDeferred
async def test_two_hubs_at_the_same_moment(tmp_path, kind):
    """Exactly one wins, the other names the winner; nothing else is left."""
    for round_ in range(3):
        path = tmp_path / f"lock{round_}"
        damage(path, kind, tmp_path)
        services = [HubService(reactor, lockfile=path) for _ in range(2)]
        for service in services:
            service.lock_service.settle_time = 0.05
            service.startService()
        results = await defer.gatherResults([defer.ensureDeferred(outcome(s)) for s in services])
        try:
            winners = [s for s, r in zip(services, results) if r is s]
            losers = [r for s, r in zip(services, results) if r is not s]
            assert len(winners) == 1, results
            assert isinstance(losers[0], HubAlreadyRunning), losers
            assert losers[0].url == winners[0].url
            assert inspect_lockfile(path).info.secret == winners[0].secret
        finally:
            for service in services:
                await service.stopService()
        assert not path.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest_twisted.ensureDeferred
async def test_directory_in_the_way_is_one_line(tmp_path):
    path = tmp_path / "lock"
    path.mkdir()
    service = HubService(reactor, lockfile=path)
    service.startService()
    error = await outcome(service)
    await service.stopService()
    assert isinstance(error, LockfileError)
    assert str(error) == (
        f"lockfile {path} is a directory; remove it, or choose another lockfile "
        "(--lockfile or SAMP_HUB)"
    )


def test_twistd_over_an_empty_lockfile(tmp_path):
    """What a crash or a full disk leaves: the next hub just starts."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".samp").write_bytes(b"")
    with running_hub(tmp_path) as hub:
        assert inspect_lockfile(hub.lockfile).kind == "valid"


def test_twistd_refusal_is_one_line(tmp_path):
    home = tmp_path / "home"
    (home / ".samp").mkdir(parents=True)
    lockfile = home / ".samp"
    done = subprocess.run(hub_command(lockfile), env=peer_env(home, lockfile),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"samphub: cannot start: lockfile {lockfile} is a directory; remove it, "
                     "or choose another lockfile (--lockfile or SAMP_HUB)"]
