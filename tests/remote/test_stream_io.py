"""
The byte-stream plumbing of ``samptwist remote`` that makes files cross fast:
frames read back whatever way the stream splits them (big data frames
collected piece by piece), and the far side's standard input and output
(big reads, enlarged pipes, vectored writes that never join pieces), on
real pipes driven by hand through a MemoryReactor.
"""

from __future__ import annotations

import os
import random
import socket
from typing import Any, Iterator, List, Tuple

import pytest
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor
from twisted.protocols import amp
from twisted.python.failure import Failure

from samptwist.remote import protocol as P
from samptwist.remote.link import STREAM_BUFFER, StreamStdIO, enlarge_pipe


class Recorder(P.FramedAMP):
    """Records data frames and AMP boxes in the order they are read."""

    def __init__(self) -> None:
        super().__init__()
        self.got: List[Tuple[str, Any]] = []
        self.errors: List[str] = []

    def dataFrameReceived(self, stream: int, data: bytes) -> None:
        assert type(data) is bytes
        self.got.append(("data", (stream, data)))

    def ampBoxReceived(self, box: amp.AmpBox) -> None:
        self.got.append(("box", dict(box)))

    def frameError(self, text: str) -> None:
        self.errors.append(text)


def stream_of_frames(seed: int) -> Tuple[bytes, List[Tuple[str, Any]]]:
    rnd = random.Random(seed)
    wire, expected = b"", []
    for n in range(30):
        if rnd.random() < 0.3:
            box = amp.AmpBox(_command=b"Ping", _ask=str(n).encode())
            wire += P.frame(P.AMP_FRAME, box.serialize())
            expected.append(("box", dict(box)))
        else:
            size = rnd.choice([0, 1, 1000, 64 * 1024 - 1, 64 * 1024, 300_000, P.DATA_CHUNK])
            payload = rnd.randbytes(size)
            wire += P.frame(P.DATA_FRAME, n.to_bytes(4, "big") + payload)
            expected.append(("data", (n, payload)))
    return wire, expected


def splits(wire: bytes, rnd: random.Random, most: int) -> Iterator[bytes]:
    at = 0
    while at < len(wire):
        step = rnd.randint(1, most)
        yield wire[at:at + step]
        at += step


@pytest.mark.parametrize("most", [1, 7, 4096, 100_000, 1 << 20, 8 << 20])
def test_frames_read_back_however_the_stream_splits_them(most):
    wire, expected = stream_of_frames(most)
    proto = Recorder()
    rnd = random.Random(most)
    pieces = [wire] if most >= len(wire) else splits(wire, rnd, most)
    if most == 1:  # byte by byte takes long for the big frames: only the first frames
        wire = wire[:200_000]
        pieces = splits(wire, rnd, 1)
        expected = None  # checked against an unsplit read below
    for piece in pieces:
        proto.dataReceived(piece)
    if expected is None:
        whole = Recorder()
        whole.dataReceived(wire)
        expected = whole.got
    assert proto.got == expected
    assert not proto.errors
    if most > 1:
        assert not proto._need and not proto._inbox  # nothing half-read is left


def test_big_data_frames_are_collected_without_the_inbox():
    payload = os.urandom(P.DATA_CHUNK)
    wire = P.frame(P.DATA_FRAME, (9).to_bytes(4, "big") + payload)
    proto = Recorder()
    proto.dataReceived(wire[:100_000])
    assert proto._need == len(wire) - 100_000 and not proto._inbox
    proto.dataReceived(wire[100_000:300_000])
    assert not proto._inbox and proto.got == []
    proto.dataReceived(wire[300_000:] + P.frame(P.AMP_FRAME, b"\x00")[:3])
    assert proto.got == [("data", (9, payload))]
    assert bytes(proto._inbox) == P.frame(P.AMP_FRAME, b"\x00")[:3]  # half a header: kept


