"""
One reconnection backoff for the whole package: the client library's
reconnection to a hub (L{samptwist.client.reconnect}) and C{samptwist
remote}'s link to the far side (L{samptwist.remote.link}) both wait with it.
It imports nothing of the hub or of the client, so either may use it.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater


class Backoff:
    """
    Delays between attempts: C{first}, then multiplied by C{factor} after
    each failed attempt up to C{maximum}; back to C{first} after L{reset}, or
    when the attempt that just ended had lasted C{reset_after} seconds or
    more (a link that worked for a while was not a failure to connect).

    @ivar attempts: attempts made since the last reset.
    """

    def __init__(self, clock: IReactorTime, first: float = 1.0, maximum: float = 30.0,
                 factor: float = 2.0, reset_after: Optional[float] = None) -> None:
        """
        @param clock: measures how long attempts last and drives L{wait}.
        @raise ValueError: for a delay that is not positive, a maximum below
            the first delay, or a factor below 1.
        """
        if first <= 0 or maximum < first or factor < 1:
            raise ValueError(f"bad backoff: first {first}, maximum {maximum}, factor {factor}")
        self.clock = clock
        self.first = first
        self.maximum = maximum
        self.factor = factor
        self.reset_after = reset_after
        self.attempts = 0
        self._delay = first
        self._started: Optional[float] = None

    def reset(self) -> None:
        """
        The next delay is C{first} again.
        """
        self.attempts = 0
        self._delay = self.first

    def started(self) -> None:
        """
        An attempt starts now.
        """
        self.attempts += 1
        self._started = self.clock.seconds()

    def next_delay(self) -> float:
        """
        The attempt ended (failed, or its connection was lost).

        @return: how long to wait before the next one.
        """
        if self._started is not None and self.reset_after is not None and \
                self.clock.seconds() - self._started >= self.reset_after:
            self.reset()
        self._started = None
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.maximum)
        return delay

    def wait(self, delay: Optional[float] = None) -> Deferred[Any]:
        """
        @param delay: how long (default: L{next_delay}).
        @return: a L{Deferred} firing with C{None} once the delay has passed;
            cancelling it ends the wait (it fails with
            L{CancelledError<twisted.internet.defer.CancelledError>}).
        """
        return deferLater(self.clock, self.next_delay() if delay is None else delay,
                          lambda: None)
