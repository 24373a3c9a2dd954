"""
pyvo.samp and astropy.samp clients (SAMPIntegratedClient) against our hub.

Every test runs twice, once per library (fixture ``samp`` in conftest.py).  Clients
connect with the hub's lockfile contents (``hub_params``), except the discovery test,
which lets the library find the hub through SAMP_HUB like a real application.
Waiting is done on events/conditions with deadlines, never by sleeping.
"""

import time
import xmlrpc.client

import peers
import pytest

TEST_MTYPE = "x-samptwist.test.msg"
SILENT_MTYPE = "x-samptwist.test.silent"
EVENT_TIMEOUT = 10.0


def ok(result=None):
    return {"samp.status": "samp.ok", "samp.result": result or {}}


def record_messages(client, mtype, inbox, reply=None):
    """Bind *mtype* (notifications and calls) on *client*; every arrival goes to *inbox*.

    reply(params) -> response map, or None to leave calls unanswered."""

    def handler(private_key, sender_id, msg_id, msg_mtype, params, extra):
        inbox.put(
            {
                "to": client.get_public_id(),
                "sender": sender_id,
                "msg_id": msg_id,
                "mtype": msg_mtype,
                "params": params,
                "extra": extra,
            }
        )
        if msg_id is not None and reply is not None:
            client.reply(msg_id, reply(params))

    client.bind_receive_message(mtype, handler)


def record_responses(client, msg_tag, inbox):
    def on_response(private_key, responder_id, tag, response):
        inbox.put({"responder": responder_id, "tag": tag, "response": response})

    client.bind_receive_response(msg_tag, on_response)


def test_register_sees_hub_and_other_clients(samp_client):
    """HUB-REG-1, HUB-LIST-1, HUB-SELFCLI-1: ids, hub id "hub", caller not listed."""
    a = samp_client("a")
    b = samp_client("b")
    assert a.get_private_key() and a.get_public_id()
    assert a.get_private_key() != a.get_public_id()
    assert a.get_public_id() != b.get_public_id()
    assert a.client._hub_id == "hub"  # samp.hub-id from the registration map (no public accessor)
    assert sorted(a.get_registered_clients()) == sorted(["hub", b.get_public_id()])
    assert sorted(b.get_registered_clients()) == sorted(["hub", a.get_public_id()])
    a.ping()  # HUB-PING-1: must not raise
    assert a.get_metadata("hub").get("samp.name"), "hub declares no samp.name (HUB-SELFCLI-2)"


def test_discovery_through_samp_hub_env(samp, hub, monkeypatch):
    """
    The library's own discovery (SAMP_HUB=std-lockurl:file://...) parses our lockfile
    and finds a live hub (STD-LOCK-1, STD-LOCKFMT-*); pyvo/astropy split each
    non-comment line on "=" and choke on blank lines or a second "=".
    """
    monkeypatch.setenv("HOME", str(hub.home))
    monkeypatch.setenv("SAMP_HUB", hub.env["SAMP_HUB"])
    client = samp.SAMPIntegratedClient(name="discoverer", addr="127.0.0.1")
    client.connect()
    try:
        assert client.hub.lockfile["samp.secret"] == hub.secret
        assert client.hub.lockfile["samp.hub.xmlrpc.url"] == hub.url
        assert "hub" in client.get_registered_clients()
    finally:
        peers.disconnect_quietly(client)


def test_lockfile_contract(hub):
    """STD-LOCKFMT-4, STD-LOCKSEC-1: required keys, profile version 1.3, mode 0600, loopback URL."""
    assert peers.is_private_lockfile(hub.lockfile), oct(hub.lockfile.stat().st_mode)
    assert hub.params["samp.profile.version"] == "1.3"
    assert hub.secret
    assert hub.url.startswith("http://127.0.0.1:"), hub.url


def test_metadata_round_trip(samp_client):
    """DATA-META-2/3, HUB-META-1: getMetadata returns exactly the last declared map."""
    a = samp_client("a")
    b = samp_client("b")
    first = {
        "samp.name": "meta-a",
        "samp.description.text": "first",
        "author.name": "Ann",
        "x-samptwist.nested": {"list": ["1", "2", {"k": "v"}], "empty": {}},
    }
    a.declare_metadata(first)
    assert b.get_metadata(a.get_public_id()) == first
    assert a.get_metadata(a.get_public_id()) == first
    second = {"samp.name": "meta-a2"}
    # SAMPIntegratedClient.declare_metadata merges into its local copy before
    # sending, so talk to the hub proxy directly to test the hub's replace semantics.
    a.hub.declare_metadata(a.get_private_key(), second)
    assert b.get_metadata(a.get_public_id()) == second, "declareMetadata must replace, not merge"


