"""
Integration tests of SAMPClient against our hub, astropy's (pyvo.samp) and
JSAMP's: loopback sockets, private lockfiles, bounded waits.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from samptwist.client import SAMPClient
from samptwist.errors import SAMPCallError

from .hubs import wait_until

pytestmark = pytest.mark.interop


@pytest_twisted.ensureDeferred
async def test_round_trips(any_hub, make_client):
    """
    notify / notifyAll / call / callAll / callAndWait between two of our
    clients through each hub (HUB-CALL-1, HUB-WAIT-1, MSG-TAG-1), with
    wildcard handlers dispatched to the most specific one (CLI-CB-6).
    """
    sender = await make_client("sender")
    receiver = await make_client("receiver")
    notes = []
    receiver.add_handler("test.note", notes.append)
    receiver.add_handler("test.calc.*", lambda m: {"kind": "wild", "mtype": m.mtype})
    receiver.add_handler("test.calc.add", lambda m: {
        "sum": str(int(m.params["a"]) + int(m.params["b"]))})

    def fail(message):
        raise ValueError("refused on purpose")

    receiver.add_handler("test.fail", fail)
    await receiver.declare_subscriptions()
    await sender.tracker.when(
        lambda t: t.clients.get(receiver.self_id)
        and t.clients[receiver.self_id].subscribed_to("test.fail"))

    await sender.notify(receiver.self_id, "test.note", {"n": "1"})
    assert sorted(await sender.notify_all("test.note", {"n": "2"})) == [receiver.self_id]

    r = await sender.call(receiver.self_id, "test.calc.add", {"a": 2, "b": 3}, timeout=20)
    assert r["samp.result"] == {"sum": "5"}
    r = await sender.call(receiver.self_id, "test.calc.mul", timeout=20)
    assert r["samp.result"] == {"kind": "wild", "mtype": "test.calc.mul"}
    r = await sender.call_and_wait(receiver.self_id, "test.calc.add", {"a": 1, "b": 1},
                                   timeout=20)
    assert r["samp.result"] == {"sum": "2"}
    responses = await sender.call_all("test.calc.add", {"a": 5, "b": 5}, timeout=20)
    assert responses[receiver.self_id]["samp.result"] == {"sum": "10"}
    with pytest.raises(SAMPCallError, match="refused on purpose"):
        await sender.call_and_wait(receiver.self_id, "test.fail", timeout=20)
    with pytest.raises(SAMPCallError, match="refused on purpose"):
        await sender.call(receiver.self_id, "test.fail", timeout=20)
    await wait_until(lambda: len(notes) >= 2, 20, "two notifications")
    # JSAMP delivers notify and notifyAll on different threads: no order.
    assert sorted(m.params["n"] for m in notes) == ["1", "2"]
    assert all(not m.is_call and m.sender_id == sender.self_id for m in notes)
    assert await sender.ping() is None


@pytest_twisted.ensureDeferred
async def test_tracker_follows_events(any_hub, make_client):
    """The mirror follows register, metadata, subscriptions and unregister
    events (ADM-REG-1, ADM-META-1, ADM-SUBS-1, ADM-UNREG-1)."""
    watcher = await make_client("watcher")
    other = await make_client("other")
    other_id = await watcher.wait_for_client("other").addTimeout(20, reactor)
    assert other_id == other.self_id
    await other.declare_metadata({"samp.name": "renamed", "x": "1"})
    await watcher.tracker.when(lambda t: t.find("renamed")).addTimeout(20, reactor)
    other.add_handler("table.load.votable", lambda m: None)
    await other.declare_subscriptions()
    await watcher.tracker.when(
        lambda t: other_id in t.subscribed("table.load.votable")).addTimeout(20, reactor)
    await other.disconnect()
    await watcher.tracker.when(lambda t: other_id not in t.clients).addTimeout(20, reactor)
    assert watcher.hub_id in watcher.tracker.clients


@pytest_twisted.ensureDeferred
async def test_hub_restart_reconnects(any_hub, lockfile):
    """Hub stops (samp.hub.event.shutdown), a new one starts on the same
    lockfile: the client reconnects and re-declares metadata and
    subscriptions (CLI-LIB-3, STD-SHUT-1)."""
    client = SAMPClient(reactor, name="phoenix", lockfile=lockfile, reconnect=True,
                        reconnect_interval=0.2)
    client.add_handler("test.echo", lambda m: {"echo": "1"})
    try:
        await client.connect()
        lost = client.disconnected.next_event()
        await any_hub.stop()
        reason = await lost.addTimeout(30, reactor)
        assert reason in ("shutdown", "unreachable")
        again = client.connected.next_event()
        await any_hub.start()
        await again.addTimeout(30, reactor)
        assert client.is_connected
        probe = SAMPClient(reactor, name="probe", lockfile=lockfile)
        await probe.connect()
        try:
            phoenix = await probe.wait_for_client("phoenix").addTimeout(20, reactor)
            r = await probe.call_and_wait(phoenix, "test.echo", timeout=20)
            assert r["samp.result"] == {"echo": "1"}
        finally:
            await probe.disconnect()
    finally:
        await client.disconnect()
