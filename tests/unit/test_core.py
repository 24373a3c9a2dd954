"""
Unit tests of the hub core (samptwist.hub.core) with fake callback targets
and a task.Clock: every hub method and error path of SAMP 1.3.
"""

import pytest
from twisted.internet.task import Clock

from samptwist.errors import SAMPHubError, SAMPValueError
from samptwist.hub.callbacks import DeliveryFailed
from samptwist.hub.core import HUB_ID, Hub
from samptwist.testing import RecordingTarget

PING = {"samp.mtype": "samp.app.ping", "samp.params": {}}


def msg(mtype="test.echo", **params):
    return {"samp.mtype": mtype, "samp.params": params}


class World:
    """A hub on a Clock plus helpers to add callable clients."""

    def __init__(self, **kw):
        self.clock = Clock()
        self.hub = Hub(self.clock, **kw)

    def client(self, subs=None, callable=True, name=None):
        c = self.hub.register("standard")
        c.t = RecordingTarget()
        if callable:
            self.hub.set_callback(c.private_key, c.t)
        if name:
            self.hub.declare_metadata(c.private_key, {"samp.name": name})
        if subs is not None:
            self.hub.declare_subscriptions(c.private_key, subs)
        c.t.received.clear()
        return c


@pytest.fixture
def w():
    return World()


def result_of(d):
    out = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


def test_register_map(w):
    """HUB-REG-1/2/3: keys present, ids unique and never reused, keys random."""
    a = w.hub.register("standard")
    reg = w.hub.registration_map(a)
    assert reg["samp.hub-id"] == HUB_ID and reg["samp.self-id"] == a.public_id
    assert reg["samp.private-key"] != a.public_id and len(reg["samp.private-key"]) >= 24
    w.hub.unregister(a.private_key)
    b = w.hub.register("standard")
    assert b.public_id != a.public_id and b.private_key != a.private_key


def test_unregister_invalidates_key(w):
    """HUB-UNREG-1."""
    a = w.client()
    w.hub.unregister(a.private_key)
    with pytest.raises(SAMPHubError, match="private key"):
        w.hub.get_registered_clients(a.private_key)
    with pytest.raises(SAMPHubError):
        w.hub.unregister(a.private_key)


@pytest.mark.parametrize("key", ["nonsense", "", 5, None, ["x"]])
def test_bad_keys(w, key):
    """STD-RPC-3: unknown or malformed private keys fault."""
    with pytest.raises(SAMPHubError):
        w.hub.get_registered_clients(key)


def test_registered_clients(w):
    """HUB-LIST-1: everyone but the caller, hub included."""
    a, b = w.client(), w.client()
    assert sorted(w.hub.get_registered_clients(a.private_key)) == sorted([HUB_ID, b.public_id])


def test_metadata_replace_and_event(w):
    """DATA-META-3, HUB-META-1, ADM-META-1: replace, not merge; event to subscribers incl. self."""
    watcher = w.client({"samp.hub.event.metadata": {}})
    a = w.client({"samp.hub.event.*": {}})
    w.hub.declare_metadata(a.private_key, {"a": "1", "b": {"c": ["d"]}})
    w.hub.declare_metadata(a.private_key, {"c": "3"})
    assert w.hub.get_metadata(watcher.private_key, a.public_id) == {"c": "3"}
    events = watcher.t.of("receiveNotification")
    assert events[-1] == (
        HUB_ID,
        msg("samp.hub.event.metadata", id=a.public_id, metadata={"c": "3"}),
    )
    assert a.t.mtypes()[-1] == "samp.hub.event.metadata"


def test_metadata_of_hub_and_unknown(w):
    """HUB-META-1/2, HUB-SELFCLI-2."""
    a = w.client()
    assert w.hub.get_metadata(a.private_key, HUB_ID)["samp.name"] == "samptwist"
    assert w.hub.get_metadata(a.private_key, a.public_id) == {}
    with pytest.raises(SAMPHubError, match="no client"):
        w.hub.get_metadata(a.private_key, "c999")
    with pytest.raises(SAMPHubError, match="no client"):
        w.hub.get_subscriptions(a.private_key, "bogus")


