"""
Unit tests of SAMPClient on the in-memory network (samptwist.testing.MemoryRig):
our hub core driven directly, a MemoryReactorClock for every timeout, no
sockets and no sleeping.
"""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError, Deferred, TimeoutError

from samptwist.client import BroadcastTimeout, NotConnected, ResponseError, warning
from samptwist.errors import LockfileError, SAMPCallError, SAMPHubError, SAMPValueError
from samptwist.testing import MemoryRig, failure_of, result_of


@pytest.fixture
def rig():
    return MemoryRig()


def echo(message):
    return {"echo": message.params.get("x", "")}


def test_connect_declares_metadata_and_subscriptions(rig):
    """
    connect() registers, makes the client callable, declares metadata and
    the handler table as subscriptions (CLI-LIB-1, CLI-LIB-2, DATA-META-2).
    """
    client = rig.client("alpha", description="the first")
    client.add_handler("test.*", echo, {"x-note": "1"})
    d = client.connect()
    rig.settle()
    assert result_of(d) is client
    hub_side = rig.hub.hub.client_by_id(client.self_id)
    assert hub_side.metadata == {"samp.name": "alpha", "samp.description.text": "the first"}
    subs = hub_side.subscriptions
    assert subs["test.*"] == {"x-note": "1"}
    for builtin in ("samp.app.ping", "samp.hub.event.shutdown", "samp.hub.disconnect",
                    "samp.hub.event.register", "samp.hub.event.metadata"):
        assert builtin in subs
    assert client.hub_id == rig.hub.hub.hub_client.public_id


def test_wrong_secret_fails_with_hub_fault(rig):
    """A wrong secret → SAMPHubError carrying the hub's faultString (STD-SECRET-1)."""
    client = rig.client("x", secret="wrong")
    d = client.connect()
    rig.settle()
    f = failure_of(d)
    assert f.check(SAMPHubError)
    assert "secret" in str(f.value)
    assert not client.is_connected


def test_no_hub_running_is_a_clear_error(rig, tmp_path):
    """No lockfile → LockfileError saying no hub is running (STD-LOCK-3)."""
    client = rig.client("x", lockfile=tmp_path / "absent")
    d = client.connect()
    rig.settle()
    f = failure_of(d)
    assert f.check(LockfileError)
    assert "no SAMP hub is running" in str(f.value)


def test_notification_reaches_handler_without_reply(rig):
    """Notifications and calls are told apart: Message.is_call is False (MSG-PAT-1)."""
    a, b = rig.connected("a"), rig.connected("b")
    seen = []
    b.add_handler("test.note", seen.append)
    rig.settle()
    result_of(a.notify(b.self_id, "test.note", {"n": 3}))
    rig.settle()
    assert [(m.mtype, m.params, m.sender_id, m.is_call) for m in seen] == [
        ("test.note", {"n": "3"}, a.self_id, False)
    ]


def test_notify_all_returns_recipients(rig):
    a, b, c = rig.connected("a"), rig.connected("b"), rig.connected("c")
    for client in (b, c):
        client.add_handler("test.note", lambda m: None)
    rig.settle()
    d = a.notify_all({"samp.mtype": "test.note", "samp.params": {}})
    rig.settle()
    assert sorted(result_of(d)) == sorted([b.self_id, c.self_id])


def test_call_round_trip(rig):
    """call() fires with the response routed by msg-tag (MSG-TAG-1, HUB-CALL-1)."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.echo", echo)
    rig.settle()
    d = a.call(b.self_id, "test.echo", {"x": "hi"}, timeout=10)
    rig.settle()
    response = result_of(d)
    assert response["samp.status"] == "samp.ok"
    assert response["samp.result"] == {"echo": "hi"}
    assert len(a.pending) == 0


def test_handler_exception_becomes_samp_error(rig):
    """
    A raising handler still replies: samp.error with samp.errortxt and a
    samp.debugtxt traceback (MSG-ERR-3, CLI-CB-2); the caller gets
    SAMPCallError.
    """
    a, b = rig.connected("a"), rig.connected("b")

    def broken(message):
        raise KeyError("no such table")

    b.add_handler("test.broken", broken)
    rig.settle()
    d = a.call(b.self_id, "test.broken", timeout=10)
    rig.settle()
    f = failure_of(d)
    assert f.check(SAMPCallError)
    assert "no such table" in f.value.errortxt
    assert "Traceback" in f.value.error["samp.debugtxt"]
    assert f.value.responder == b.self_id


def test_response_error_fields(rig):
    """ResponseError chooses the error map's fields (MSG-ERR-1, MSG-ERR-2)."""
    a, b = rig.connected("a"), rig.connected("b")

    def refuse(message):
        raise ResponseError("refused", usertxt="Not today", code="42")

    b.add_handler("test.refuse", refuse)
    rig.settle()
    d = a.call_and_wait(b.self_id, "test.refuse", timeout=10)
    rig.settle()
    f = failure_of(d)
    assert f.check(SAMPCallError)
    assert f.value.error == {"samp.errortxt": "refused", "samp.usertxt": "Not today",
                             "samp.code": "42"}


