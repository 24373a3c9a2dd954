"""
``samptwist hub`` (the twistd samphub hub without twistd) and ``samptwist
bridge`` between two real hubs, with pyvo.samp clients on both sides.
"""

from __future__ import annotations

import json
import os
import signal

import peers
import pytest

from .conftest import Running, ok, one_line_error, run_cli

pytestmark = pytest.mark.interop


def test_hub_subcommand_runs_and_stops_cleanly(tmp_path, make_peer):
    """STD-LOCKSEC-1/2/4, STD-SHUT-1: ready line with the status page URL, a
    second hub on the same lockfile refused in one line, SIGINT and SIGTERM
    stop it with status 0 and the lockfile removed."""
    lock = tmp_path / "hub.samp"
    env = dict(os.environ)
    for sig in (signal.SIGINT, signal.SIGTERM):
        hub = Running(env, "hub", "--lockfile", str(lock), "--no-web")
        try:
            line = hub.wait_line("SAMP hub ready at")
            assert "/status?key=" in line and lock.exists()
            assert peers.is_private_lockfile(lock)
            # a plain-TCP hub, as under twistd: no pyOpenSSL / cryptography (issue 16)
            maps = open(f"/proc/{hub.proc.pid}/maps").read()
            assert "cryptography" not in maps and "OpenSSL" not in maps
            other = run_cli(env, "hub", "--lockfile", str(lock), "--no-web")
            assert other.returncode == 1
            assert "a SAMP hub is already running" in other.stderr
            cp = run_cli(env, "clients", "--lockfile", str(lock))
            assert cp.returncode == 0 and "samptwist" in cp.stdout
        finally:
            code = hub.stop(sig)
        assert code == 0, (hub.lines(), hub.err.snapshot())
        assert not lock.exists()


def test_bridge_forwards_calls_and_replies(tmp_path, make_peer):
    """A client on hub A calls a client on hub B through the bridge and gets
    its reply; B's client notifies A's; URLs are translated with --map; a
    second bridge between the same hubs does not loop proxies back."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    with peers.running_hub(a_dir) as hub_a, peers.running_hub(b_dir) as hub_b:
        far = make_peer(hub_b, "far-echo", calls={
            "x-test.echo": lambda p: ok({"echo": p.get("url", ""), "from": "B"})})
        near = make_peer(hub_a, "near", notes=["x-test.note"])
        bridge = Running(hub_a.env, "bridge", str(hub_a.lockfile), str(hub_b.lockfile),
                         "--map", "file:///A/=file:///B/")
        try:
            bridge.wait_line("bridge ready")
            bridge.wait_line(f"far-echo ({far.id}) on hub B is ")
            bridge.wait_line(f"near ({near.id}) on hub A is ")
            cp = run_cli(hub_a.env, "clients", "--json")
            names = [r["name"] for r in json.loads(cp.stdout)]
            assert names.count("far-echo") == 1, names

            cp = run_cli(hub_a.env, "send", "x-test.echo", "url=file:///A/x.fits",
                         "--to", "far-echo", "--wait", "30")
            assert cp.returncode == 0, peers.describe_run(cp, hub_a)
            # B saw the translated URL; A got B's reply, translated back.
            got = far.inbox.wait_for(lambda m: m[0] == "call", what="bridged call")
            assert got[3] == {"url": "file:///B/x.fits"}
            assert '"echo": "file:///A/x.fits"' in cp.stdout and '"from": "B"' in cp.stdout

            far.client.notify_all({"samp.mtype": "x-test.note", "samp.params": {"v": "1"}})
            note = near.inbox.wait_for(lambda m: m[0] == "notify", what="bridged note")
            assert note[3] == {"v": "1"}

            # A second bridge: proxies carry x-samptwist.bridge and are never re-bridged.
            second = Running(hub_a.env, "bridge", str(hub_a.lockfile), str(hub_b.lockfile))
            try:
                second.wait_line("bridge ready")
                second.wait_line(f"far-echo ({far.id}) on hub B is ")
                cp = run_cli(hub_a.env, "clients", "--json")
                names = [r["name"] for r in json.loads(cp.stdout)]
                assert names.count("far-echo") == 2, names  # one proxy per bridge, no echo
                cp = run_cli(hub_b.env, "clients", "--json")
                names = [r["name"] for r in json.loads(cp.stdout)]
                assert names.count("far-echo") == 1, names
            finally:
                assert second.stop(signal.SIGINT) == 0

            far.close()
            bridge.wait_line(f"{far.id} left hub B")
        finally:
            code = bridge.stop()
        assert code == 0, bridge.err.snapshot()


def test_bridge_refuses_a_dead_hub(tmp_path, our_hub):
    line = one_line_error(run_cli(our_hub.env, "bridge", str(our_hub.lockfile),
                                  str(tmp_path / "none.samp")))
    assert "hub B" in line and "no SAMP hub is running" in line