def test_metadata_must_be_samp(w):
    """HUB-ERR-2, DATA-TYPE-1."""
    a = w.client()
    for bad in ({"n": 1}, "str", {"n": "é"}):
        with pytest.raises(SAMPValueError):
            w.hub.declare_metadata(a.private_key, bad)


def test_subscriptions_replace_and_event(w):
    """MT-SUB-5, MT-SUB-6, HUB-SUB-1, ADM-SUBS-1."""
    watcher = w.client({"samp.hub.event.subscriptions": {}})
    a = w.client({"a.b": {}})
    w.hub.declare_subscriptions(a.private_key, {"c.*": {"x": "y"}})
    assert w.hub.get_subscriptions(watcher.private_key, a.public_id) == {"c.*": {"x": "y"}}
    with pytest.raises(SAMPHubError, match="not subscribed"):
        w.hub.notify(watcher.private_key, a.public_id, msg("a.b"))
    assert watcher.t.of("receiveNotification")[-1][1]["samp.params"] == {
        "id": a.public_id,
        "subscriptions": {"c.*": {"x": "y"}},
    }


def test_bad_subscriptions(w):
    """MT-SUB-1/2."""
    a = w.client()
    for bad in ({"a.b": "x"}, {"tab*": {}}, {"a.*.b": {}}, {"a": {"n": 1}}):
        with pytest.raises(SAMPValueError):
            w.hub.declare_subscriptions(a.private_key, bad)


def test_subscribed_clients(w):
    """HUB-LIST-2, MT-SUB-7, HUB-DELIV-4: specific annotation; caller and uncallable excluded."""
    a = w.client({"*": {"k": "star"}, "table.load.votable": {"k": "exact"}})
    b = w.client({"table.*": {}})
    w.client({"table.load.votable": {}}, callable=False)
    w.client({"table.load": {}})
    got = w.hub.get_subscribed_clients(b.private_key, "table.load.votable")
    assert got == {a.public_id: {"k": "exact"}}
    got = w.hub.get_subscribed_clients(a.private_key, "table.load.votable")
    assert got == {b.public_id: {}}
    assert HUB_ID in w.hub.get_subscribed_clients(a.private_key, "samp.app.ping")
    with pytest.raises(SAMPValueError):
        w.hub.get_subscribed_clients(a.private_key, "table.*")


def test_wildcard_delivery_exact_semantics(w):
    """MT-SUB-4, DIFF-1: a.b.* gets a.b.c but not a.b or a.bc."""
    a = w.client({"a.b.*": {}})
    s = w.client()
    assert w.hub.notify_all(s.private_key, msg("a.b.c")) == [a.public_id]
    assert w.hub.notify_all(s.private_key, msg("a.b")) == []
    assert w.hub.notify_all(s.private_key, msg("a.bc")) == []
    assert w.hub.notify_all(s.private_key, msg("a.b.c.d")) == [a.public_id]
    assert a.t.mtypes() == ["a.b.c", "a.b.c.d"]


def test_notify(w):
    """HUB-DELIV-1/2, MSG-MSG-1/3."""
    a = w.client({"x.y": {}})
    s = w.client()
    message = {"samp.mtype": "x.y", "samp.params": {"p": ["1"]}, "x-extra": "kept"}
    w.hub.notify(s.private_key, a.public_id, message)
    assert a.t.of("receiveNotification") == [(s.public_id, message)]
    with pytest.raises(SAMPHubError, match="not subscribed"):
        w.hub.notify(s.private_key, a.public_id, msg("other"))
    with pytest.raises(SAMPHubError, match="no client"):
        w.hub.notify(s.private_key, "c77", msg("x.y"))
    w.hub.unregister(a.private_key)
    with pytest.raises(SAMPHubError, match="no longer registered"):
        w.hub.notify(s.private_key, a.public_id, msg("x.y"))


@pytest.mark.parametrize(
    "bad",
    [
        {"samp.params": {}},
        {"samp.mtype": "a..b", "samp.params": {}},
        {"samp.mtype": "a.b", "samp.params": {"n": 3}},
        {"samp.mtype": "a.b", "samp.params": "x"},
        {"samp.mtype": "a.b", "samp.params": {"s": "caf\u00e9"}},
        "not a map",
    ],
)
def test_invalid_messages(w, bad):
    """HUB-ERR-2, MSG-MSG-1, DATA-TYPE-*: nothing is delivered."""
    a = w.client({"*": {}})
    s = w.client()
    a.t.received.clear()
    with pytest.raises(SAMPValueError):
        w.hub.notify_all(s.private_key, bad)
    assert a.t.received == []


