"""
``samptwist remote`` against far sides that are not our agent: no agent at
all (a clear one-line error), and hostile ones (garbage, a request for a file
never sent, a flood) that are cut off with a clear line while the desktop's
hub goes on serving.  No namespaces needed: ``--via`` runs a local script.
"""

from __future__ import annotations

import shlex
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
