"""
Unit tests of the client tracker (CLI-LIB-1) and hub-loss handling
(ADM-SHUT-1, ADM-DISC-2, CLI-LIB-3) on the in-memory network.
"""

from __future__ import annotations

import pytest

from samptwist.client import NotConnected
from samptwist.errors import LockfileError
from samptwist.testing import MemoryRig, failure_of, result_of


@pytest.fixture
def rig():
    return MemoryRig()


def test_tracker_loads_existing_clients(rig):
    b = rig.connected("bee")
    a = rig.connected("ay")
    assert set(a.tracker.clients) == {a.hub_id, b.self_id}
    assert a.tracker.name_of(b.self_id) == "bee"
    assert a.tracker.find("bee") == b.self_id
    assert a.tracker.find("BEE") == b.self_id
    assert b.self_id in a.tracker.subscribed("samp.app.ping")


def test_tracker_follows_hub_events(rig):
    """register / metadata / subscriptions / unregister events update the mirror
    (ADM-REG-1, ADM-META-1, ADM-SUBS-1, ADM-UNREG-1) and notify observers."""
    a = rig.connected("ay")
    events = []
    a.tracker.changes.subscribe(lambda e: events.append((e.kind, e.client_id)))
    waiting = a.wait_for_client("late")
    b = rig.connected("late")
    rig.settle()
    assert result_of(waiting) == b.self_id
    assert a.tracker.clients[b.self_id].metadata == {"samp.name": "late"}
    b.add_handler("table.load.votable", lambda m: None)
    rig.settle()
    assert b.self_id in a.tracker.subscribed("table.load.votable")
    assert a.tracker.clients[b.self_id].subscribed_to("table.load.votable")
    result_of(b.disconnect())
    rig.settle()
    assert b.self_id not in a.tracker.clients
    kinds = [k for k, cid in events if cid == b.self_id]
    assert kinds[0] == "register" and "metadata" in kinds and "subscriptions" in kinds
    assert kinds[-1] == "unregister"


def test_tracker_when_cancel(rig):
    a = rig.connected("a")
    d = a.wait_for_client("never")
    d.cancel()
    d.addErrback(lambda f: None)
    assert a.tracker._waiters == []


def test_hub_shutdown_is_observed(rig):
    """samp.hub.event.shutdown ends the connection: observers get "shutdown",
    pending calls fail with NotConnected, the tracker is cleared."""
    a, b = rig.connected("a"), rig.connected("b")
    from twisted.internet.defer import Deferred

    b.add_handler("test.slow", lambda m: Deferred())
    rig.settle()
    pending = a.call(b.self_id, "test.slow")
    rig.settle()
    lost = a.disconnected.next_event()
    rig.hub.stop()
    rig.settle()
    assert result_of(lost) == "shutdown"
    assert not a.is_connected
    assert failure_of(pending).check(NotConnected)
    assert a.tracker.clients == {}


def test_hub_disconnect_message(rig):
    """samp.hub.disconnect: the client treats itself as unregistered (ADM-DISC-2)."""
    a = rig.connected("a")
    lost = a.disconnected.next_event()
    rig.hub.hub.eject(rig.hub.hub.client_by_id(a.self_id), "test over")
    rig.settle()
    assert result_of(lost) == "disconnect"
    assert not a.is_connected


def test_reconnect_after_hub_restart(rig, tmp_path):
    """
    With reconnect=True the client watches the lockfile (LoopingCall on the
    injected clock), and registers with the next hub, declaring its
    metadata and subscriptions again (CLI-LIB-3).
    """
    lockfile = tmp_path / "lock"
    rig.hub.write_lockfile(lockfile)
    a = rig.connected("phoenix", lockfile=lockfile, reconnect=True, reconnect_interval=1.0)
    a.add_handler("test.echo", lambda m: {"ok": "1"})
    rig.settle()
    old_id = a.self_id
    rig.hub.stop()
    rig.settle()
    assert not a.is_connected
    assert a.reconnector.watching
    rig.reactor.advance(1)  # old lockfile still there: same secret is skipped
    rig.settle()
    assert not a.is_connected
    lockfile.unlink()
    rig.reactor.advance(1)  # no lockfile at all
    rig.settle()
    assert not a.is_connected
    hub2 = rig.new_hub()
    hub2.write_lockfile(lockfile)
    again = a.connected.next_event()
    rig.reactor.advance(1)
    rig.settle()
    assert result_of(again) is a
    assert a.is_connected and not a.reconnector.watching
    hub_side = hub2.hub.client_by_id(a.self_id)
    assert hub_side.metadata["samp.name"] == "phoenix"
    assert "test.echo" in hub_side.subscriptions
    assert a.hub_info.url == hub2.url and a.self_id  # may equal old_id on a new hub
    del old_id
    result_of(a.disconnect())
    assert not a.reconnector.watching


def test_disconnect_stops_reconnect(rig, tmp_path):
    lockfile = tmp_path / "lock"
    rig.hub.write_lockfile(lockfile)
    a = rig.connected("x", lockfile=lockfile, reconnect=True)
    rig.hub.stop()
    rig.settle()
    assert a.reconnector.watching
    result_of(a.disconnect())
    assert not a.reconnector.watching


def test_unreachable_hub_is_detected(rig):
    """A hub that vanishes without a word: the next request notices it."""
    a = rig.connected("a")
    lost = a.disconnected.next_event()
    del rig.network.resources[rig.hub.url]
    d = a.get_registered_clients()
    rig.settle()
    assert failure_of(d).check(Exception)
    assert result_of(lost) == "unreachable"


def test_lockfile_error_message(rig, tmp_path):
    bad = tmp_path / "broken"
    bad.write_text("samp.secret=x\n")
    client = rig.client("a", lockfile=bad)
    d = client.connect()
    rig.settle()
    assert "samp.hub.xmlrpc.url" in str(failure_of(d).value)
    assert failure_of(client.connect()).check(LockfileError)