def test_params_optional(w):
    """MSG-MSG-2: a message without samp.params is accepted."""
    a = w.client({"a.b": {}})
    s = w.client()
    assert w.hub.notify_all(s.private_key, {"samp.mtype": "a.b"}) == [a.public_id]


def test_notify_all_excludes_sender(w):
    """HUB-DELIV-3, HUB-SELF-1."""
    a = w.client({"a.b": {}})
    b = w.client({"a.b": {}})
    assert w.hub.notify_all(a.private_key, msg("a.b")) == [b.public_id]
    assert a.t.received == []
    w.hub.notify(a.private_key, a.public_id, msg("a.b"))  # self-notify is allowed
    assert a.t.of("receiveNotification") == [(a.public_id, msg("a.b"))]


def test_call_and_reply(w):
    """HUB-CALL-1, MSG-TAG-1, MSG-ID-1."""
    r = w.client({"a.b": {}})
    s = w.client()
    msg_id = w.hub.call(s.private_key, r.public_id, "t-42", msg("a.b"))
    assert r.t.of("receiveCall") == [(s.public_id, msg_id, msg("a.b"))]
    assert "t-42" not in msg_id and s.public_id not in msg_id and len(msg_id) > 20
    response = {"samp.status": "samp.ok", "samp.result": {"x": "1"}}
    w.hub.reply(r.private_key, msg_id, response)
    assert s.t.of("receiveResponse") == [(r.public_id, "t-42", response)]


def test_reply_rules(w):
    """HUB-CALL-3, MSG-ID-3/4: only the recipient, only once, only known ids."""
    r = w.client({"a.b": {}})
    s = w.client()
    msg_id = w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))
    ok = {"samp.status": "samp.ok", "samp.result": {}}
    with pytest.raises(SAMPHubError, match="no call"):
        w.hub.reply(s.private_key, msg_id, ok)
    with pytest.raises(SAMPHubError, match="no call"):
        w.hub.reply(r.private_key, "m-forged", ok)
    with pytest.raises(SAMPValueError, match="samp.status"):
        w.hub.reply(r.private_key, msg_id, {"samp.result": {}})
    w.hub.reply(r.private_key, msg_id, ok)
    with pytest.raises(SAMPHubError, match="already answered"):
        w.hub.reply(r.private_key, msg_id, ok)


def test_msg_ids_unique(w):
    """MSG-ID-2: ids differ even with a reused tag."""
    r = w.client({"a.b": {}})
    s = w.client()
    ids = {w.hub.call(s.private_key, r.public_id, "same", msg("a.b")) for _ in range(50)}
    assert len(ids) == 50


def test_call_all(w):
    """HUB-DELIV-3: map recipient -> msg-id; responses routed with the tag."""
    a, b = w.client({"a.*": {}}), w.client({"a.b": {}})
    s = w.client({"a.b": {}})
    ids = w.hub.call_all(s.private_key, "tag", msg("a.b"))
    assert set(ids) == {a.public_id, b.public_id}
    for c in (a, b):
        w.hub.reply(c.private_key, ids[c.public_id], {"samp.status": "samp.ok", "samp.result": {}})
    assert sorted(r[0] for r in s.t.of("receiveResponse")) == sorted([a.public_id, b.public_id])
    assert w.hub.call_all(s.private_key, "tag", msg("nobody.listens")) == {}


def test_call_needs_callable_sender(w):
    """HUB-CALL-2."""
    r = w.client({"a.b": {}})
    s = w.client(callable=False)
    with pytest.raises(SAMPHubError, match="not callable"):
        w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))
    with pytest.raises(SAMPHubError, match="not callable"):
        w.hub.call_all(s.private_key, "t", msg("a.b"))
    d = w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), "10")
    (_, msg_id, _), = r.t.of("receiveCall")
    w.hub.reply(r.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {"v": "1"}})
    assert result_of(d)["samp.result"] == {"v": "1"}


