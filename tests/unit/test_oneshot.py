"""
L{samptwist._oneshot.OneShot}: every observer gets its own Deferred, so one
observer's callbacks never change what another receives.
"""

from __future__ import annotations

from typing import List

import pytest
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from samptwist._oneshot import OneShot


def test_each_observer_gets_the_result():
    event: OneShot[str] = OneShot()
    first, second = event.observe(), event.observe()
    assert first is not second
    first.addCallback(lambda result: None)  # a consumer that "eats" the result
    got: List[object] = []
    second.addCallback(got.append)
    assert not event.called and got == []
    event.fire("up")
    assert event.called and got == ["up"]
    late: List[object] = []
    event.observe().addCallback(late.append)  # after the event: at once
    assert late == ["up"]


def test_failure_reaches_every_observer_and_is_kept():
    event: OneShot[str] = OneShot()
    first = event.observe()
    first.addErrback(lambda f: None)  # one consumer handles it...
    second_failures: List[Failure] = []
    event.observe().addErrback(second_failures.append)
    event.fail(ValueError("no"))
    assert [f.type for f in second_failures] == [ValueError]  # ...the next still sees it
    late: List[Failure] = []
    event.observe().addErrback(late.append)
    assert late[0].check(ValueError)


def test_unobserved_failure_is_not_logged_as_unhandled():
    """The event keeps a Failure, not a Deferred: nothing to garbage-collect noisily."""
    event: OneShot[None] = OneShot()
    event.fail(ValueError("nobody listens"))
    assert event.called


def test_cancelling_one_observer_leaves_the_others():
    event: OneShot[int] = OneShot()
    cancelled = event.observe()
    kept = event.observe()
    errors: List[Failure] = []
    cancelled.addErrback(errors.append)
    cancelled.cancel()
    assert errors[0].check(CancelledError)
    got: List[int] = []
    kept.addCallback(got.append)
    event.fire(7)
    assert got == [7]


def test_fires_once():
    event: OneShot[int] = OneShot()
    event.fire(1)
    with pytest.raises(RuntimeError):
        event.fire(2)
    with pytest.raises(RuntimeError):
        event.fail(ValueError())