def test_a_bad_frame_after_a_collected_one_is_still_refused():
    payload = os.urandom(200_000)
    wire = P.frame(P.DATA_FRAME, (1).to_bytes(4, "big") + payload)
    proto = Recorder()
    proto.dataReceived(wire[:70_000])
    proto.dataReceived(wire[70_000:] + b"Z\x00\x00\x00\x01x")
    assert proto.got == [("data", (1, payload))]
    assert proto.errors and "unknown frame kind" in proto.errors[0]


def test_collected_data_is_dropped_once_framing_stops():
    class Stopping(Recorder):
        stopped = False

        def framingStopped(self) -> bool:
            return self.stopped

    payload = os.urandom(200_000)
    wire = P.frame(P.DATA_FRAME, (1).to_bytes(4, "big") + payload)
    proto = Stopping()
    proto.dataReceived(wire[:70_000])
    proto.stopped = True
    proto.dataReceived(wire[70_000:])
    assert proto.got == []


# -- the far side's standard input and output ----------------------------------


class Sink(Protocol):
    def __init__(self) -> None:
        self.data: List[bytes] = []
        self.lost: List[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.append(reason)


def test_enlarge_pipe(pipes):
    r, w = pipes()
    assert enlarge_pipe(w) >= 64 * 1024
    with open("/proc/sys/fs/pipe-max-size") as f:
        allowed = int(f.read())
    assert enlarge_pipe(r, STREAM_BUFFER) == min(STREAM_BUFFER, max(allowed, 64 * 1024)) \
        or os.geteuid() == 0 and enlarge_pipe(r) == STREAM_BUFFER
    a, b = socket.socketpair()
    try:
        assert enlarge_pipe(a.fileno()) == 0  # not a pipe: left alone
    finally:
        a.close()
        b.close()


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            piece = os.read(fd, 1 << 20)
        except BlockingIOError:
            return out
        if not piece:
            return out
        out += piece


def test_stdin_is_read_in_big_pieces(pipes):
    in_r, in_w = pipes()
    out_r, out_w = pipes()
    sink = Sink()
    io = StreamStdIO(sink, stdin=in_r, stdout=out_w, reactor=MemoryReactor())
    data = os.urandom(700_000)
    os.write(in_w, data)  # fits: the pipe was enlarged
    io._reader.doRead()
    assert sink.data == [data]  # one read, not 8 KiB ones
    os.close(in_w)
    assert io._reader.doRead() is not None  # the end: the connection is done


def test_stdout_writes_pieces_in_order_without_joining(pipes, monkeypatch):
    in_r, in_w = pipes()
    out_r, out_w = pipes()
    reactor = MemoryReactor()
    io = StreamStdIO(Sink(), stdin=in_r, stdout=out_w, reactor=reactor)
    writer = io._writer
    calls: List[List[Any]] = []
    real = os.writev

    def writev(fd: int, buffers: List[Any]) -> int:
        calls.append(list(buffers))
        return real(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    frames = [os.urandom(n) for n in (5, 4, 400_000, 9, 900_000, 3, 700_000)]
    io.writeSequence(frames[:3])
    for piece in frames[3:]:
        io.write(piece)
    assert writer in reactor.getWriters()
    got = b""
    for _ in range(50):
        writer.doWrite()
        got += read_all(out_r)
        if writer not in reactor.getWriters():
            break
    assert got == b"".join(frames)
    assert calls and all(len(c) >= 1 for c in calls)
    assert any(len(c) > 1 for c in calls)  # several pieces in one writev
    assert writer._tempDataLen == 0 and not writer._tempDataBuffer


def test_stdout_partial_writes_resume_where_they_stopped(pipes, monkeypatch):
    in_r, in_w = pipes()
    out_r, out_w = pipes()
    io = StreamStdIO(Sink(), stdin=in_r, stdout=out_w, reactor=MemoryReactor())
    writer = io._writer
    real = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, bufs: real(fd, [bytes(bufs[0])[:1000]]))
    data = [os.urandom(2500), os.urandom(10)]
    io.writeSequence(data)
    while writer._tempDataLen:
        writer.doWrite()
    assert read_all(out_r) == b"".join(data)


def test_stdout_closes_after_the_last_piece(pipes):
    in_r, in_w = pipes()
    out_r, out_w = pipes()
    sink = Sink()
    reactor = MemoryReactor()
    io = StreamStdIO(sink, stdin=in_r, stdout=out_w, reactor=reactor)
    io.write(b"last words")
    io.loseConnection()
    result = io._writer.doWrite()
    assert read_all(out_r) == b"last words"
    assert result is not None  # the writer is done: Twisted then closes it


# -- files written by the kernel (sendfile) --------------------------------------


@pytest.fixture
def stdio(pipes):
    in_r, in_w = pipes()
    out_r, out_w = pipes()
    reactor = MemoryReactor()
    io = StreamStdIO(Sink(), stdin=in_r, stdout=out_w, reactor=reactor)
    return io, out_r, reactor


def drain(io: StreamStdIO, out_r: int, reactor: MemoryReactor) -> bytes:
    got = b""
    for _ in range(200):
        if io._writer not in reactor.getWriters():
            break
        io._writer.doWrite()
        got += read_all(out_r)
    return got + read_all(out_r)


def test_file_segments_go_between_the_other_pieces_in_order(stdio, tmp_path):
    io, out_r, reactor = stdio
    content = os.urandom(1_500_000)
    path = tmp_path / "table.vot"
    path.write_bytes(content)
    with open(path, "rb") as f:
        first = P.FileSegment(f.fileno(), 10, 600_000)
        second = P.FileSegment(f.fileno(), 1_000_000, 500_000)
    # (the file is closed now: each segment holds its own descriptor)
    assert io.canWriteFiles()
    io.write(b"head")
    io.writeFile(first)
    io.writeSequence([b"mid", b"dle"])
    io.writeFile(second)
    io.write(b"tail")
    assert io._writer._tempDataLen == 4 + 600_000 + 6 + 500_000 + 4
    got = drain(io, out_r, reactor)
    assert got == b"head" + content[10:600_010] + b"middle" + content[1_000_000:] + b"tail"
    assert first.fd == -1 and second.fd == -1  # closed once written
    assert io._writer._tempDataLen == 0


def test_a_file_that_shrank_is_padded_and_reported(stdio, tmp_path):
    io, out_r, reactor = stdio
    path = tmp_path / "shrinking.fits"
    path.write_bytes(b"x" * 1000)
    short: List[bool] = []
    with open(path, "rb") as f:
        segment = P.FileSegment(f.fileno(), 0, 3000, lambda: short.append(True))
    io.writeFile(segment)
    io.write(b"after")
    got = drain(io, out_r, reactor)
    assert got == b"x" * 1000 + bytes(2000) + b"after"  # the frame stays whole
    assert short == [True]


def test_without_sendfile_the_segment_is_read(stdio, tmp_path, no_sendfile):
    io, out_r, reactor = stdio
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n1,2\n")
    with open(path, "rb") as f:
        io.writeFile(P.FileSegment(f.fileno(), 0, 8))
    assert drain(io, out_r, reactor) == b"a,b\n1,2\n"
    assert not io.canWriteFiles()  # and files are read from now on


def test_segments_left_when_the_stream_ends_are_closed(stdio, tmp_path):
    from twisted.internet.error import ConnectionDone

    io, out_r, reactor = stdio
    path = tmp_path / "f"
    path.write_bytes(b"z" * 100)
    with open(path, "rb") as f:
        segment = P.FileSegment(f.fileno(), 0, 100)
    io.writeFile(segment)
    io._writer.connectionLost(Failure(ConnectionDone()))
    assert segment.fd == -1


def test_streams_hand_files_over_as_segments(tmp_path):
    from twisted.internet.defer import Deferred
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports, SharePolicy, Streams
    from samptwist.testing import result_of

    content = os.urandom(2 * P.DATA_CHUNK + 123)
    path = tmp_path / "big.fits"
    path.write_bytes(content)
    exports = Exports(Clock(), policy=SharePolicy(shared=[str(tmp_path)]))
    token = exports.export("file", str(path))
    sent: List[Tuple[int, bytes]] = []
    failed: List[str] = []
    segments: List[P.FileSegment] = []

    def send_file(stream: int, segment: Any) -> bool:
        if segment is not None:
            segments.append(segment)
            sent.append((stream, os.pread(segment.fd, segment.count, segment.offset)))
            segment.close()
        return True

    streams = Streams(Clock(), exports, send=lambda s, d: sent.append((s, d)),
                      fail=lambda s, why: failed.append(why), send_file=send_file)
    stream, source = result_of(Deferred.fromCoroutine(streams.start(token)))
    assert source.size == len(content)
    streams.want(stream, P.DATA_CHUNK + 10)  # credit: one piece and a bit
    assert [len(d) for _, d in sent] == [P.DATA_CHUNK, 10]
    streams.want(stream, 10 * P.DATA_CHUNK)
    assert b"".join(d for _, d in sent) == content
    assert sent[-1] == (stream, b"")  # the end, as bytes
    assert all(len(s) <= P.DATA_CHUNK for s in segments)
    assert not failed and stream not in streams.open


def test_streams_report_a_file_that_shrank(tmp_path):
    from twisted.internet.defer import Deferred
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports, SharePolicy, Streams
    from samptwist.testing import result_of

    path = tmp_path / "t.vot"
    path.write_bytes(b"v" * 100)
    exports = Exports(Clock(), policy=SharePolicy(shared=[str(tmp_path)]))
    failed: List[Tuple[int, str]] = []
    kept: List[P.FileSegment] = []

    def send_file(stream: int, segment: Any) -> bool:
        if segment is not None:
            kept.append(segment)
        return True

    streams = Streams(Clock(), exports, send=lambda s, d: None,
                      fail=lambda s, why: failed.append((s, why)), send_file=send_file)
    stream, _ = result_of(Deferred.fromCoroutine(streams.start(exports.export("file", str(path)))))
    streams.want(stream, 100)
    kept[0].short()  # as the writer does when the file ended early
    assert failed == [(stream, "the file shrank while it was sent")]
    assert stream not in streams.open


def test_streams_read_no_more_while_the_link_has_too_much_to_write(tmp_path, pipes):
    from twisted.internet.defer import Deferred
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports, SharePolicy, Streams
    from samptwist.testing import result_of

    path = tmp_path / "big.fits"
    path.write_bytes(os.urandom(4 * P.DATA_CHUNK))
    exports = Exports(Clock(), policy=SharePolicy(shared=[str(tmp_path)]))
    in_r, in_w = pipes()
    out_r, out_w = pipes()
    reactor = MemoryReactor()
    io = StreamStdIO(Sink(), stdin=in_r, stdout=out_w, reactor=reactor)
    streams = Streams(Clock(), exports, send=lambda s, d: io.write(d), fail=lambda s, w: None,
                      send_file=lambda s, seg: seg is None or io.writeFile(seg) or True)
    io.registerProducer(streams, True)
    stream, _ = result_of(Deferred.fromCoroutine(streams.start(exports.export("file", str(path)))))
    streams.want(stream, 4 * P.DATA_CHUNK)
    # More than the writer's buffer (1 MiB) waits: the pump paused, not read ahead.
    assert streams.paused
    assert io._writer._tempDataLen == 3 * P.DATA_CHUNK  # the third went over the limit
    got = drain(io, out_r, reactor)  # written: the writer resumes the pump
    got += drain(io, out_r, reactor)
    assert not streams.paused
    assert got == path.read_bytes()


def test_a_file_shares_one_descriptor_between_its_segments(tmp_path):
    from samptwist.remote.files import FileSource

    path = tmp_path / "t.fits"
    path.write_bytes(os.urandom(3000))
    source = FileSource(str(path), 10_000)
    from twisted.internet.defer import Deferred

    from samptwist.testing import result_of

    result_of(Deferred.fromCoroutine(source.start()))
    first = result_of(source.segment(1000, lambda: None))
    second = result_of(source.segment(1000, lambda: None))
    assert first.fd == second.fd >= 0 and (first.offset, second.offset) == (0, 1000)
    fd = first.fd
    source.close()
    assert os.pread(fd, 10, 0) == path.read_bytes()[:10]  # still open: segments wait
    first.close()
    second.close()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the last of them
