"""
Real desktop applications on our hub, each on a private virtual X display
(Xvfb): TOPCAT (Debian package `topcat`), SAOImage DS9 (`saods9`) and Aladin
(`aladin`).  They register
with the hub found through the lockfile, are seen by our client library's
tracker, answer ping and load the data we send them (by the client library
and by `samptwist load`).  Missing applications or Xvfb: skipped, or failed
when CI is set.
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
from tests.client.hubs import wait_until

pytestmark = pytest.mark.interop

START = 120.0  # seconds for TOPCAT to come up and register (a JVM on 2 cores)
ROOT = Path(__file__).resolve().parents[2]


def _which(name: str, path: str, package: str = "") -> str:
    found = shutil.which(name) or (path if os.access(path, os.X_OK) else None)
    if found is None:
        raise LookupError(f"{name} is not installed (apt-get install {package or name.lower()})")
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


def _start_app(hub, display, name: str, argv: list, package: str = ""):
    exe = peers.require_peer(name, lambda: _which(name, f"/usr/bin/{name}", package))
    env = dict(hub.env, DISPLAY=display)
    env["JAVA_TOOL_OPTIONS"] = env["JAVA_TOOL_OPTIONS"] + " -Djava.awt.headless=false"
    log = open(hub.home / f"{name}.log", "wb")
    proc = subprocess.Popen([exe, *argv], env=env, cwd=str(hub.home),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, log


def _end_app(proc, log) -> None:
    # /usr/bin/topcat and /usr/bin/aladin are scripts running java: end the
    # whole session we started.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def topcat(hub, display):
    proc, log = _start_app(hub, display, "topcat", ["-samp", "-nohub"])
    try:
        yield proc
    finally:
        _end_app(proc, log)


@pytest.fixture
def ds9(hub, display):
    proc, log = _start_app(hub, display, "ds9", ["-xpa", "no"], package="saods9")
    try:
        yield proc
    finally:
        _end_app(proc, log)


@pytest.fixture
def aladin(hub, display):
    proc, log = _start_app(hub, display, "aladin", [])
    try:
        yield proc
    finally:
        _end_app(proc, log)


async def wait_for_app(client, hub, name: str, mtype: str) -> str:
    """Wait (bounded) until application C{name} is registered and subscribed to C{mtype}."""
    try:
        await client.tracker.when(
            lambda t: t.find(name) is not None and mtype in t.clients[t.find(name)].subscriptions
        ).addTimeout(START, reactor)
    except Exception:
        log = (hub.home / f"{name.lower()}.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{name} did not register within {START:.0f}s:\n{log}") from None
    return client.tracker.find(name)


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
        topcat_id = await wait_for_app(client, hub, "topcat", "table.load.votable")
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
        await wait_until(lambda: topcat.poll() is not None, 30, "TOPCAT to exit")
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


def fits_image(path: Path) -> Path:
    import importlib

    fits = peers.require_peer("astropy", lambda: importlib.import_module("astropy.io.fits"))
    import numpy
    hdu = fits.PrimaryHDU(numpy.arange(64 * 64, dtype="float32").reshape(64, 64))
    hdu.header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 83.63,
                       "CRVAL2": 22.01, "CRPIX1": 32.0, "CRPIX2": 32.0,
                       "CDELT1": -0.001, "CDELT2": 0.001})
    hdu.writeto(str(path))
    return path


@pytest_twisted.ensureDeferred
async def test_aladin_on_our_hub(hub, aladin, tmp_path):
    client = SAMPClient(reactor, name="aladin-test", lockfile=hub.lockfile)
    await client.connect()
    try:
        aladin_id = await wait_for_app(client, hub, "Aladin", "image.load.fits")
        pong = await client.call_and_wait(aladin_id, "samp.app.ping", timeout=30)
        assert pong["samp.status"] == "samp.ok"
        info = client.tracker.clients[aladin_id]
        assert {"coord.pointAt.sky", "image.load.fits", "samp.app.ping"} <= set(info.subscriptions)
        assert info.metadata["samp.name"] == "Aladin"
        # Offline (as here and in CI) Aladin may fail to build its server dialog
        # and then answer messages with a Java fault; either way the caller gets a
        # prompt, informative answer through our hub.
        image = fits_image(tmp_path / "crab.fits")
        for mtype, params in (("coord.pointAt.sky", {"ra": "83.633", "dec": "22.014"}),
                              ("image.load.fits", {"url": image.as_uri(), "name": "crab"})):
            try:
                response = await client.call_and_wait(aladin_id, mtype, params, timeout=60)
            except SAMPCallError as e:
                assert e.errortxt.startswith(f"delivery to {aladin_id} (Aladin) failed: "
                                             "client answered fault: java."), e.errortxt
            else:
                assert response["samp.status"] == "samp.ok", response
    finally:
        await client.disconnect()


@pytest_twisted.ensureDeferred
async def test_ds9_on_our_hub(hub, ds9, tmp_path):
    """DS9 (whose HTTP lines end with a bare LF) registers, loads an image sent by
    the client library and by `samptwist load`, and answers ds9.get."""
    client = SAMPClient(reactor, name="ds9-test", lockfile=hub.lockfile)
    await client.connect()
    try:
        ds9_id = await wait_for_app(client, hub, "SAOImageDS9", "image.load.fits")
        pong = await client.call_and_wait(ds9_id, "samp.app.ping", timeout=30)
        assert pong["samp.status"] == "samp.ok"
        image = fits_image(tmp_path / "crab.fits")
        loaded = await client.call_and_wait(
            ds9_id, "image.load.fits", {"url": image.as_uri(), "name": "crab"}, timeout=60)
        assert loaded["samp.status"] == "samp.ok", loaded
        shown = await client.call_and_wait(ds9_id, "ds9.get", {"cmd": "file"}, timeout=30)
        assert shown["samp.result"]["value"].strip() == str(image)
        done = subprocess.run(
            [sys.executable, "-m", "samptwist", "load", str(image), "--to", "SAOImageDS9"],
            env=dict(hub.env, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "accepted" in done.stdout, done.stdout + done.stderr
    finally:
        await client.disconnect()
