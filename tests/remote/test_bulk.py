"""
The link's bulk moves (samptwist.remote.bulk): a thread per direction that
moves whole file segments and the rest of big data frames, on real pipes
and sockets with the real reactor; and the stream transport using them
(StreamStdIO with movers), end to end through a pair of pipes.
"""

from __future__ import annotations

import os
import socket
from typing import Any, List, Tuple

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.protocols import amp

from samptwist.remote import protocol as P
from samptwist.remote.bulk import (
    FILE_ENDED,
    NO_SENDFILE,
    Mover,
    MoverStopped,
    own_descriptor,
    read_exactly,
    write_pieces,
)
from samptwist.remote.link import StreamStdIO
from tests.client.hubs import wait_until


def moved(mover: Mover, job: Any) -> Deferred:
    d: Deferred = Deferred()
    mover.run(job, d.callback)
    return d


def test_a_pipe_gets_a_blocking_descriptor_of_its_own(pipes):
    r, w = pipes()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    for end in (r, w):
        twin, blocking = own_descriptor(end)
        try:
            assert blocking and os.get_blocking(twin)
            assert os.get_blocking(end) is False  # the reactor's stays as it was
            assert os.fstat(twin).st_ino == os.fstat(end).st_ino
        finally:
            os.close(twin)
    twin, _ = own_descriptor(w)
    os.write(twin, b"same pipe")
    os.close(twin)
    assert os.read(r, 100) == b"same pipe"


def test_a_socket_gets_a_duplicate():
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        twin, blocking = own_descriptor(a.fileno())
        assert not blocking and not os.get_blocking(twin)
        os.close(twin)
    finally:
        a.close()
        b.close()


@pytest_twisted.ensureDeferred
async def test_read_exactly_collects_the_pieces_as_they_come(pipes):
    r, w = pipes()
    os.set_blocking(r, False)
    mover = Mover(reactor, r, "test-read")
    data = os.urandom(300_000)
    pieces = [data[i:i + 40_000] for i in range(0, len(data), 40_000)]
    for n, piece in enumerate(pieces):
        reactor.callLater(0.005 * n, os.write, w, piece)
    into = bytearray(400_000)
    got = await moved(mover, read_exactly(mover.fd, len(data) - 1000, into))
    assert isinstance(got, memoryview) and got.obj is into  # (no buffer made)
    assert bytes(got) == data[:-1000]
    assert os.read(r, 10_000) == data[-1000:]  # not one byte more was taken
    mover.stop()


@pytest_twisted.ensureDeferred
async def test_read_exactly_gives_fewer_at_the_end(pipes):
    r, w = pipes()
    mover = Mover(reactor, r, "test-read")
    os.write(w, b"only this")
    os.close(w)
    got = await moved(mover, read_exactly(mover.fd, 1000))
    assert bytes(got) == b"only this"
    mover.stop()


@pytest_twisted.ensureDeferred
async def test_stop_ends_a_move_that_waits():
    a, b = socket.socketpair()  # (a duplicate, not blocking: the move waits in poll)
    a.setblocking(False)
    try:
        mover = Mover(reactor, a.fileno(), "test-read")
        d = moved(mover, read_exactly(mover.fd, 10))
        reactor.callLater(0.05, mover.stop)
        assert isinstance(await d, MoverStopped)
        later = await moved(mover, read_exactly(mover.fd, 10))
        assert isinstance(later, MoverStopped)  # nothing runs once stopped
    finally:
        a.close()
        b.close()


@pytest_twisted.ensureDeferred
async def test_write_pieces_in_order_with_segments(pipes, tmp_path):
    r, w = pipes()
    os.set_blocking(w, False)
    content = os.urandom(1_500_000)
    path = tmp_path / "big.fits"
    path.write_bytes(content)
    with open(path, "rb") as f:
        first = P.FileSegment(f.fileno(), 0, 700_000)
        second = P.FileSegment(f.fileno(), 700_000, 800_000)
    expected = b"head" + content[:700_000] + b"middle" + content[700_000:] + b"tail"
    got: List[bytes] = []
    drained: Deferred = Deferred()

    def drain() -> None:  # (slower than the writer: the move waits for room)
        try:
            while sum(map(len, got)) < len(expected):
                got.append(os.read(r, 64 * 1024))
            drained.callback(b"".join(got))
        except BlockingIOError:
            reactor.callLater(0.002, drain)

    os.set_blocking(r, False)
    drain()
    mover = Mover(reactor, w, "test-write")
    pieces = [b"head", first, memoryview(b"middle"), second, b"tail"]
    assert await moved(mover, write_pieces(mover.fd, pieces)) == (5, None)
    assert await drained == expected
    mover.stop()