def test_warning_response_is_a_success(rig):
    """samp.warning carries both result and error and is not raised (MSG-RESP-3)."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.partly", lambda m: warning({"n": 1}, "only one"))
    rig.settle()
    d = a.call(b.self_id, "test.partly", timeout=10)
    rig.settle()
    response = result_of(d)
    assert response["samp.status"] == "samp.warning"
    assert response["samp.result"] == {"n": "1"}
    assert response["samp.error"]["samp.errortxt"] == "only one"


def test_deferred_handler_replies_later(rig):
    """A handler may return a Deferred; the reply goes out when it fires (CLI-CB-3)."""
    a, b = rig.connected("a"), rig.connected("b")
    later: Deferred = Deferred()
    b.add_handler("test.slow", lambda m: later)
    rig.settle()
    d = a.call(b.self_id, "test.slow", timeout=10)
    rig.settle()
    assert not d.called
    rig.reactor.advance(3)
    later.callback({"done": "yes"})
    rig.settle()
    assert result_of(d)["samp.result"] == {"done": "yes"}


def test_call_timeout_and_late_reply_ignored(rig):
    """
    A call's client-side timeout (addTimeout on the injected reactor) fails
    it with TimeoutError; the late response is then ignored.
    """
    a, b = rig.connected("a"), rig.connected("b")
    later: Deferred = Deferred()
    b.add_handler("test.slow", lambda m: later)
    rig.settle()
    d = a.call(b.self_id, "test.slow", timeout=5)
    rig.settle()
    rig.reactor.advance(4.9)
    assert not d.called
    rig.reactor.advance(0.2)
    assert failure_of(d).check(TimeoutError)
    assert len(a.pending) == 0
    later.callback({})
    rig.settle()  # the late response arrives and is dropped quietly


def test_call_cancel_ignores_late_reply(rig):
    """cancel() fails the call with CancelledError and forgets its tag."""
    a, b = rig.connected("a"), rig.connected("b")
    later: Deferred = Deferred()
    b.add_handler("test.slow", lambda m: later)
    rig.settle()
    d = a.call(b.self_id, "test.slow")
    rig.settle()
    d.cancel()
    assert failure_of(d).check(CancelledError)
    assert len(a.pending) == 0
    later.callback({})
    rig.settle()


def test_call_refused_by_hub(rig):
    """Calling an unsubscribed recipient: the hub's fault fails the call (HUB-DELIV-1)."""
    a, b = rig.connected("a"), rig.connected("b")
    d = a.call(b.self_id, "test.nobody", timeout=5)
    rig.settle()
    f = failure_of(d)
    assert f.check(SAMPHubError) and not f.check(SAMPCallError)
    assert len(a.pending) == 0


def test_call_all_collects_responses(rig):
    """callAll fires with one response per recipient, by responder id (CLI-LIB-5)."""
    a, b, c = rig.connected("a"), rig.connected("b"), rig.connected("c")
    b.add_handler("test.echo", echo)
    c.add_handler("test.echo", lambda m: (_ for _ in ()).throw(ValueError("nope")))
    rig.settle()
    seen = []
    d = a.call_all("test.echo", {"x": "1"}, timeout=5,
                   on_response=lambda r, resp: seen.append(r))
    rig.settle()
    responses = result_of(d)
    assert responses[b.self_id]["samp.result"] == {"echo": "1"}
    assert responses[c.self_id]["samp.status"] == "samp.error"
    assert sorted(seen) == sorted([b.self_id, c.self_id])


def test_call_all_nobody_subscribed(rig):
    a = rig.connected("a")
    d = a.call_all("test.nobody", timeout=5)
    rig.settle()
    assert result_of(d) == {}


def test_call_all_timeout_keeps_partial_responses(rig):
    """A callAll timeout reports what arrived and who is missing."""
    a, b, c = rig.connected("a"), rig.connected("b"), rig.connected("c")
    b.add_handler("test.echo", echo)
    c.add_handler("test.echo", lambda m: Deferred())
    rig.settle()
    d = a.call_all("test.echo", timeout=5)
    rig.settle()
    assert not d.called
    rig.reactor.advance(5)
    f = failure_of(d)
    assert f.check(BroadcastTimeout) and f.check(TimeoutError)
    assert list(f.value.responses) == [b.self_id]
    assert f.value.missing == [c.self_id]


def test_call_all_cancel(rig):
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.echo", lambda m: Deferred())
    rig.settle()
    d = a.call_all("test.echo")
    rig.settle()
    d.cancel()
    assert failure_of(d).check(CancelledError)
    assert len(a.pending) == 0


