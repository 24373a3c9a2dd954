"""
Carrying a L{Link} over a byte stream: the desktop side runs a command (the
system's C{ssh}, C{docker exec -i}, any pipe) whose standard input and output
reach the far side's agent, and keeps doing so with backoff when it ends;
the far side speaks over its own standard input and output.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from collections import deque
from typing import Any, Callable, Deque, List, Optional

from twisted.internet import process
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ProcessDone
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.internet.protocol import ProcessProtocol, Protocol, connectionDone
from twisted.internet.stdio import StandardIO
from twisted.python.failure import Failure

from .._backoff import Backoff
from .agent import Agent, Link
from .bulk import NO_SENDFILE, Mover, read_exactly, write_pieces
from .protocol import DATA_CHUNK, GREETING, GREETING_PREFIX, FileSegment

#: bytes the far side may print before its greeting (a login banner)
MAX_PREAMBLE = 64 * 1024
#: pipe buffer and read size of the stream
STREAM_BUFFER = 1024 * 1024
#: bytes the writer buffers before pausing its producer, when a thread
#: writes its file segments
MOVE_BUFFER = 8 * STREAM_BUFFER


def enlarge_pipe(fd: int, size: int = STREAM_BUFFER) -> int:
    """
    Give the pipe C{fd} (if it is one) a buffer of C{size} bytes, or as
    close as the system allows (Linux: C{F_SETPIPE_SZ}, at most
    C{/proc/sys/fs/pipe-max-size} for an ordinary user): fewer, bigger
    reads and writes on both of its ends.

    @return: the pipe's buffer size now (0: not a pipe, or unknown).
    """
    setter = getattr(fcntl, "F_SETPIPE_SZ", None)
    try:
        if setter is None or not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
    except OSError:
        return 0
    while size >= 64 * 1024:
        try:
            return int(fcntl.fcntl(fd, setter, size))
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EINVAL):
                break
            size //= 2  # over this user's limit: ask for less
    try:
        return int(fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032)))
    except OSError:
        return 0


#: the rest of a data frame at least this big is read by the stream's mover
BULK_READ = 64 * 1024


class _MovedEnd:
    """
    What the stream's reader and writer share: a L{Mover} (if any), stopped
    when the connection is lost, and a descriptor closed then if owned.

    @ivar owns_fd: whether to close the descriptor once done with it.
    """

    owns_fd = False
    mover: Optional[Mover] = None
    fd: int

    def connectionLost(self, reason: Failure) -> None:
        if self.mover is not None:
            self.mover.stop()
        super().connectionLost(reason)  # type: ignore[misc]
        if self.owns_fd:
            self.owns_fd = False  # (once)
            os.close(self.fd)


class _BigReader(_MovedEnd, process.ProcessReader):
    """
    Twisted's standard input reader, reading up to L{STREAM_BUFFER} bytes at
    once (Twisted's own reads 8 KiB: a 512 KiB piece of a file would take
    64 trips through the event loop), and the rest of a big data frame in
    one move of its L{Mover} (when it has one) once the protocol says it
    waits for it (C{bulkWanted}).
    """

    _moving = False
    _want_reading = True
    _scratch: Optional[bytearray] = None  # (what the mover reads into, reused)
    _move_count = 0

    def doRead(self) -> Any:
        try:
            data = os.read(self.fd, STREAM_BUFFER)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EINTR):
                return None
            return CONNECTION_LOST
        if not data:
            return CONNECTION_DONE
        self.dataReceived(data)
        self._move_rest()
        return None

    def _move_rest(self) -> None:
        if self.mover is None or self.disconnected:
            return
        protocol = self.proc.protocol
        wanted = getattr(protocol, "bulkWanted", None)
        count = wanted() if wanted is not None else 0
        if count < BULK_READ:
            return
        self._want_reading = self._want_reading and not self.disconnecting
        super().stopReading()
        self._moving = True
        if self._scratch is None:
            self._scratch = bytearray(DATA_CHUNK)
        self._move_count = count
        self.mover.run(read_exactly(self.mover.fd, count, self._scratch), self._moved)

    def _moved(self, result: Any) -> None:
        self._moving = False
        if self.disconnected:
            return
        if isinstance(result, memoryview) and result:
            # All the frame needed (the protocol is done with it on return,
            # and only then may the next move reuse the buffer), or less (the
            # stream ends): then a copy, that the protocol may keep.
            self.dataReceived(result if len(result) == self._move_count else bytes(result))
        if self._want_reading and not self.disconnected:
            super().startReading()

    def startReading(self) -> None:
        self._want_reading = True
        if not self._moving:
            super().startReading()

    def stopReading(self) -> None:
        self._want_reading = False
        super().stopReading()


_IOV_MAX = 64
#: most pieces written in one move of the writer's mover
_MOVE_MAX = 1024


class _VectorWriter(_MovedEnd, process.ProcessWriter):
    """
    Twisted's standard output writer, writing its buffered pieces with
    C{writev} as they are instead of joining them first (each piece of a
    file would otherwise be copied once more, with its frame header), and
    L{FileSegment}s with C{sendfile} (from the file to the pipe in the
    kernel: the far side's files never pass through Python).
    """

    #: whether file segments may be given (Linux: C{sendfile} to a pipe)
    sendfile = sys.platform.startswith("linux")
    _moving = False
    _move_failed = False

    def writeFile(self, segment: FileSegment) -> None:
        """
        Write C{segment} after what is buffered.
        """
        if not self.connected or self._writeDisconnected:
            segment.close()
            return
        self.stopReading()  # (as ProcessWriter.write)
        self._tempDataBuffer.append(segment)  # type: ignore[arg-type]
        self._tempDataLen += segment.count
        self._maybePauseProducer()
        self.startWriting()

    def doWrite(self) -> Any:
        if self._moving:
            self.stopWriting()  # (a write meanwhile asked again: on once it is moved)
            return None
        if self._move_failed:
            return CONNECTION_LOST
        pieces: List[Any] = self._tempDataBuffer  # (memoryviews and segments too)
        if self.offset < len(self.dataBuffer):  # (only ever set by Twisted's own code)
            pieces.insert(0, memoryview(self.dataBuffer)[self.offset:])
            self._tempDataLen += len(pieces[0])
            self.dataBuffer, self.offset = b"", 0
        for _ in range(_IOV_MAX):
            if not pieces:
                break
            try:
                if isinstance(pieces[0], FileSegment):
                    if self.mover is not None and self.sendfile:
                        self._move(pieces)
                        return None
                    complete = self._send_segment(pieces)
                else:
                    complete = self._write_pieces(pieces)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    return None
                return CONNECTION_LOST
            if not complete:
                return None  # the pipe is full: on when it is writable
        if pieces:
            return None
        if self.enableReadHack:
            self.startReading()
        # Nothing left to send: what Twisted's doWrite does then.
        self.stopWriting()
        producer: Any = self.producer
        if producer is not None and (not self.streamingProducer or self.producerPaused):
            self.producerPaused = False
            producer.resumeProducing()
        elif self.disconnecting:
            return self._postLoseConnection()
        elif self._writeDisconnecting:
            self._writeDisconnected = True
            return self._closeWriteConnection()
        return None

    def _write_pieces(self, pieces: List[Any]) -> bool:
        batch: List[Any] = []
        size = 0
        for piece in pieces[:_IOV_MAX]:
            if isinstance(piece, FileSegment):
                break
            batch.append(piece)
            size += len(piece)
            if size >= self.SEND_LIMIT:
                break
        written = os.writev(self.fd, batch)
        self._tempDataLen -= written
        done = 0
        for piece in batch:
            if written < len(piece):
                break
            written -= len(piece)
            done += 1
        del pieces[:done]
        if written:
            pieces[0] = memoryview(pieces[0])[written:]
        return done == len(batch)

    def _send_segment(self, pieces: List[Any]) -> bool:
        segment: FileSegment = pieces[0]
        try:
            sent = os.sendfile(self.fd, segment.fd, segment.offset, segment.count)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            self._without_sendfile(pieces)
            return True
        if sent == 0:
            self._ended_early(pieces)
            return True
        segment.offset += sent
        segment.count -= sent
        self._tempDataLen -= sent
        if segment.count:
            return False
        segment.close()
        del pieces[0]
        return True

    def _without_sendfile(self, pieces: List[Any]) -> None:
        # This output takes no sendfile after all: the segment first in
        # pieces is read instead (and so are all from now on).
        segment: FileSegment = pieces[0]
        self.sendfile = False
        pieces[0] = os.pread(segment.fd, segment.count, segment.offset)
        pieces[0] += bytes(segment.count - len(pieces[0]))
        segment.close()

    def _ended_early(self, pieces: List[Any]) -> None:
        # The file of the segment first in pieces ended before it: zeros
        # for the rest keep the frame whole; the reader is told the stream
        # failed.
        segment: FileSegment = pieces[0]
        pieces[0] = bytes(segment.count)
        segment.close()
        segment.short()

    def _move(self, pieces: List[Any]) -> None:
        # Everything buffered (file segments and the frame headers between
        # them), in one move: the writer's buffer holds the pump's segments
        # as references, not bytes, so this is many megabytes per round.
        assert self.mover is not None
        self._moving = True
        self.stopWriting()
        self.mover.run(write_pieces(self.mover.fd, pieces[:_MOVE_MAX]), self._moved)

    def _moved(self, result: Any) -> None:
        self._moving = False
        if self.disconnected:
            return
        if isinstance(result, BaseException):
            self._move_failed = True
            self.startWriting()  # (and doWrite reports the connection lost)
            return
        pieces: List[Any] = self._tempDataBuffer
        done, stopped = result
        for piece in pieces[:done]:
            self._tempDataLen -= len(piece)
            if isinstance(piece, FileSegment):
                piece.close()
        del pieces[:done]
        if stopped is not None:
            why, sent = stopped
            if why == NO_SENDFILE:
                self._without_sendfile(pieces)
            else:
                pieces[0].offset += sent
                pieces[0].count -= sent
                self._tempDataLen -= sent
                self._ended_early(pieces)
        self.startWriting()  # the rest, or what is done once all is written

    def connectionLost(self, reason: Failure) -> None:
        for piece in self._tempDataBuffer:
            if isinstance(piece, FileSegment):
                piece.close()
        super().connectionLost(reason)


class StreamStdIO(StandardIO):
    """
    L{StandardIO} for a byte stream that carries files (the far side's
    standard input and output; on the desktop, the pipes of the command
    that reaches it): big reads, big writes, pipes with big buffers, and,
    with a reactor that has threads, whole file segments and the rest of
    big data frames moved by a thread each way (L{samptwist.remote.bulk}).
    """

    def __init__(self, proto: Any, stdin: int = 0, stdout: int = 1,
                 reactor: Any = None, *, owns_fds: bool = False,
                 movers: Optional[bool] = None) -> None:
        """
        @param owns_fds: close C{stdin} and C{stdout} once done with them
            (not for the process's own standard input and output).
        @param movers: whether to move big pieces in threads (default: if
            C{reactor} provides L{IReactorThreads}).
        """
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default
        if movers is None:
            movers = IReactorThreads.providedBy(reactor)
        self.protocol = proto
        for fd in (stdin, stdout):
            enlarge_pipe(fd)
        self._writer = _VectorWriter(reactor, self, "write", stdout)
        self._writer.SEND_LIMIT = STREAM_BUFFER
        self._writer.bufferSize = STREAM_BUFFER  # (its producer pauses beyond this)
        self._writer.owns_fd = owns_fds
        self._reader = _BigReader(reactor, self, "read", stdin)
        self._reader.owns_fd = owns_fds
        if movers:
            self._writer.mover = Mover(reactor, stdout, "samptwist-link-write")
            self._reader.mover = Mover(reactor, stdin, "samptwist-link-read")
            # File segments are references, not bytes: let the pump run
            # further ahead, for fewer and bigger moves.
            self._writer.bufferSize = MOVE_BUFFER
        self._reader.startReading()
        self.protocol.makeConnection(self)

    def canWriteFiles(self) -> bool:
        """
        @return: whether L{writeFile} may be used.
        """
        return self._writer is not None and bool(self._writer.sendfile)

    def movesFiles(self) -> bool:
        """
        @return: whether file segments are written by a thread (so a file
            need not be read ahead to be in memory when it is written).
        """
        return self.canWriteFiles() and self._writer is not None and \
            self._writer.mover is not None

    def writeFile(self, segment: FileSegment) -> None:
        """
        Write C{segment} of a file after what is buffered (with C{sendfile}).
        """
        if self._writer is not None:
            self._writer.writeFile(segment)
        else:
            segment.close()

    def abortConnection(self) -> None:
        """
        Close both ways now, whatever is still to be written.
        """
        if not self.disconnected:
            self.connectionLost(Failure(ConnectionAborted()))  # type: ignore[attr-defined]


class _StreamEnd(Protocol):
    """
    This side's ends of the pipes that are the command's standard input
    and output (a L{StreamStdIO}).
    """

    def __init__(self, owner: ProcessStream) -> None:
        self.owner = owner

    def dataReceived(self, data: bytes) -> None:
        self.owner._stdout(data)

    def bulkWanted(self) -> int:
        """
        @return: how many bytes the link surely reads next (the rest of a
            data frame), once it speaks.
        """
        return self.owner.link.bulkWanted() if self.owner.greeted else 0

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.owner._stream_lost(reason)


class ProcessStream(ProcessProtocol):
    """
    Runs the command that reaches the far side, its standard input and
    output two pipes (a L{StreamStdIO}: big pipes, big reads, files and
    big frames moved by threads); once the far side's greeting arrives,
    that stream is the link.

    @ivar ended: fires with this object once the command ended and the
        stream is closed.
    @ivar greeted: whether the far side's agent answered.
    @ivar stderr_tail: the last lines the command wrote to standard error.
    """

    def __init__(self, link: Link, reactor: Any, description: str,
                 on_stderr: Callable[[str], None]) -> None:
        self.link = link
        self.reactor = reactor
        self.description = description
        self.on_stderr = on_stderr
        self.greeted = False
        self.preamble = b""
        self.stderr_tail: Deque[str] = deque(maxlen=20)
        self._stderr = b""
        self.reason: Optional[Failure] = None
        self.stream: Optional[_StreamEnd] = None
        self._stream_open = False
        self.ended: Deferred = Deferred()

    def start(self, argv: List[str], env: dict) -> None:
        """
        Run C{argv}.
        """
        stdin_r, stdin_w = os.pipe()  # (not inherited: the child gets its copies)
        stdout_r, stdout_w = os.pipe()
        try:
            self.reactor.spawnProcess(self, argv[0], argv, env=env,
                                      childFDs={0: stdin_r, 1: stdout_w, 2: "r"})
        except BaseException:
            os.close(stdout_r)
            os.close(stdin_w)
            raise
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        self.stream = _StreamEnd(self)
        self._stream_open = True
        StreamStdIO(self.stream, stdin=stdout_r, stdout=stdin_w, reactor=self.reactor,
                    owns_fds=True)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 2:
            self._stderr += data
            *lines, self._stderr = self._stderr.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self.stderr_tail.append(line)
                    self.on_stderr(line)

    def _stdout(self, data: bytes) -> None:
        if self.greeted:
            self.link.dataReceived(data)
            return
        self.preamble += data
        at = self.preamble.find(GREETING)
        if at < 0:
            other = self.preamble.find(GREETING_PREFIX)
            end = self.preamble.find(b"\n", other)
            if other >= 0 and end >= 0:
                theirs = self.preamble[other + len(GREETING_PREFIX):end].decode("ascii",
                                                                                "replace")
                ours = GREETING[len(GREETING_PREFIX):].decode().strip()
                self.stderr_tail.append(
                    f"the far side's samptwist speaks link protocol {theirs[:20]}, this one "
                    f"{ours}: install the same samptwist version on both sides")
                self.signal("KILL")
                self.preamble = b""
                return
            if len(self.preamble) > MAX_PREAMBLE:
                self.stderr_tail.append("the far side printed too much without starting "
                                        "the samptwist agent")
                self.signal("KILL")
            return
        rest = self.preamble[at + len(GREETING):]
        self.preamble = self.preamble[:at]
        self.greeted = True
        assert self.stream is not None
        self.link.makeConnection(self.stream.transport)
        if rest:
            self.link.dataReceived(rest)

    def _stream_lost(self, reason: Failure) -> None:
        self._stream_open = False
        if self.greeted:
            self.link.connectionLost(reason)
        if self.reason is None:
            # ssh ends once the far side sees the end of its input; insist if not.
            self.reactor.callLater(3.0, self.signal, "TERM")
        self._check_ended()

    def signal(self, name: str) -> None:
        """
        Send signal C{name} to the command, if it still runs.
        """
        if self.reason is None and self.transport is not None:
            try:
                self.transport.signalProcess(name)
            except Exception:
                pass  # already gone

    def processEnded(self, reason: Failure) -> None:
        if self._stderr.strip():
            self.stderr_tail.append(self._stderr.decode("utf-8", "replace").rstrip())
        self.reason = reason
        stream = self.stream
        if self._stream_open and stream is not None and stream.transport is not None:
            # Whatever else holds the other end, the link ends with the command.
            stream.transport.abortConnection()  # type: ignore[attr-defined]
        self._check_ended()

    def _check_ended(self) -> None:
        if self.reason is not None and not self._stream_open and not self.ended.called:
            self.ended.callback(self)

    def exit_text(self) -> str:
        """
        @return: how the command ended, in words.
        """
        reason = self.reason
        if reason is None:
            return "still running"
        if reason.check(ProcessDone):
            return "it exited"
        code = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        if signal:
            return f"it was killed by signal {signal}"
        return f"it exited with status {code}"


class Connector:
    """
    Keeps a link to the far side up: runs C{argv}, and when it ends waits
    (L{Backoff}: C{first_delay}, doubling up to C{max_delay}; back to
    C{first_delay} after a link that lasted 30 s) and runs it again.
    """

    def __init__(self, reactor: Any, agent: Agent, argv: List[str], *,
                 description: str, say: Callable[[str], None],
                 complain: Callable[[str], None], env: Optional[dict] = None,
                 first_delay: float = 1.0, max_delay: float = 30.0,
                 retry: bool = True) -> None:
        self.reactor = reactor
        self.agent = agent
        self.argv = argv
        self.description = description
        self.say = say
        self.complain = complain
        self.env = dict(os.environ if env is None else env)
        # This side's hub is not the far side's: never hand its lockfile on.
        self.env.pop("SAMP_HUB", None)
        self.backoff = Backoff(reactor, first=first_delay, maximum=max(first_delay, max_delay),
                               reset_after=30.0)
        self.retry = retry
        self.attempts = 0
        self.current: Optional[ProcessStream] = None
        self._stopping = False
        self._wait: Optional[Deferred] = None

    def stop(self) -> None:
        """
        End the current command (by its PID) and do not start another.
        """
        self._stopping = True
        if self._wait is not None and not self._wait.called:
            self._wait.cancel()
        current = self.current
        if current is not None and current.reason is None:
            if current.greeted and current.link.transport is not None:
                current.link.transport.loseConnection()
            else:
                current.signal("TERM")

    def start_once(self) -> ProcessStream:
        """
        Run the command once.

        @return: its L{ProcessStream} (C{ended} fires when it ends).
        """
        self.attempts += 1
        link = Link(self.agent)
        self.agent.attach(link)
        stream = ProcessStream(link, self.reactor, self.description,
                               lambda line: self.complain(f"[{self.description}] {line}"))
        stream.start(self.argv, self.env)
        self.current = stream
        return stream

    async def run(self) -> int:
        """
        Keep the link up until L{stop}.

        @return: the exit status: 0 after L{stop}, 1 if the far side could
            not be started at the first attempt (or at all, without retry).
        """
        ever_linked = False
        while not self._stopping:
            self.backoff.started()
            stream = self.start_once()
            await stream.ended
            ever_linked = ever_linked or stream.greeted
            if self._stopping:
                return 0
            if not stream.greeted:
                tail = "; ".join(list(stream.stderr_tail)[-3:]) or \
                    stream.preamble.decode("utf-8", "replace").strip()[-300:]
                text = (f"could not start the samptwist agent on {self.description} "
                        f"({stream.exit_text()}){': ' + tail if tail else ''}")
                if not ever_linked or not self.retry:
                    self.complain(text)
                    return 1
                self.complain(text)
            else:
                why = stream.link.cut_reason or stream.exit_text()
                if not self.retry:
                    self.complain(f"the link to {self.description} ended ({why})")
                    return 1
            delay = self.backoff.next_delay()  # back to the first after a long link
            self.say(f"reconnecting to {self.description} in {delay:g}s")
            self._wait = self.backoff.wait(delay)
            try:
                await self._wait
            except Exception:
                return 0
        return 0