def test_subscriptions_declared_by_binding(samp_client):
    """HUB-SUB-1, HUB-LIST-2: bound MTypes show up in getSubscriptions/getSubscribedClients."""
    a = samp_client("a")
    b = samp_client("b")
    record_messages(b, TEST_MTYPE, peers.Inbox())
    bid = b.get_public_id()
    subs = a.get_subscriptions(bid)
    assert TEST_MTYPE in subs and subs[TEST_MTYPE] == {}
    assert "samp.app.ping" in subs  # pyvo/astropy always bind ping
    subscribed = a.get_subscribed_clients(TEST_MTYPE)
    assert bid in subscribed and a.get_public_id() not in subscribed
    assert "hub" in a.get_subscribed_clients("samp.app.ping")


def test_notify_and_notify_all(samp_client):
    """HUB-DELIV-1/3, MSG-MSG-3: notify reaches one subscriber; notifyAll all but the sender."""
    a, b, c = samp_client("a"), samp_client("b"), samp_client("c")
    inbox = peers.Inbox()
    for client in (a, b, c):
        record_messages(client, TEST_MTYPE, inbox)
    ids = {name: cl.get_public_id() for name, cl in zip("abc", (a, b, c))}

    params = {"n": "1", "list": ["x", "y"], "map": {"k": "v"}}
    a.notify(ids["b"], {"samp.mtype": TEST_MTYPE, "samp.params": params, "x-extra": "kept"})
    got = inbox.wait_for(lambda m: m["to"] == ids["b"], EVENT_TIMEOUT, "notification for b")
    assert got["sender"] == ids["a"] and got["msg_id"] is None
    assert got["params"] == params and got["extra"].get("x-extra") == "kept"

    recipients = a.notify_all({"samp.mtype": TEST_MTYPE, "samp.params": {"n": "2"}})
    assert sorted(recipients) == sorted([ids["b"], ids["c"]])
    for who in ("b", "c"):
        inbox.wait_for(
            lambda m, w=who: m["to"] == ids[w] and m["params"] == {"n": "2"},
            EVENT_TIMEOUT,
            f"notifyAll at {who}",
        )
    assert not [m for m in inbox.snapshot() if m["to"] == ids["a"]], (
        "notifyAll delivered to its sender"
    )


def test_notify_unsubscribed_recipient_is_a_fault(samp_client):
    """HUB-DELIV-1: a named recipient that is not subscribed gives the sender a fault."""
    a, b = samp_client("a"), samp_client("b")
    with pytest.raises(xmlrpc.client.Fault):
        a.notify(b.get_public_id(), {"samp.mtype": "x-samptwist.test.nobody", "samp.params": {}})
    with pytest.raises(xmlrpc.client.Fault):
        a.notify("c999", {"samp.mtype": "samp.app.ping", "samp.params": {}})  # HUB-DELIV-2


def test_call_and_reply(samp_client):
    """HUB-CALL-1, MSG-TAG-1, MSG-ID-1: call, receiveCall, reply, receiveResponse with our tag."""
    a, b = samp_client("a"), samp_client("b")
    received = peers.Inbox()
    record_messages(b, TEST_MTYPE, received, reply=lambda p: ok({"echo": p["word"]}))
    responses = peers.Inbox()
    record_responses(a, "tag-42", responses)

    msg_id = a.call(
        b.get_public_id(), "tag-42", {"samp.mtype": TEST_MTYPE, "samp.params": {"word": "hi"}}
    )
    assert isinstance(msg_id, str) and msg_id
    call = received.wait_for(lambda m: True, EVENT_TIMEOUT, "call at b")
    assert call["sender"] == a.get_public_id() and call["msg_id"]
    resp = responses.wait_for(lambda r: True, EVENT_TIMEOUT, "response at a")
    assert resp == {"responder": b.get_public_id(), "tag": "tag-42", "response": ok({"echo": "hi"})}


def test_call_all(samp_client):
    """HUB-DELIV-3, CLI-LIB-5: callAll maps recipient to msg-id; each reply comes back."""
    a, b, c = samp_client("a"), samp_client("b"), samp_client("c")
    for client in (b, c):
        record_messages(
            client,
            TEST_MTYPE,
            peers.Inbox(),
            reply=lambda p, me=client: ok({"me": me.get_public_id()}),
        )
    responses = peers.Inbox()
    record_responses(a, "all-1", responses)

    msg_ids = a.call_all("all-1", {"samp.mtype": TEST_MTYPE, "samp.params": {}})
    assert sorted(msg_ids) == sorted([b.get_public_id(), c.get_public_id()])
    for client in (b, c):
        cid = client.get_public_id()
        resp = responses.wait_for(
            lambda r, cid=cid: r["responder"] == cid, EVENT_TIMEOUT, f"response from {cid}"
        )
        assert resp["tag"] == "all-1" and resp["response"] == ok({"me": cid})


