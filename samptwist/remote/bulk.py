"""
The big pieces of the link's stream, moved by a thread of their own.

A file crosses the link as data frames of up to L{DATA_CHUNK
<samptwist.remote.protocol.DATA_CHUNK>} bytes, but ssh (and C{docker
exec}, ...) reads and writes its ends of the pipes 16 to 64 KiB at a
time.  Moved by the event loop, each frame took ten to thirty rounds of
it, each some 50 to 100 us of Python: most of what an agent spent per
byte, on machines where ssh's own encryption already keeps the cores busy.

So once a stream transport (L{StreamStdIO<samptwist.remote.link.StreamStdIO>})
has file segments to write (with the frame headers between them), or knows
that the next N bytes it reads are the rest of a data frame, it stops
watching its descriptor and gives the move to its L{Mover}: a thread that
does it with blocking calls on a descriptor of its own (the kernel does the
waiting, as it does for C{cat}; with C{poll} where the descriptor cannot
block), the GIL released meanwhile, then hands the result back to the
reactor (C{callFromThread}).  That is one round of the event loop per frame
(or per run of segments written), and nothing else waits meanwhile: the
frame is next in the stream either way.

Only the agents use this (clients of their hubs, whose file reads already
run in a thread pool); the hub never does.
"""

from __future__ import annotations

import errno
import fcntl
import os
import queue
import select
import stat
import threading
from typing import Any, Callable, List, Optional, Tuple, cast

from .protocol import FileSegment

Job = Callable[[Callable[[int, int], bool]], Any]


def own_descriptor(fd: int) -> Tuple[int, bool]:
    """
    @return: a descriptor of the same pipe or socket as C{fd} for a thread
        to use, and whether it blocks: for a pipe on Linux, a blocking one
        of its own (opened again through C{/proc/self/fd}: C{fd} stays
        non-blocking for the reactor), else a duplicate (non-blocking, as
        C{fd}).
    """
    try:
        info = os.fstat(fd)
        if stat.S_ISFIFO(info.st_mode) and os.path.exists("/proc/self/fd"):
            mode = os.O_WRONLY if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY \
                else os.O_RDONLY
            twin = os.open(f"/proc/self/fd/{fd}", mode | os.O_NONBLOCK | os.O_CLOEXEC)
            again = os.fstat(twin)
            if (again.st_dev, again.st_ino) == (info.st_dev, info.st_ino):
                os.set_blocking(twin, True)
                return twin, True
            os.close(twin)
    except OSError:
        pass
    return os.dup(fd), False


class MoverStopped(Exception):
    """
    The mover was stopped (its stream ended) before the move was done.
    """


class Mover:
    """
    One daemon thread that runs moves on one descriptor, one at a time, in
    order, and hands each result (or the exception it raised) to
    C{done} in the reactor thread.

    The thread works on a descriptor of its own (L{own_descriptor}), so
    that the reactor may close its own at any time.  On a blocking one (a
    pipe's, on Linux) the kernel does the waiting inside each call, as
    C{cat} would: a move is then a few system calls, not one per piece the
    other end reads or writes.  L{stop} ends the move under way at once if
    it waits in C{poll} (its result is then L{MoverStopped}); a blocked
    call ends when the other end reads, writes or closes.
    """

    def __init__(self, reactor: Any, fd: int, name: str) -> None:
        """
        @param reactor: an L{IReactorThreads<twisted.internet.interfaces.IReactorThreads>}
            provider (C{callFromThread}).
        @param fd: the descriptor (non-blocking) to move bytes on.
        @param name: the thread's name.
        """
        self.reactor = reactor
        self.fd, _ = own_descriptor(fd)
        self.name = name
        self.stopped = False
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread: Optional[threading.Thread] = None

    def run(self, job: Job, done: Callable[[Any], None]) -> None:
        """
        Run C{job(wait)} in the thread, after the moves before it;
        C{wait(fd, events)} blocks until C{fd} is ready for the C{poll}
        C{events} (C{True}) or the mover is stopped (C{False}).  C{done}
        is then called in the reactor thread with what C{job} returned,
        or the exception it raised.
        """
        if self.stopped:
            done(MoverStopped())
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put((job, done))

    def stop(self) -> None:
        """
        End the move under way (if any) and the thread; moves still queued
        are answered with L{MoverStopped}.
        """
        if self.stopped:
            return
        self.stopped = True
        os.write(self._wake_w, b"x")
        if self._thread is None:
            self._close()
        else:
            self._jobs.put(None)

    def _close(self) -> None:
        for fd in (self.fd, self._wake_r, self._wake_w):
            os.close(fd)

    def _wait(self, fd: int, events: int) -> bool:
        poller = select.poll()
        poller.register(fd, events)
        poller.register(self._wake_r, select.POLLIN)
        return not any(which == self._wake_r for which, _ in poller.poll())

    def _work(self) -> None:
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                job, done = item
                result: Any
                if self.stopped:
                    result = MoverStopped()
                else:
                    try:
                        result = job(self._wait)
                    except BaseException as e:  # handed to the reactor, not lost here
                        result = e
                self.reactor.callFromThread(done, result)
        finally:
            self._close()


