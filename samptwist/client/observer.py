"""
A tiny observable: subscribers are called, and one-shot waiters fired, on a
later reactor turn so that an observer can never re-enter the code that
emitted the event.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, List, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from .._log import Logger

T = TypeVar("T")


class Observable(Generic[T]):
    """
    A stream of events of one kind.

    @ivar name: used in log messages.
    """

    log = Logger()

    def __init__(self, reactor: IReactorTime, name: str) -> None:
        self._reactor = reactor
        self.name = name
        self._observers: List[Callable[[T], Any]] = []
        self._waiters: List[Deferred] = []

    def subscribe(self, observer: Callable[[T], Any]) -> Callable[[], None]:
        """
        Call C{observer(event)} for every later event.

        @return: a function that removes the observer again.
        """
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def next_event(self) -> Deferred:
        """
        @return: a fresh L{Deferred} firing with the next event; cancelling it
            stops waiting.
        """

        def cancel(d: Deferred) -> None:
            if d in self._waiters:
                self._waiters.remove(d)

        d: Deferred = Deferred(cancel)
        self._waiters.append(d)
        return d

    def emit(self, event: T) -> None:
        """
        Deliver C{event} to the observers and waiters on the next reactor turn.
        """
        self._reactor.callLater(0, self._deliver, event)

    def _deliver(self, event: T) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(event)
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                self.log.failure("{name} observer failed", name=self.name)