def test_call_and_wait_timeout(w):
    """HUB-WAIT-2: fault after the timeout, late reply refused, nothing leaks."""
    r = w.client({"a.b": {}})
    s = w.client()
    d = w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), "2")
    w.clock.advance(1.9)
    assert not d.called
    w.clock.advance(0.2)
    failure = result_of(d)
    assert failure.check(SAMPHubError) and "timed out" in str(failure.value)
    (_, msg_id, _), = r.t.of("receiveCall")
    with pytest.raises(SAMPHubError):
        w.hub.reply(r.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    counts = w.hub.record_counts()
    assert counts["pending"] == 0 and counts["pending_senders"] == 0


def test_call_and_wait_no_limit_is_capped(w):
    """HUB-WAIT-2/3: timeout <= 0 waits (up to the hub's cap)."""
    hub_w = World(max_wait=100)
    r = hub_w.client({"a.b": {}})
    s = hub_w.client()
    d = hub_w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), "0")
    hub_w.clock.advance(99)
    assert not d.called
    hub_w.clock.advance(2)
    assert result_of(d).check(SAMPHubError)


@pytest.mark.parametrize("timeout", ["x", True, None, "1.5.2"])
def test_call_and_wait_bad_timeout(w, timeout):
    r = w.client({"a.b": {}})
    s = w.client()
    with pytest.raises(SAMPValueError, match="timeout"):
        w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), timeout)


def test_instant_reply_not_lost(w):
    """The pending record exists before delivery: a reply made inside receiveCall is routed."""
    r = w.client({"a.b": {}})
    s = w.client()
    ok = {"samp.status": "samp.ok", "samp.result": {"fast": "1"}}
    r.t.on_call = lambda sender, msg_id, m: w.hub.reply(r.private_key, msg_id, ok)
    d = w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), "5")
    assert result_of(d) == ok
    w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))
    assert s.t.of("receiveResponse") == [(r.public_id, "t", ok)]


def test_recipient_leaving_answers_pending_calls(w):
    """HUB-UNREG-2 (our policy): callers get a samp.error at once, never hang."""
    r = w.client({"a.b": {}}, name="Doomed")
    s = w.client()
    d = w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), "0")
    w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))
    w.hub.unregister(r.private_key)
    response = result_of(d)
    assert response["samp.status"] == "samp.error"
    assert "Doomed" in response["samp.error"]["samp.errortxt"]
    ((responder, tag, async_response),) = s.t.of("receiveResponse")
    assert (responder, tag, async_response["samp.status"]) == (r.public_id, "t", "samp.error")


