"""
L{OneShot}: an event that happens once, observed by any number of callers,
each handed its own L{Deferred}.

A single shared Deferred is a trap: the first consumer's callback replaces
the result every later consumer receives (C{d.addCallback(print)} leaves
C{None} behind), and a consumer's errback swallows the failure for everyone.
A L{OneShot} keeps the result itself and hands each observer a fresh
Deferred, before or after the event.
"""

from __future__ import annotations

from typing import Any, Generic, List, Optional, TypeVar, Union

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

T = TypeVar("T")


class OneShot(Generic[T]):
    """
    The result of something that happens once (a service started, stopped).

    @ivar called: C{True} once L{fire} or L{fail} was called.
    """

    def __init__(self) -> None:
        self.called = False
        self._result: Optional[Union[T, Failure]] = None
        self._waiting: List[Deferred[T]] = []

    def observe(self) -> Deferred[T]:
        """
        @return: a new L{Deferred} that fires with the result (or fails with
            the failure) of the event, at once if it has happened already.
            Cancelling it only stops this observer waiting.
        """
        if self.called:
            if isinstance(self._result, Failure):
                return fail(self._result)
            return succeed(self._result)  # type: ignore[arg-type]

        def forget(d: Deferred[T]) -> None:
            self._waiting.remove(d)

        d: Deferred[T] = Deferred(forget)
        self._waiting.append(d)
        return d

    def fire(self, result: T) -> None:
        """
        Record C{result} and hand it to every observer.

        @raise RuntimeError: if the event already happened.
        """
        self._settle(result)

    def fail(self, failure: Union[Failure, BaseException, None] = None) -> None:
        """
        Record a failure (default: the current exception) and hand it to
        every observer.  Nobody observing it is not an error: it is kept for
        later observers and never logged as unhandled.

        @raise RuntimeError: if the event already happened.
        """
        self._settle(failure if isinstance(failure, Failure) else Failure(failure))

    def _settle(self, result: Any) -> None:
        if self.called:
            raise RuntimeError("this event has already happened")
        self.called = True
        self._result = result
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)
