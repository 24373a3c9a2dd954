"""
Unit tests of the client's pending-call bookkeeping (samptwist.client.pending)
on its own: no hub, no SAMPClient, a task.Clock for every time-out.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, fail, succeed
from twisted.internet.task import Clock

from samptwist.client.errors import BroadcastTimeout, NotConnected
from samptwist.client.pending import PendingCalls
from samptwist.errors import SAMPCallError
from samptwist.testing import failure_of, result_of

OK = {"samp.status": "samp.ok", "samp.result": {}}
ERROR = {"samp.status": "samp.error", "samp.error": {"samp.errortxt": "no"}}


class Sender:
    """Stands for the hub: records each msg-tag sent, answers with C{answer}."""

    def __init__(self, answer: Any = "msg-1") -> None:
        self.tags: List[str] = []
        self.answer = answer
        self.requests: List[Deferred] = []

    def __call__(self, tag: str) -> Deferred:
        self.tags.append(tag)
        if isinstance(self.answer, BaseException):
            return fail(self.answer)
        if self.answer is None:
            d: Deferred = Deferred()
            self.requests.append(d)
            return d
        return succeed(self.answer)


@pytest.fixture
def clock():
    return Clock()


def test_tags_are_fresh(clock):
    calls = PendingCalls(clock)
    other = PendingCalls(clock)
    tags = [calls.new_tag() for _ in range(100)] + [other.new_tag() for _ in range(100)]
    assert len(set(tags)) == 200


def test_call_fires_with_its_response_and_is_forgotten(clock):
    calls, send = PendingCalls(clock), Sender()
    d = calls.track(send, broadcast=False, timeout=10)
    (tag,) = send.tags
    assert tag in calls and len(calls) == 1
    calls.route("c1", tag, OK)
    assert result_of(d) == OK
    assert len(calls) == 0
    after: List[Any] = []
    d.addBoth(after.append)
    calls.route("c1", tag, ERROR)  # a second response is ignored
    clock.advance(20)  # and the time-out no longer matters
    assert after == [None]  # nothing more reached the Deferred


def test_error_response_fails_with_sampcallerror(clock):
    calls, send = PendingCalls(clock), Sender()
    d = calls.track(send, broadcast=False, timeout=None)
    calls.route("c1", send.tags[0], ERROR)
    f = failure_of(d)
    assert f.check(SAMPCallError) and "no" in str(f.value)


def test_call_times_out_and_a_late_response_is_ignored(clock):
    calls, send = PendingCalls(clock), Sender()
    d = calls.track(send, broadcast=False, timeout=3)
    clock.advance(2.9)
    assert not d.called
    clock.advance(0.2)
    assert failure_of(d).check(TimeoutError)
    assert len(calls) == 0
    calls.route("c1", send.tags[0], OK)  # late: ignored, nothing raised


def test_refused_send_fails_the_call_at_once(clock):
    calls = PendingCalls(clock)
    d = calls.track(Sender(NotConnected("no hub")), broadcast=False, timeout=5)
    assert failure_of(d).check(NotConnected)
    assert len(calls) == 0


def test_cancel_forgets_the_call_and_cancels_the_request(clock):
    calls, send = PendingCalls(clock), Sender(None)
    d = calls.track(send, broadcast=False, timeout=5)
    d.cancel()
    assert failure_of(d).check(CancelledError)
    assert len(calls) == 0
    assert send.requests[0].called  # the hub request was cancelled too


def test_broadcast_collects_every_recipient(clock):
    calls, send = PendingCalls(clock), Sender({"c1": "m1", "c2": "m2"})
    seen: List[str] = []
    d = calls.track(send, broadcast=True, timeout=5,
                    on_response=lambda responder, response: seen.append(responder))
    tag = send.tags[0]
    calls.route("c2", tag, ERROR)
    assert not d.called
    calls.route("c1", tag, OK)
    assert result_of(d) == {"c1": OK, "c2": ERROR}  # error responses included, not raised
    assert seen == ["c2", "c1"] and len(calls) == 0


def test_broadcast_to_nobody_fires_at_once(clock):
    calls = PendingCalls(clock)
    d = calls.track(Sender({}), broadcast=True, timeout=5)
    assert result_of(d) == {}


def test_broadcast_timeout_carries_what_arrived(clock):
    calls, send = PendingCalls(clock), Sender({"c1": "m1", "c2": "m2"})
    d = calls.track(send, broadcast=True, timeout=5)
    calls.route("c1", send.tags[0], OK)
    clock.advance(5)
    e = failure_of(d).value
    assert isinstance(e, BroadcastTimeout)
    assert e.responses == {"c1": OK} and e.missing == ["c2"]


def test_failing_on_response_callback_does_not_stop_the_broadcast(clock):
    calls, send = PendingCalls(clock), Sender({"c1": "m1"})

    def broken(responder: str, response: Dict[str, Any]) -> None:
        raise RuntimeError("boom")

    d = calls.track(send, broadcast=True, timeout=5, on_response=broken)
    calls.route("c1", send.tags[0], OK)
    assert result_of(d) == {"c1": OK}


def test_fail_all_fails_every_waiting_call(clock):
    calls, send = PendingCalls(clock), Sender(None)
    ds = [calls.track(send, broadcast=b, timeout=None) for b in (False, True, False)]
    calls.fail_all(NotConnected("connection ended"))
    assert [failure_of(d).check(NotConnected) for d in ds] == [NotConnected] * 3
    assert len(calls) == 0


def test_listeners_get_responses_to_their_tags(clock):
    calls = PendingCalls(clock)
    got: List[tuple] = []
    calls.listen("mine", lambda *args: got.append(args))
    calls.route("c1", "mine", OK)
    calls.route("c1", "other", OK)  # nobody waits: ignored
    calls.unlisten("mine")
    calls.route("c1", "mine", OK)
    assert got == [("c1", "mine", OK)]


def test_failing_listener_is_logged_not_raised(clock):
    calls = PendingCalls(clock)

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    calls.listen("t", broken)
    calls.route("c1", "t", OK)  # must not raise
    calls.route("c1", "t", OK)
    assert len(calls) == 0
