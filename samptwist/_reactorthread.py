"""
The one bridge between blocking code and the Twisted reactor, shared by
both blocking facades: the client's (L{samptwist.client.blocking}) and the
hub's (L{samptwist.hub.blocking}).  Neither imports the other; both import
this module, which imports neither.

The global reactor runs in one daemon thread, started on first use;
L{run_in_reactor} calls a function there and waits for its result.  We keep
this small module rather than depend on crochet: crochet does the same
(a reactor thread and a wait for a Deferred's result), but it installs its
own logging observer and atexit handling, and the facades need a hook that
runs before the reactor stops (clients unregister while their hub, perhaps
on this very reactor, still answers): L{ReactorThread.before_stop}.
"""

from __future__ import annotations

import atexit
import queue
import threading
from typing import Any, Callable, List, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure


class ReactorThread:
    """
    The global reactor running in a daemon thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None
        self._before_stop: List[Callable[[], None]] = []

    def before_stop(self, hook: Callable[[], None]) -> None:
        """
        Call C{hook()} (from the stopping thread, while the reactor still
        runs) each time L{stop} is about to stop the reactor.
        """
        if hook not in self._before_stop:
            self._before_stop.append(hook)

    @property
    def reactor(self) -> Any:
        from twisted.internet import reactor

        return reactor

    def ensure_running(self, timeout: float = 30.0) -> None:
        """
        Start the reactor thread unless it runs already.

        @raise RuntimeError: if the reactor is run by someone else (use
            L{SAMPClient} directly in a Twisted program) or does not start.
        """
        with self._lock:
            if self.thread is not None and self.thread.is_alive():
                return
            reactor = self.reactor
            if reactor.running:
                raise RuntimeError(
                    "the Twisted reactor is already running in this process; "
                    "use samptwist.client.SAMPClient from reactor code instead"
                )
            started = threading.Event()
            reactor.callWhenRunning(started.set)
            self.thread = threading.Thread(
                target=reactor.run,
                kwargs={"installSignalHandlers": False},
                name="samptwist-reactor",
                daemon=True,
            )
            self.thread.start()
            if not started.wait(timeout):
                raise RuntimeError("the Twisted reactor did not start")
            atexit.register(self.stop)

    def stop(self, timeout: float = 10.0) -> None:
        """
        Stop the reactor (clients unregister in its shutdown triggers) and
        wait for its thread, at most C{timeout} seconds.
        """
        thread = self.thread
        if thread is None or not thread.is_alive():
            return
        for hook in list(self._before_stop):
            hook()  # e.g. clients unregister while the hub still answers
        try:
            self.reactor.callFromThread(self.reactor.stop)
        except Exception:
            return
        thread.join(timeout)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: Optional[float] = None,
            **kwargs: Any) -> Any:
        """
        Call C{fn(*args, **kwargs)} in the reactor thread and wait for its
        result (a L{Deferred} is waited for).

        @param timeout: seconds to wait; C{None} for no limit.
        @raise RuntimeError: when called from the reactor thread itself,
            which would deadlock.
        @raise TimeoutError: when the timeout passes (the work is cancelled).
        """
        self.ensure_running()
        if threading.current_thread() is self.thread:
            raise RuntimeError(
                "blocking SAMP call from the reactor thread would deadlock; "
                "call it from another thread"
            )
        box: queue.Queue[Any] = queue.Queue(1)
        holder: List[Deferred] = []

        def start() -> None:
            d = maybeDeferred(fn, *args, **kwargs)
            if timeout is not None:
                d.addTimeout(timeout, self.reactor)
            holder.append(d)
            d.addBoth(box.put)

        self.reactor.callFromThread(start)
        try:
            result = box.get()
        except BaseException:  # KeyboardInterrupt: stop the work too
            if holder:
                self.reactor.callFromThread(holder[0].cancel)
            raise
        if isinstance(result, Failure):
            result.raiseException()
        return result


_reactor_thread = ReactorThread()


def reactor_thread() -> ReactorThread:
    """
    @return: the process's one L{ReactorThread}.
    """
    return _reactor_thread


def run_in_reactor(fn: Callable[..., Any], *args: Any, timeout: Optional[float] = None,
                   **kwargs: Any) -> Any:
    """
    Run C{fn} in the background reactor thread and return its (waited-for)
    result; see L{ReactorThread.run}.
    """
    return _reactor_thread.run(fn, *args, timeout=timeout, **kwargs)
