"""
``samptwist remote`` against far sides that are not our agent: no agent at
all (a clear one-line error), and hostile ones (garbage, a request for a file
never sent, a flood) that are cut off with a clear line while the desktop's
hub goes on serving.  No namespaces needed: ``--via`` runs a local script.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from pathlib import Path

import peers
import pytest

from tests.cli.conftest import run_cli

SCRIPT = Path(__file__).resolve().parent / "scripts" / "hostile.py"


@pytest.fixture
def desk_hub(tmp_path):
    with peers.running_hub(tmp_path) as hub:
        yield hub


def via(mode: str) -> str:
    # The agent's own arguments are appended to the command; the script
    # ignores them.
    return shlex.join([sys.executable, str(SCRIPT), mode])


def test_no_agent_on_the_far_side_is_one_clear_line(desk_hub):
    done = run_cli(desk_hub.env, "remote", "--via", via("missing"))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith("samptwist remote: could not start the samptwist agent"), lines
    assert "No module named samptwist" in lines[-1] and "status 1" in lines[-1]


def test_an_older_agent_on_the_far_side_is_one_clear_line(desk_hub):
    done = run_cli(desk_hub.env, "remote", "--via", via("old"), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("samptwist remote: could not start the samptwist agent"), last
    assert "speaks link protocol 1, this one 2" in last and "same samptwist version" in last


@pytest.mark.parametrize("mode, why", [
    ("garbage", "not the samptwist remote protocol"),
    ("unlisted", "it asked for a file never sent"),
    ("flood", "more than 100 commands within a second (flooding)"),
])
def test_hostile_far_side_is_cut_off_and_the_hub_keeps_serving(desk_hub, mode, why):
    done = run_cli(desk_hub.env, "remote", "--once", "--max-rate", "100", "--via", via(mode),
                   timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "samptwist remote: cutting off evil: " in done.stderr and why in done.stderr, \
        done.stderr
    assert "link to evil lost" in done.stdout, done.stdout
    listed = run_cli(desk_hub.env, "clients")
    assert listed.returncode == 0 and "samptwist" in listed.stdout
    assert "samptwist remote" not in listed.stdout  # the agent unregistered


def test_waits_for_the_desktop_hub_to_come_back_and_links_again(tmp_path):
    """TOPCAT closed with its hub, then started again: the link waits, then comes back."""
    from tests.cli.conftest import Running
    from tests.remote.peerproc import desktop_peer

    with contextlib.ExitStack() as stack:
        far_hub = stack.enter_context(peers.running_hub(tmp_path / "far"))
        desk = contextlib.ExitStack()
        desk_hub = desk.enter_context(peers.running_hub(tmp_path / "desk"))
        # The far side: an agent on the second hub, through a plain pipe.
        link = Running(desk_hub.env, "remote", "--via", "env", "--remote-lockfile",
                       str(far_hub.lockfile), "--reconnect-delay", "0.5")
        stack.callback(lambda: link.proc.poll() is None and link.stop())
        link.wait_line("linked to", 60)
        far = desktop_peer(far_hub.env, "notebook")
        stack.callback(far.close)

        desk.close()  # the desktop's hub stops
        link.wait_line("lost this desktop's hub", 30, stream="err")
        link.wait_line("waiting for this desktop's hub to come back", 30)
        assert link.proc.poll() is None, link.err.snapshot()

        desk_hub = stack.enter_context(peers.running_hub(tmp_path / "desk"))  # same lockfile
        link.wait_line("this desktop's hub is back", 60)
        viewer = desktop_peer(desk_hub.env, "desk-viewer")
        stack.callback(viewer.close)
        far.wait_names(lambda n: "desk-viewer" in n, 60, "the desktop's client mirrored again")
        echoed = far.ask("result", op="call_and_wait", to="desk-viewer", mtype="test.echo",
                         params={"x": "back"}, timeout=30)
        assert echoed["response"]["samp.result"] == {"echo": "back"}
        assert link.stop(signal.SIGINT) == 0
