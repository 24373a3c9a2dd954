"""
A real desktop application on our hub: TOPCAT (Debian package `topcat`),
running on a virtual X display (Xvfb), registers with the hub found through
the lockfile, is seen by our client library's tracker, answers ping, loads a
VOTable sent by our client and by `samptwist load`, and unregisters when it
exits.  Missing TOPCAT or Xvfb: skipped, or failed when CI is set.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import peers
import pytest
import pytest_twisted
from twisted.internet import reactor

from samptwist.client import SAMPClient
from samptwist.errors import SAMPCallError, SAMPHubError

pytestmark = pytest.mark.interop

START = 120.0  # seconds for TOPCAT to come up and register (a JVM on 2 cores)
ROOT = Path(__file__).resolve().parents[2]


def _which(name: str, path: str) -> str:
    found = shutil.which(name) or (path if os.access(path, os.X_OK) else None)
    if found is None:
        raise LookupError(f"{name} is not installed (apt-get install {name.lower()})")
    return found


@pytest.fixture
def display():
    """A private Xvfb display, chosen by Xvfb itself (-displayfd); ended by PID."""
    xvfb = peers.require_peer("Xvfb", lambda: _which("Xvfb", "/usr/bin/Xvfb"))
    read, write = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1280x1024x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read, selectors.EVENT_READ)
            assert sel.select(timeout=30), "Xvfb did not start"
            number = os.read(read, 64).decode().strip()
        assert number.isdigit(), number
        yield f":{number}"
    finally:
        os.close(read)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def hub(tmp_path):
    with peers.running_hub(tmp_path) as running:
        yield running


@pytest.fixture
def topcat(hub, display):
    exe = peers.require_peer("topcat", lambda: _which("topcat", "/usr/bin/topcat"))
    env = dict(hub.env, DISPLAY=display)
    env["JAVA_TOOL_OPTIONS"] = env["JAVA_TOOL_OPTIONS"] + " -Djava.awt.headless=false"
    log = open(hub.home / "topcat.log", "wb")
    proc = subprocess.Popen([exe, "-samp", "-nohub"], env=env, cwd=str(hub.home),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc
    finally:
        # /usr/bin/topcat is a script running java: end the whole session we started
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=20)
        log.close()


async def until(predicate, timeout: float) -> None:
    """Wait on the reactor (no sleeping) until predicate() is true."""
    from twisted.internet.task import deferLater

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await deferLater(reactor, 0.1, lambda: None)


def votable(path: Path) -> Path:
    table = peers.require_samp_module("astropy.table")
    table.Table({"ra": [10.5, 20.25, 30.0], "dec": [-1.0, 2.0, 45.5]}).write(
        str(path), format="votable")
    return path


@pytest_twisted.ensureDeferred
async def test_topcat_on_our_hub(hub, topcat, tmp_path):
    client = SAMPClient(reactor, name="topcat-test", lockfile=hub.lockfile)
    await client.connect()
    try:
        try:
            await client.tracker.when(
                lambda t: t.find("topcat") is not None
                and "table.load.votable" in t.clients[t.find("topcat")].subscriptions
            ).addTimeout(START, reactor)
        except Exception:
            log = (hub.home / "topcat.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"TOPCAT did not register within {START:.0f}s:\n{log}") from None
        topcat_id = client.tracker.find("topcat")
        assert client.tracker.clients[topcat_id].metadata["samp.name"] == "topcat"

        pong = await client.call_and_wait(topcat_id, "samp.app.ping", timeout=30)
        assert pong["samp.status"] == "samp.ok"

        table = votable(tmp_path / "stars.vot")
        loaded = await client.call_and_wait(
            topcat_id, "table.load.votable",
            {"url": table.as_uri(), "table-id": "stars", "name": "stars"}, timeout=60)
        assert loaded["samp.status"] == "samp.ok", loaded

        # the command-line tool, as a user would run it
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "samptwist", "load", str(table), "--to", "topcat"],
            env=dict(hub.env, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "topcat" in done.stdout and time.monotonic() - start < 120

        # TOPCAT killed: callers are not left waiting for it (a prompt samp.error),
        # and after repeated failures the hub drops it (samp.hub.event.unregister).
        os.killpg(topcat.pid, signal.SIGKILL)  # the script and its JVM (own session)
        await until(lambda: topcat.poll() is not None, 30)
        if client.tracker.find("topcat") is not None:
            start = time.monotonic()
            with pytest.raises(SAMPCallError) as failed:
                await client.call_and_wait(topcat_id, "samp.app.ping", timeout=30)
            assert "delivery to" in failed.value.errortxt
            assert time.monotonic() - start < 10
            for _ in range(3):
                try:
                    await client.notify(topcat_id, "samp.app.ping")
                except SAMPHubError as e:  # already dropped by the hub
                    assert "no longer registered" in str(e)
                    break
            await client.tracker.when(lambda t: t.find("topcat") is None).addTimeout(30, reactor)
    finally:
        await client.disconnect()