def test_call_and_wait_round_trip(rig):
    """callAndWait returns the response map (HUB-WAIT-1)."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.echo", echo)
    rig.settle()
    d = a.call_and_wait(b.self_id, "test.echo", {"x": "w"}, timeout=3)
    rig.settle()
    assert result_of(d)["samp.result"] == {"echo": "w"}


def test_call_and_wait_hub_timeout(rig):
    """The hub's timeout fault reaches the caller as SAMPHubError (HUB-WAIT-2)."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.slow", lambda m: Deferred())
    rig.settle()
    d = a.call_and_wait(b.self_id, "test.slow", timeout=2)
    rig.settle()
    rig.reactor.advance(2.5)
    f = failure_of(d)
    assert f.check(SAMPHubError)


def test_call_and_wait_client_timeout_when_hub_hangs(rig):
    """If the hub never answers, the client gives up timeout + wait_grace later."""
    a = rig.connected("a", wait_grace=1.0)
    rig.network.hanging.add(rig.hub.url)
    d = a.call_and_wait("c99", "test.slow", timeout=2)
    rig.reactor.advance(2.9)
    assert not d.called
    rig.reactor.advance(0.2)
    assert failure_of(d).check(TimeoutError)


def test_call_and_wait_cancel_releases_hub(rig):
    """Cancelling callAndWait drops the request; the hub forgets the pending call."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.slow", lambda m: Deferred())
    rig.settle()
    d = a.call_and_wait(b.self_id, "test.slow")
    rig.settle()
    assert rig.hub.hub.pending_calls == 1
    d.cancel()
    assert failure_of(d).check(CancelledError)
    rig.settle()
    assert rig.hub.hub.pending_calls == 0


def test_hub_request_timeout(rig):
    """Every hub request is bounded: a hanging hub fails get_metadata with TimeoutError."""
    a = rig.connected("a", hub_timeout=3.0)
    rig.network.hanging.add(rig.hub.url)
    d = a.get_registered_clients()
    rig.reactor.advance(3)
    assert failure_of(d).check(TimeoutError)


def test_invalid_message_rejected_locally(rig):
    """Non-SAMP values never reach the wire (DATA-TYPE-4)."""
    a = rig.connected("a")
    d = a.notify("c1", {"samp.mtype": "test.x", "samp.params": {"n": 1}})
    assert failure_of(d).check(SAMPValueError)
    d = a.notify("c1", "bad mtype!")
    assert failure_of(d).check(SAMPValueError)


def test_not_connected(rig):
    client = rig.client("a")
    assert failure_of(client.notify("c1", "test.x")).check(NotConnected)


def test_ping_and_hub_queries(rig):
    a, b = rig.connected("a"), rig.connected("b")
    rig.settle()
    assert result_of(a.ping()) is None
    assert sorted(result_of(a.get_registered_clients())) == sorted([a.hub_id, b.self_id])
    assert result_of(a.get_metadata(b.self_id))["samp.name"] == "b"
    assert "samp.app.ping" in result_of(a.get_subscriptions(b.self_id))
    assert b.self_id in result_of(a.get_subscribed_clients("samp.app.ping"))


def test_declare_metadata_replaces(rig):
    """declare_metadata replaces the metadata (DATA-META-3)."""
    a, b = rig.connected("a"), rig.connected("b")
    result_of(a.declare_metadata({"samp.name": "renamed", "x": "1"}))
    assert result_of(b.get_metadata(a.self_id)) == {"samp.name": "renamed", "x": "1"}


def test_disconnect_unregisters(rig):
    """disconnect() unregisters (CLI-LIB-4) and fails pending calls."""
    a, b = rig.connected("a"), rig.connected("b")
    b.add_handler("test.slow", lambda m: Deferred())
    rig.settle()
    pending = a.call(b.self_id, "test.slow")
    rig.settle()
    events = []
    a.disconnected.subscribe(events.append)
    d = a.disconnect()
    rig.settle()
    assert result_of(d) is None
    assert failure_of(pending).check(NotConnected)
    assert a.self_id not in [c.public_id for c in rig.hub.hub.clients]
    assert events == ["closed"]
    assert not a.is_connected


def test_reactor_shutdown_trigger_unregisters(rig):
    """A 'before shutdown' system event trigger unregisters (CLI-LIB-4)."""
    a = rig.connected("a")
    triggers = rig.reactor.triggers["before"]["shutdown"]
    assert len(triggers) == 1
    fn, args, kwargs = triggers[0]
    d = fn(*args, **kwargs)
    rig.settle()
    assert result_of(d) is None
    assert a.self_id not in [c.public_id for c in rig.hub.hub.clients]
    result_of(a.disconnect())


def test_subscriptions_follow_handlers(rig):
    """Adding/removing a handler while connected re-declares subscriptions."""
    a = rig.connected("a")
    a.add_handler("image.load.fits", lambda m: None)
    rig.settle()
    hub_side = rig.hub.hub.client_by_id(a.self_id)
    assert "image.load.fits" in hub_side.subscriptions
    a.remove_handler("image.load.fits")
    rig.settle()
    assert "image.load.fits" not in hub_side.subscriptions