@pytest_twisted.ensureDeferred
async def test_write_pieces_stops_where_a_file_ended(pipes, tmp_path):
    r, w = pipes()
    path = tmp_path / "short.vot"
    path.write_bytes(b"v" * 1000)
    with open(path, "rb") as f:
        segment = P.FileSegment(f.fileno(), 0, 5000)
    mover = Mover(reactor, w, "test-write")
    result = await moved(mover, write_pieces(mover.fd, [b"x", segment, b"after"]))
    assert result == (1, (FILE_ENDED, 1000))
    assert os.read(r, 10_000) == b"x" + b"v" * 1000  # "after" waits for the writer
    mover.stop()


@pytest_twisted.ensureDeferred
async def test_write_pieces_says_when_there_is_no_sendfile(pipes, tmp_path, no_sendfile):
    r, w = pipes()
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n")
    with open(path, "rb") as f:
        segment = P.FileSegment(f.fileno(), 0, 4)
    mover = Mover(reactor, w, "test-write")
    assert await moved(mover, write_pieces(mover.fd, [segment])) == (0, (NO_SENDFILE, 0))
    mover.stop()


# -- the stream transport with movers, end to end -------------------------------


class Frames(P.FramedAMP):
    """Records what arrives, and fires C{done} once C{until} frames have."""

    def __init__(self, until: int) -> None:
        super().__init__()
        self.got: List[Tuple[int, bytes]] = []
        self.until = until
        self.done: Deferred = Deferred()

    def dataFrameReceived(self, stream: int, data: bytes) -> None:
        self.got.append((stream, data))
        if len(self.got) == self.until and not self.done.called:
            self.done.callback(self.got)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(self.got)


@pytest.fixture
def pair(pipes: Any) -> Any:
    """
    @return: a function making two stream transports (with movers) joined
        by two pipes, and their protocols, each recording until C{until}
        frames came; both are aborted after the test, however it ends.
    """
    made: List[StreamStdIO] = []

    def make(until: int) -> Tuple[StreamStdIO, StreamStdIO, Frames, Frames]:
        a_r, b_w = pipes()  # b writes, a reads
        b_r, a_w = pipes()
        near, far = Frames(until), Frames(until)
        a = StreamStdIO(near, stdin=a_r, stdout=a_w, reactor=reactor)
        b = StreamStdIO(far, stdin=b_r, stdout=b_w, reactor=reactor)
        made.extend((a, b))
        return a, b, near, far

    yield make
    for io in made:
        io.abortConnection()


@pytest_twisted.ensureDeferred
async def test_files_and_frames_cross_through_movers(pair, tmp_path):
    a, b, near, far = pair(until=12)
    assert b.movesFiles() and b._reader.mover is not None
    content = os.urandom(5 * P.DATA_CHUNK + 777)
    path = tmp_path / "image.fits"
    path.write_bytes(content)
    reads: List[int] = []
    real_run = a._reader.mover.run

    def counted(job: Any, done: Any) -> None:
        reads.append(1)
        real_run(job, done)

    a._reader.mover.run = counted  # type: ignore[method-assign]
    expected: List[Tuple[int, bytes]] = []
    with open(path, "rb") as f:
        for n, at in enumerate(range(0, len(content), P.DATA_CHUNK)):
            count = min(P.DATA_CHUNK, len(content) - at)
            if n == 0:
                # The first frame's start alone, then the rest once the
                # reader waits for it: its mover reads the rest.
                wire = P.frame(P.DATA_FRAME, (7).to_bytes(4, "big") + content[:count])
                b.write(wire[:100_000])
                await wait_until(lambda: a._reader._moving, 10, "the rest asked of the mover")
                b.write(wire[100_000:])
            else:
                far.sendFileData(7, P.FileSegment(f.fileno(), at, count))
            expected.append((7, content[at:at + count]))
            small = os.urandom(n * 100)
            far.sendData(8, small)  # bytes between the segments, in order
            expected.append((8, small))
    got = await near.done
    assert got == expected
    assert reads  # the rest of big frames was read by the mover


@pytest_twisted.ensureDeferred
async def test_amp_boxes_still_cross_between_big_frames(pair):
    a, b, near, far = pair(until=2)
    boxes: List[Any] = []
    near.ampBoxReceived = boxes.append  # type: ignore[method-assign]
    big = os.urandom(P.DATA_CHUNK)
    far.sendData(1, big)
    far.sendBox(amp.AmpBox(_command=b"Ping", _ask=b"1"))
    far.sendData(2, b"after")
    got = await near.done
    assert got == [(1, big), (2, b"after")]
    assert boxes and boxes[0][b"_command"] == b"Ping"


