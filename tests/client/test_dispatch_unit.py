"""
Unit tests of incoming callbacks: the private-key check, handler choice by
the most specific pattern, built-in ping, and replying rules.
"""

from __future__ import annotations

import xmlrpc.client

import pytest
from twisted.internet.defer import Deferred

from samptwist.client.handlers import HandlerTable, Message, error, ok, run_handler
from samptwist.errors import SAMPValueError
from samptwist.testing import MemoryRig, post_to_resource, result_of


@pytest.fixture
def rig():
    return MemoryRig()


def post(resource, method, *args):
    body = xmlrpc.client.dumps(args, method).encode()
    answer = result_of(post_to_resource(resource, body))
    return xmlrpc.client.loads(answer)[0][0]


def test_wrong_private_key_is_a_fault(rig):
    """The callback server refuses a wrong private key with a fault (CLI-CB-5, STD-RPC-6)."""
    client = rig.connected("a")
    seen = []
    client.add_handler("test.x", seen.append)
    message = {"samp.mtype": "test.x", "samp.params": {}}
    with pytest.raises(xmlrpc.client.Fault, match="wrong private key"):
        post(client.callback_resource, "samp.client.receiveNotification", "bad", "c9", message)
    with pytest.raises(xmlrpc.client.Fault):
        post(client.callback_resource, "samp.client.receiveCall", "", "c9", "m1", message)
    assert seen == []
    # The right key works and the callback answers "" at once (CLI-CB-4).
    key = client.callback_resource.private_key
    assert post(client.callback_resource, "samp.client.receiveNotification", key, "c9",
                message) == ""
    rig.settle()
    assert [m.mtype for m in seen] == ["test.x"]


def test_unregistered_client_refuses_every_callback(rig):
    """Before registration there is no key, so nothing is accepted (CLI-CB-5)."""
    client = rig.client("a")
    with pytest.raises(xmlrpc.client.Fault):
        post(client.callback_resource, "samp.client.receiveNotification", "", "c1",
             {"samp.mtype": "a.b", "samp.params": {}})


def test_callback_checks_arguments(rig):
    client = rig.connected("a")
    key = client.callback_resource.private_key
    with pytest.raises(xmlrpc.client.Fault):
        post(client.callback_resource, "samp.client.receiveNotification", key, "c1")
    with pytest.raises(xmlrpc.client.Fault):
        post(client.callback_resource, "samp.client.nonsense", key)


def test_most_specific_handler_wins(rig):
    """
    One message goes to one handler, the most specific match (CLI-CB-6,
    MT-SUB-3, MT-SUB-4): exact > longer prefix > "*".
    """
    a, b = rig.connected("a"), rig.connected("b")
    got = []
    for pattern in ("*", "table.*", "table.load.*", "table.load.votable"):
        b.add_handler(pattern, lambda m, p=pattern: got.append((p, m.mtype)))
    rig.settle()
    for mtype in ("table.load.votable", "table.load.fits", "table.highlight.row", "table",
                  "tables.x"):
        result_of(a.notify(b.self_id, mtype))
        rig.settle()
    assert got == [
        ("table.load.votable", "table.load.votable"),
        ("table.load.*", "table.load.fits"),
        ("table.*", "table.highlight.row"),
        ("*", "table"),
        ("*", "tables.x"),
    ]


def test_builtin_ping_beats_wildcard(rig):
    """samp.app.ping is answered by the library even with a "*" handler (ADM-PING-1)."""
    a, b = rig.connected("a"), rig.connected("b")
    wild = []
    b.add_handler("*", wild.append)
    rig.settle()
    d = a.call(b.self_id, "samp.app.ping", timeout=5)
    rig.settle()
    assert result_of(d) == {"samp.status": "samp.ok", "samp.result": {}}
    assert wild == []


def test_call_without_handler_gets_error(rig):
    """A call that reaches no handler is still answered (CLI-CB-2)."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.only.*", lambda m: None)
    rig.settle()
    b.handlers.remove("test.only.*")  # hub still thinks b is subscribed
    d = a.call(b.self_id, "test.only.this", timeout=5)
    rig.settle()
    assert "no handler" in d.result.value.errortxt
    d.addErrback(lambda f: None)


def test_manual_reply_handler(rig):
    """auto_reply=False: the handler calls reply() itself, exactly once."""
    a, b = rig.connected("a"), rig.connected("b")

    def manual(message):
        b.reply(message.msg_id, ok({"by": "hand"}))
        return {"ignored": "1"}

    b.add_handler("test.manual", manual, auto_reply=False)
    rig.settle()
    d = a.call(b.self_id, "test.manual", timeout=5)
    rig.settle()
    assert result_of(d)["samp.result"] == {"by": "hand"}


def test_run_handler_results():
    """Handler results map to responses (MSG-RESP-1..3)."""
    table = HandlerTable()
    msg = Message("a.b", {}, "c1", "m1", {})
    cases = [
        (lambda m: None, ok()),
        (lambda m: {"n": 1.5}, ok({"n": "1.5"})),
        (lambda m: error("bad"), error("bad")),
        (lambda m: 42, None),
    ]
    for handler, expected in cases:
        entry = table.add("a.b", handler)
        response = result_of(run_handler(entry, msg))
        if expected is None:
            assert response["samp.status"] == "samp.error"
        else:
            assert response == expected
    # Notifications never produce a response.
    entry = table.add("a.b", lambda m: {"x": "1"})
    assert result_of(run_handler(entry, Message("a.b", {}, "c1", None, {}))) is None


def test_handler_table_rejects_bad_patterns():
    """Subscription keys follow MT-SUB-2."""
    table = HandlerTable()
    for bad in ("tab*", "*.load", "table.*.votable", "a..b", ""):
        with pytest.raises(SAMPValueError):
            table.add(bad, lambda m: None)


def test_handler_failure_after_deferred(rig):
    """A Deferred handler that fails later still produces samp.error."""
    a, b = rig.connected("a"), rig.connected("b")
    later: Deferred = Deferred()
    b.add_handler("test.later", lambda m: later)
    rig.settle()
    d = a.call(b.self_id, "test.later", timeout=5)
    rig.settle()
    later.errback(RuntimeError("disk full"))
    rig.settle()
    assert d.result.value.errortxt == "disk full"
    d.addErrback(lambda f: None)