def read_exactly(fd: int, count: int, into: Optional[bytearray] = None) -> Job:
    """
    @param into: a buffer to read into, if big enough (its start is
        overwritten; the caller must not run another move into it before it
        is done with this one's result): no buffer is made per move.
    @return: a move that reads C{count} bytes from C{fd} and returns them
        (a C{memoryview} of C{into} or of a new buffer), or fewer if the
        stream ended or failed first (the reader then finds out for
        itself), or raises L{MoverStopped}.
    """

    def job(wait: Callable[[int, int], bool]) -> memoryview:
        buffer = into if into is not None and len(into) >= count else bytearray(count)
        got = 0
        view = memoryview(buffer)[:count]
        while got < count:
            try:
                n = os.readv(fd, [view[got:]])
            except BlockingIOError:  # (EINTR is retried by Python itself)
                if not wait(fd, select.POLLIN):
                    raise MoverStopped() from None
                continue
            except OSError:
                break
            if n == 0:
                break
            got += n
        return view[:got]

    return job


#: how L{write_pieces} ended a piece it could not write whole
FILE_ENDED = "file ended"
NO_SENDFILE = "no sendfile"


def write_pieces(fd: int, pieces: List[Any]) -> Job:
    """
    @param pieces: bytes-like pieces and L{FileSegment}s, written in order
        (segments with C{sendfile}, their files held open meanwhile).
    @return: a move that writes them to C{fd} and returns C{(done,
        stopped)}: how many pieces were written whole and, if it stopped
        at one before the end, why (L{FILE_ENDED}: a segment's file ended
        early, so many bytes into it as C{stopped[1]}; L{NO_SENDFILE}:
        C{fd} takes no C{sendfile}, nothing of the segment was sent), else
        C{None}.  It raises L{OSError} if the output failed, L{MoverStopped}
        if stopped.
    """
    work = [(piece, piece._file) if isinstance(piece, FileSegment) else (piece, None)
            for piece in pieces]

    def job(wait: Callable[[int, int], bool]) -> Tuple[int, Optional[Tuple[str, int]]]:
        for done, (piece, source) in enumerate(work):
            if source is None:
                with memoryview(cast(bytes, piece)) as view:
                    at = 0
                    while at < len(view):
                        try:
                            at += os.write(fd, view[at:])
                        except BlockingIOError:
                            if not wait(fd, select.POLLOUT):
                                raise MoverStopped() from None
                continue
            sent = 0
            while sent < piece.count:
                try:
                    n = os.sendfile(fd, source.fd, piece.offset + sent, piece.count - sent)
                except BlockingIOError:
                    if not wait(fd, select.POLLOUT):
                        raise MoverStopped() from None
                    continue
                except OSError as e:
                    if sent == 0 and e.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        return done, (NO_SENDFILE, 0)
                    raise
                if n == 0:
                    return done, (FILE_ENDED, sent)
                sent += n
        return len(work), None

    return job