def test_abort_closes_owned_descriptors_and_stops_the_movers():
    r, w = os.pipe()  # (not the fixture's: the transport closes two of them)
    r2, w2 = os.pipe()
    io = StreamStdIO(Frames(1), stdin=r, stdout=w2, reactor=reactor, owns_fds=True)
    movers = [io._reader.mover, io._writer.mover]
    try:
        io.abortConnection()
        for fd in (r, w2):
            with pytest.raises(OSError):
                os.fstat(fd)
        assert all(m is not None and m.stopped for m in movers)
    finally:
        os.close(w)
        os.close(r2)


def test_reading_paused_during_a_move_stays_paused(pipes):
    r, w = pipes()
    r2, w2 = pipes()
    io = StreamStdIO(Frames(1), stdin=r, stdout=w2, reactor=reactor)
    reader = io._reader
    reader._moving = True  # as while the mover reads the rest of a frame
    io.pauseProducing()
    io.resumeProducing()  # (not now: the mover is reading)
    assert reader not in reactor.getReaders()
    reader._moved(memoryview(b""))
    assert reader in reactor.getReaders()  # reading again, as asked last
    io.pauseProducing()
    reader._moving = True
    reader._moved(memoryview(b""))
    assert reader not in reactor.getReaders()
    io.abortConnection()


def test_moved_files_are_not_read_ahead(tmp_path):
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports, SharePolicy, Streams
    from samptwist.testing import result_of

    path = tmp_path / "t.fits"
    path.write_bytes(os.urandom(2 * P.DATA_CHUNK + 5))
    exports = Exports(Clock(), policy=SharePolicy(shared=[str(tmp_path)]))
    segments: List[P.FileSegment] = []
    streams = Streams(Clock(), exports, send=lambda s, d: None, fail=lambda s, why: None,
                      send_file=lambda s, seg: seg is None or segments.append(seg) or True,
                      files_moved=lambda: True)
    stream, source = result_of(Deferred.fromCoroutine(streams.start(exports.export(
        "file", str(path)))))

    def read(*args: Any) -> Any:
        raise AssertionError("a moved file is not read ahead")

    source._segment = read  # type: ignore[method-assign]
    source._read = read  # type: ignore[method-assign]
    streams.want(stream, 10 * P.DATA_CHUNK)
    assert [(s.offset, s.count) for s in segments] == [
        (0, P.DATA_CHUNK), (P.DATA_CHUNK, P.DATA_CHUNK), (2 * P.DATA_CHUNK, 5)]
    for segment in segments:
        segment.close()


def _served(tmp_path: Any, mode: str, change: Any) -> Tuple[bytes, List[str], bytes]:
    """A file served by Streams in C{mode} ("read": bytes; "warm": segments
    read ahead; "moved": segments not read), C{change}d once it is open.
    @return: what was sent, the failures, the file's content when opened."""
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports, SharePolicy, Streams
    from samptwist.testing import result_of

    content = os.urandom(2 * P.DATA_CHUNK + 5)
    path = tmp_path / "changing.vot"
    path.write_bytes(content)
    exports = Exports(Clock(), policy=SharePolicy(shared=[str(tmp_path)]))
    sent: List[bytes] = []
    failed: List[str] = []

    def send_file(stream: int, segment: Any) -> bool:
        if segment is not None:
            data = os.pread(segment.fd, segment.count, segment.offset)
            if len(data) < segment.count:
                segment.short()  # (as the writer does)
            sent.append(data)
            segment.close()
        return True

    streams = Streams(Clock(), exports, send=lambda s, d: sent.append(d),
                      fail=lambda s, why: failed.append(why),
                      send_file=None if mode == "read" else send_file,
                      files_moved=lambda: mode == "moved")
    stream, _ = result_of(Deferred.fromCoroutine(streams.start(exports.export(
        "file", str(path)))))
    change(path)
    streams.want(stream, 10 * P.DATA_CHUNK)
    return b"".join(sent), failed, content


@pytest.mark.parametrize("mode", ["read", "warm", "moved"])
def test_a_file_that_grows_is_sent_at_its_size_when_opened(tmp_path, mode):
    def grow(path: Any) -> None:
        with open(path, "ab") as f:
            f.write(b"grown since it was opened")

    sent, failed, content = _served(tmp_path, mode, grow)
    assert sent == content and not failed  # (its Content-Length, exactly)


@pytest.mark.parametrize("mode", ["read", "warm", "moved"])
def test_a_file_that_shrinks_fails_its_stream(tmp_path, mode):
    def shrink(path: Any) -> None:
        os.truncate(path, P.DATA_CHUNK + 10)

    sent, failed, content = _served(tmp_path, mode, shrink)
    assert failed == ["the file shrank while it was sent"]
    assert content.startswith(sent[:P.DATA_CHUNK + 10])