def test_call_and_wait(samp_client):
    """HUB-WAIT-1: callAndWait returns the recipient's response map; hub answers ping itself."""
    a, b = samp_client("a"), samp_client("b")
    record_messages(b, TEST_MTYPE, peers.Inbox(), reply=lambda p: ok({"double": p["x"] * 2}))
    resp = a.call_and_wait(
        b.get_public_id(), {"samp.mtype": TEST_MTYPE, "samp.params": {"x": "ab"}}, "10"
    )
    assert resp == ok({"double": "abab"})
    pong = a.call_and_wait("hub", {"samp.mtype": "samp.app.ping", "samp.params": {}}, "10")
    assert pong["samp.status"] == "samp.ok"


def test_call_and_wait_times_out(samp_client):
    """HUB-WAIT-2: a recipient that never replies -> fault after about `timeout` seconds."""
    a, b = samp_client("a"), samp_client("b")
    arrived = peers.Inbox()
    record_messages(b, SILENT_MTYPE, arrived)  # never replies
    outcome = peers.call_in_thread(
        a.call_and_wait, b.get_public_id(), {"samp.mtype": SILENT_MTYPE, "samp.params": {}}, "2"
    )
    assert outcome.done.wait(20), "callAndWait with timeout 2 s was still blocked after 20 s"
    assert outcome.error is not None, f"expected a fault, got response {outcome.value!r}"
    assert 1.5 <= outcome.elapsed <= 8, f"timeout 2 s ended after {outcome.elapsed:.2f} s"
    arrived.wait_for(lambda m: True, 1, "the call at the silent recipient")


def test_call_and_wait_recipient_leaves(samp_client):
    """
    HUB-UNREG-2, HUB-RACE-1, style "Pending calls fail at once when the recipient leaves":
    a callAndWait (timeout 60 s) to a client that unregisters without replying fails promptly.
    Our policy: JSAMP's and pyvo's hubs both leave the caller waiting for the full timeout.
    """
    a, b = samp_client("a"), samp_client("b")
    arrived = peers.Inbox()
    record_messages(b, SILENT_MTYPE, arrived)
    outcome = peers.call_in_thread(
        a.call_and_wait, b.get_public_id(), {"samp.mtype": SILENT_MTYPE, "samp.params": {}}, "60"
    )
    arrived.wait_for(lambda m: True, EVENT_TIMEOUT, "the call at the recipient")
    left = time.monotonic()
    b.disconnect()
    assert outcome.done.wait(10), (
        f"caller still blocked {time.monotonic() - left:.1f} s after the recipient unregistered"
    )
    # Either a fault or a samp.error response map is an error the caller can act on.
    if outcome.error is None:
        assert outcome.value.get("samp.status") == "samp.error", (
            f"expected an error, got {outcome.value!r}"
        )
        assert outcome.value["samp.error"]["samp.errortxt"]  # MSG-ERR-1
    # The caller itself is unharmed.
    assert "hub" in a.get_registered_clients()


def test_hub_events(samp_client):
    """ADM-REG-1, ADM-META-1, ADM-SUBS-1, ADM-UNREG-1 (HUB-REG-4, HUB-META-1, HUB-SUB-1,
    HUB-UNREG-1)."""
    watcher = samp_client("watcher")
    events = peers.Inbox()

    def on_event(private_key, sender_id, mtype, params, extra):
        events.put({"sender": sender_id, "mtype": mtype, "params": params})

    watcher.bind_receive_notification("samp.hub.event.*", on_event)

    other = samp_client("other")
    oid = other.get_public_id()

    def seen(mtype, check=lambda p: True):
        ev = events.wait_for(
            lambda e: e["mtype"] == mtype and e["params"].get("id") == oid and check(e["params"]),
            EVENT_TIMEOUT,
            f"{mtype} for {oid}",
        )
        assert ev["sender"] == "hub", ev  # HUB-SELFCLI-1
        return ev

    seen("samp.hub.event.register")
    meta = {"samp.name": "other-renamed", "x-samptwist.k": "v"}
    other.declare_metadata(meta)
    seen("samp.hub.event.metadata", lambda p: p.get("metadata") == meta)
    record_messages(other, TEST_MTYPE, peers.Inbox())
    seen("samp.hub.event.subscriptions", lambda p: TEST_MTYPE in p.get("subscriptions", {}))
    other.disconnect()
    seen("samp.hub.event.unregister")


def test_unregister(samp_client):
    """HUB-UNREG-1, HUB-REG-2: an unregistered client disappears, its key stops working,
    ids are never reused."""
    a, b = samp_client("a"), samp_client("b")
    bid, bkey = b.get_public_id(), b.get_private_key()
    b.disconnect()
    assert bid not in a.get_registered_clients()
    with pytest.raises(xmlrpc.client.Fault):
        a.hub.get_registered_clients(bkey)
    with pytest.raises(xmlrpc.client.Fault):
        a.get_metadata(bid)  # HUB-META-2 / HUB-DELIV-2: no longer registered
    c = samp_client("c")
    assert c.get_public_id() != bid
