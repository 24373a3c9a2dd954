"""
Subprocess tests: the examples/ programs and a pyvo.samp-style script run
through the blocking facade, against our hub running in this process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import peers
import pytest
import pytest_twisted
from twisted.internet import reactor

from samptwist.client import SAMPClient

from .hubs import child_env, end_process, run, spawn, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "scripts" / "pyvo_style.py"
pytestmark = pytest.mark.interop


def env_for(lockfile, home):
    env = child_env(home, lockfile)
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest_twisted.ensureDeferred
async def test_pyvo_script_ports_by_import(our_hub, lockfile, isolated_home):
    """A script written for pyvo.samp runs unchanged through the facade and
    the interpreter exits by itself."""
    status, out = await run([sys.executable, str(SCRIPT), "samptwist"],
                            env_for(lockfile, isolated_home), timeout=90)
    assert status == 0 and "PORT-OK" in out, out


@pytest_twisted.ensureDeferred
async def test_same_script_under_pyvo(our_hub, lockfile, isolated_home):
    """The same script passes with pyvo.samp itself (the test is honest)."""
    peers.require_samp_module("pyvo.samp")
    status, out = await run([sys.executable, str(SCRIPT), "pyvo"],
                            env_for(lockfile, isolated_home), timeout=90)
    assert status == 0 and "PORT-OK" in out, out


@pytest_twisted.ensureDeferred
async def test_facade_inside_running_asyncio_loop(our_hub, lockfile, isolated_home):
    """The blocking facade works while an asyncio loop runs (as in Jupyter)."""
    code = (
        "import asyncio\n"
        "from samptwist.client.blocking import SAMPIntegratedClient\n"
        "async def cell():\n"
        "    c = SAMPIntegratedClient(name='nb')\n"
        "    c.connect()\n"
        "    ids = c.get_registered_clients()\n"
        "    c.disconnect()\n"
        "    print('IDS', len(ids), flush=True)\n"
        "asyncio.run(cell())\n"
    )
    status, out = await run([sys.executable, "-c", code], env_for(lockfile, isolated_home),
                            timeout=60)
    assert status == 0 and "IDS 1" in out, out


@pytest_twisted.ensureDeferred
async def test_examples(our_hub, lockfile, isolated_home, tmp_path):
    """The responder answers its MType; send_votable reaches a subscriber and
    reports its reply."""
    env = env_for(lockfile, isolated_home)
    proto, transport = spawn([sys.executable, str(ROOT / "examples" / "responder.py")], env)
    me = SAMPClient(reactor, name="table-viewer", lockfile=lockfile)
    loaded = []
    me.add_handler("table.load.votable", lambda m: loaded.append(m.params) or {})
    try:
        await wait_until(lambda: "responder ready" in proto.text() or proto.exited, 60,
                         "responder start")
        await me.connect()
        responder = await me.wait_for_client("samptwist-responder").addTimeout(20, reactor)
        r = await me.call_and_wait(responder, "x-samptwist.example.add",
                                   {"a": "1.5", "b": "2"}, timeout=20)
        assert float(r["samp.result"]["sum"]) == 3.5
        table = tmp_path / "t.vot"
        table.write_text("<VOTABLE/>")
        status, out = await run(
            [sys.executable, str(ROOT / "examples" / "send_votable.py"), str(table)], env, 60)
        assert status == 0, out
        assert f"{me.self_id} (table-viewer): samp.ok" in out
        assert loaded and loaded[0]["url"] == table.as_uri()
    finally:
        await me.disconnect()
        await our_hub.stopService()  # the responder exits on hub shutdown
        await wait_until(lambda: proto.exited, 30, "responder exit")
        await end_process(proto, transport)
    assert "hub gone" in proto.text()


def test_notebook_session_example(isolated_home):
    """examples/notebook_session.py: private blocking hub, send_table_to, clean exit."""
    import os
    import subprocess

    peers.require_samp_module("astropy.table")
    env = dict(os.environ, HOME=str(isolated_home), PYTHONPATH=str(ROOT))
    env.pop("SAMP_HUB", None)
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook_session.py")],
                          env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=isolated_home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "viewer loaded 'my stars': 3 rows" in done.stdout
    assert "viewer: samp.ok" in done.stdout
    assert "lockfile removed: True" in done.stdout
    assert not (isolated_home / ".samp").exists()