def test_sender_leaving_drops_its_waits(w):
    """HUB-UNREG-2: calls from a departed sender are forgotten; a later reply is refused."""
    r = w.client({"a.b": {}})
    s = w.client()
    msg_id = w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))
    w.hub.unregister(s.private_key)
    assert w.hub.pending_calls == 0
    with pytest.raises(SAMPHubError, match="its sender left"):
        w.hub.reply(r.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    assert s.t.of("receiveResponse") == []


def test_failed_call_delivery_answers_caller(w):
    """A call whose delivery fails is answered with samp.error promptly."""
    r = w.client({"a.b": {}}, name="Broken")
    s = w.client()
    r.t.fail_with = DeliveryFailed("client answered fault: nope", unreachable=False)
    d = w.hub.call_and_wait(s.private_key, r.public_id, msg("a.b"), "60")
    response = result_of(d)
    assert response["samp.status"] == "samp.error"
    assert "nope" in response["samp.error"]["samp.errortxt"]
    w.hub.call(s.private_key, r.public_id, "t2", msg("a.b"))
    assert s.t.of("receiveResponse")[0][2]["samp.status"] == "samp.error"
    assert r.registered  # a fault shows the client is alive: not ejected


def test_unreachable_client_is_ejected(w):
    """STD-FAIL-5, ADM-DISC-1: after max_failures unreachable deliveries."""
    watcher = w.client({"samp.hub.event.unregister": {}})
    r = w.client({"a.b": {}, "samp.hub.disconnect": {}})
    s = w.client()
    r.t.fail_with = DeliveryFailed("connection refused")
    for _ in range(2):
        w.hub.notify(s.private_key, r.public_id, msg("a.b"))
    assert r.registered
    w.hub.notify(s.private_key, r.public_id, msg("a.b"))
    assert not r.registered
    assert r.t.mtypes()[-1] == "samp.hub.disconnect"
    assert "failed 3 times" in r.t.of("receiveNotification")[-1][1]["samp.params"]["reason"]
    assert watcher.t.of("receiveNotification")[-1][1] == msg(
        "samp.hub.event.unregister", id=r.public_id
    )
    assert r.public_id not in w.hub.get_registered_clients(s.private_key)


def test_success_resets_failure_count(w):
    r = w.client({"a.b": {}})
    s = w.client()
    for _ in range(5):
        r.t.fail_with = DeliveryFailed("refused")
        w.hub.notify(s.private_key, r.public_id, msg("a.b"))
        w.hub.notify(s.private_key, r.public_id, msg("a.b"))
        r.t.fail_with = None
        w.hub.notify(s.private_key, r.public_id, msg("a.b"))
    assert r.registered


def test_register_unregister_events(w):
    """ADM-REG-1, ADM-UNREG-1: the departing client does not get its own event."""
    watcher = w.client({"samp.hub.event.register": {}, "samp.hub.event.unregister": {}})
    a = w.client({"samp.hub.event.*": {}})
    assert watcher.t.of("receiveNotification")[0][1] == msg(
        "samp.hub.event.register", id=a.public_id
    )
    w.hub.unregister(a.private_key)
    assert watcher.t.of("receiveNotification")[-1][1] == msg(
        "samp.hub.event.unregister", id=a.public_id
    )
    assert "samp.hub.event.unregister" not in a.t.mtypes()


def test_hub_answers_ping_and_query(w):
    """HUB-SELFCLI-3, ADM-PING-1, ADM-QBM-1."""
    a = w.client(name="Alpha")
    s = w.client()
    d = w.hub.call_and_wait(s.private_key, HUB_ID, PING, "5")
    w.clock.advance(0)
    assert result_of(d) == {"samp.status": "samp.ok", "samp.result": {}}
    for mtype in ("samp.query.by-meta", "x-samp.query.by-meta"):
        d = w.hub.call_and_wait(
            s.private_key, HUB_ID, msg(mtype, key="samp.name", value="Alpha"), "5"
        )
        w.clock.advance(0)
        assert result_of(d)["samp.result"] == {"ids": [a.public_id]}


def test_pending_limit(w):
    hub_w = World(max_pending_per_client=3)
    r = hub_w.client({"a.b": {}})
    s = hub_w.client()
    for _ in range(3):
        hub_w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))
    with pytest.raises(SAMPHubError, match="too many outstanding"):
        hub_w.hub.call(s.private_key, r.public_id, "t", msg("a.b"))


def test_shutdown(w):
    """ADM-SHUT-1, STD-SHUT-1/2: event sent, waits end, keys die."""
    a = w.client({"samp.hub.event.shutdown": {}, "a.b": {}})
    s = w.client()
    d = w.hub.call_and_wait(s.private_key, a.public_id, msg("a.b"), "0")
    done = w.hub.shutdown(grace=5)
    assert a.t.mtypes()[-1] == "samp.hub.event.shutdown"
    assert result_of(done) is not None or done.called
    assert result_of(d).check(SAMPHubError)
    with pytest.raises(SAMPHubError):
        w.hub.get_registered_clients(s.private_key)
    with pytest.raises(SAMPHubError, match="shutting down"):
        w.hub.register("standard")
    assert a.t.closed


def test_shutdown_waits_bounded_for_hung_client(w):
    a = w.client({"samp.hub.event.shutdown": {}})
    a.t.hold = True
    done = w.hub.shutdown(grace=3)
    assert not done.called
    w.clock.advance(3.1)
    assert done.called


def test_ordering_per_recipient(w):
    """HUB-ORDER-1: the core hands a recipient's messages over in order."""
    r = w.client({"n.*": {}})
    s = w.client()
    for i in range(20):
        w.hub.notify(s.private_key, r.public_id, msg(f"n.m{i}"))
    assert r.t.mtypes() == [f"n.m{i}" for i in range(20)]
