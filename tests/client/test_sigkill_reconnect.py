"""
Issue 8: a hub killed with SIGKILL leaves a stale lockfile; the next hub
replaces it, and a client of our library (reconnect=True) notices the dead
hub by its heartbeat and reconnects to the new one, declaring its
subscriptions again.
"""

from __future__ import annotations

import os
import signal

import peers
import pytest_twisted
from twisted.internet import reactor

from samptwist.client import SAMPClient
from samptwist.lockfile import read_lockfile

from .hubs import child_env, end_process, spawn, wait_until


async def start_twistd_hub(lockfile, home):
    proto, transport = spawn(peers.hub_command(lockfile), child_env(home, lockfile),
                             cwd=str(home))
    await wait_until(lambda: "SAMP hub ready" in proto.text(), 30, "hub ready")
    return proto, transport


@pytest_twisted.ensureDeferred
async def test_reconnect_after_sigkill(lockfile, isolated_home):
    first = await start_twistd_hub(lockfile, isolated_home)
    client = SAMPClient(reactor, name="survivor", lockfile=lockfile, reconnect=True,
                        reconnect_interval=0.2, heartbeat=0.3)
    client.add_handler("test.echo", lambda m: {"echo": m.params.get("x", "")})
    second = None
    try:
        await client.connect()
        old_secret = read_lockfile(lockfile).secret
        lost = client.disconnected.next_event()
        os.kill(first[1].pid, signal.SIGKILL)
        assert await lost.addTimeout(20, reactor) == "unreachable"
        assert lockfile.exists()  # SIGKILL: nobody removed it
        again = client.connected.next_event()
        second = await start_twistd_hub(lockfile, isolated_home)
        assert "does not answer; replacing it" in second[0].text()
        await again.addTimeout(30, reactor)
        assert read_lockfile(lockfile).secret != old_secret
        probe = SAMPClient(reactor, name="probe", lockfile=lockfile)
        await probe.connect()
        try:
            survivor = await probe.wait_for_client("survivor").addTimeout(20, reactor)
            r = await probe.call_and_wait(survivor, "test.echo", {"x": "1"}, timeout=20)
            assert r["samp.result"] == {"echo": "1"}
        finally:
            await probe.disconnect()
    finally:
        await client.disconnect()
        for hub in (first, second):
            if hub is not None:
                await end_process(*hub)
