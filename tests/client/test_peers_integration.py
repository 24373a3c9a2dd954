"""
Other SAMP software on the far side of our client: pyvo.samp clients and
JSAMP's messagesender and calcstorm, all through our hub (in this process).
"""

from __future__ import annotations

import peers
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from .hubs import child_env, run

pytestmark = pytest.mark.interop


@pytest_twisted.ensureDeferred
async def test_pyvo_client_calls_us_and_we_call_it(our_hub, lockfile, make_client):
    """pyvo.samp → our handler (callAndWait) and our call → pyvo's bound handler."""
    samp = peers.require_samp_module("pyvo.samp")
    ours = await make_client("ours")
    ours.add_handler("x-test.*", lambda m: {"mtype": m.mtype})
    await ours.declare_subscriptions()
    theirs = samp.SAMPIntegratedClient(name="pyvo-peer", addr="127.0.0.1")
    params = {"samp.hub.xmlrpc.url": our_hub.url, "samp.secret": our_hub.secret}

    def setup():
        theirs.connect(hub_params=params)
        theirs.bind_receive_call("x-peer.echo", lambda k, s, mid, mt, p, e: theirs.reply(
            mid, {"samp.status": "samp.ok", "samp.result": {"x": p.get("x", "")}}))

    try:
        await deferToThread(setup)
        peer_id = await ours.wait_for_client("pyvo-peer").addTimeout(20, reactor)
        response = await deferToThread(
            theirs.call_and_wait, ours.self_id,
            {"samp.mtype": "x-test.thing", "samp.params": {}}, "10")
        assert response["samp.result"] == {"mtype": "x-test.thing"}
        await ours.tracker.when(
            lambda t: peer_id in t.subscribed("x-peer.echo")).addTimeout(20, reactor)
        r = await ours.call(peer_id, "x-peer.echo", {"x": "7"}, timeout=20)
        assert r["samp.result"] == {"x": "7"}
    finally:
        await deferToThread(peers.disconnect_quietly, theirs)


@pytest_twisted.ensureDeferred
async def test_jsamp_messagesender_to_us(our_hub, lockfile, isolated_home, make_client):
    """jsamp messagesender (sync and notify) addressed to our client by name."""
    exe = peers.require_jsamp()
    ours = await make_client("samptwist-target")
    got = []
    ours.add_handler("x-test.msg", lambda m: got.append(m) or {"echo": m.params.get("v", "")})
    await ours.declare_subscriptions()
    env = child_env(isolated_home, lockfile)
    status, out = await run([exe, "messagesender", "-mtype", "x-test.msg", "-param", "v",
                             "hello", "-mode", "sync", "-targetname", "samptwist-target"],
                            env, timeout=120)
    assert status == 0, out
    assert "hello" in out and "samp.ok" in out, out
    status, out = await run([exe, "messagesender", "-mtype", "x-test.msg", "-param", "v",
                             "note", "-mode", "notify", "-targetname", "samptwist-target"],
                            env, timeout=120)
    assert status == 0, out
    assert [m.is_call for m in got] == [True, False]




@pytest.mark.parametrize("kind", ["jsamp", "samptwist"])
@pytest_twisted.ensureDeferred
async def test_jsamp_calcstorm_with_us_watching(kind, lockfile, isolated_home, make_client):
    """calcstorm's clients exchange messages through the hub while our tracker
    follows their registrations and unregistrations."""
    from .hubs import HUB_KINDS

    exe = peers.require_jsamp()
    hub = HUB_KINDS[kind](lockfile, isolated_home)
    await hub.start()
    try:
        ours = await make_client("watcher")
        seen = set()
        ours.tracker.changes.subscribe(lambda e: seen.add((e.kind, e.client_id)))
        env = child_env(isolated_home, lockfile)
        status, out = await run([exe, "calcstorm", "-nclient", "3", "-nquery", "5",
                                 "-mode", "notify"], env, timeout=60)
        assert status == 0, out
        registered = {c for k, c in seen if k == "register"}
        assert len(registered) >= 3
        await ours.tracker.when(
            lambda t: not (set(t.clients) & registered)).addTimeout(20, reactor)
        await ours.disconnect()
    finally:
        await hub.stop()
