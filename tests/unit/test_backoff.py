"""
The package's one reconnection backoff (samptwist._backoff), on a
task.Clock, and its two users' schedules: the client's lockfile watch
(samptwist.client.reconnect) and samptwist remote's reconnections.
"""

from __future__ import annotations

from typing import List

import pytest
from twisted.internet.defer import CancelledError, fail, succeed
from twisted.internet.task import Clock

from samptwist._backoff import Backoff


def delays(backoff: Backoff, n: int) -> List[float]:
    out = []
    for _ in range(n):
        backoff.started()
        out.append(backoff.next_delay())
    return out


def test_doubles_up_to_the_maximum_and_resets():
    backoff = Backoff(Clock(), first=1.0, maximum=30.0)
    assert delays(backoff, 7) == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.attempts == 7
    backoff.reset()
    assert backoff.attempts == 0 and delays(backoff, 2) == [1, 2]


def test_an_attempt_that_lasted_resets_the_delay():
    clock = Clock()
    backoff = Backoff(clock, first=0.5, maximum=8.0, reset_after=30.0)
    assert delays(backoff, 4) == [0.5, 1, 2, 4]
    backoff.started()
    clock.advance(29)
    assert backoff.next_delay() == 8  # a short link: still backing off
    backoff.started()
    clock.advance(30)
    assert backoff.next_delay() == 0.5  # a link that worked: start again
    assert backoff.next_delay() == 1


def test_factor_one_is_a_fixed_interval():
    assert delays(Backoff(Clock(), first=2.0, maximum=2.0), 3) == [2, 2, 2]


@pytest.mark.parametrize("first, maximum, factor", [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_bad_settings_are_refused(first, maximum, factor):
    with pytest.raises(ValueError, match="bad backoff"):
        Backoff(Clock(), first=first, maximum=maximum, factor=factor)


def test_wait_fires_after_the_delay_and_can_be_cancelled():
    clock = Clock()
    backoff = Backoff(clock, first=3.0)
    waited: list = []
    backoff.wait().addBoth(waited.append)
    clock.advance(2.9)
    assert waited == []
    clock.advance(0.1)
    assert waited == [None]
    cancelled: list = []
    d = backoff.wait()  # 6 s now
    d.addErrback(lambda f: cancelled.append(f.check(CancelledError)))
    d.cancel()
    assert cancelled == [CancelledError] and not clock.getDelayedCalls()


def test_the_client_watch_looks_at_the_lockfile_on_the_backoff():
    from samptwist.client.reconnect import Reconnector

    clock = Clock()
    looks: List[float] = []
    connected = [False]

    def find_hub():
        looks.append(clock.seconds())
        return fail(LookupError("no hub yet"))

    watch = Reconnector(clock, is_connected=lambda: connected[0], find_hub=find_hub,
                        connect=lambda: succeed(None), ping=lambda: succeed(None),
                        lost=lambda why: None, interval=1.0, max_interval=4.0)
    watch.start()
    for _ in range(20):
        clock.advance(0.5)
    assert looks == [1, 3, 7]  # waits of 1, 2, 4 s...
    clock.pump([1.0] * 9)
    assert looks == [1, 3, 7, 11, 15, 19]  # ...then every 4 s
    watch.stop()
    assert not watch.watching and not clock.getDelayedCalls()
    watch.start()  # a new loss starts from the first delay again
    clock.advance(1)
    assert looks[-1] == 20
    watch.stop()


def test_the_client_watch_is_a_fixed_interval_by_default():
    from samptwist.client.reconnect import Reconnector

    clock = Clock()
    looks: List[float] = []

    def find_hub():
        looks.append(clock.seconds())
        return fail(LookupError("no hub yet"))

    watch = Reconnector(clock, is_connected=lambda: False, find_hub=find_hub,
                        connect=lambda: succeed(None), ping=lambda: succeed(None),
                        lost=lambda why: None, interval=1.0)
    watch.start()
    clock.pump([1.0] * 4)
    assert looks == [1, 2, 3, 4]
    watch.stop()
