"""
The wire protocol of C{samptwist remote}: Twisted's AMP over the one byte
stream between the desktop and the far side (an ssh session, C{docker exec},
any pipe), preceded by a one-line greeting so that whatever a login shell
prints first is recognised and skipped.

Every command names clients by their id on the hub where they live; no hub
secret, private key or hub URL ever crosses.  Values that are SAMP maps
travel as JSON, split over as many AMP values as they need (an AMP value
holds at most 65535 bytes), up to L{MAX_JSON} bytes.

After the greeting the stream is a sequence of frames (L{FramedAMP}): a
kind byte and a 4-byte length, then an AMP box (kind C{A}) or a piece of a
file (kind C{D}: a 4-byte stream number, then up to L{DATA_CHUNK} bytes; an
empty piece ends the stream).  File data thus travels outside AMP's 64 KiB
values, in big pieces, and is pushed by the side that has the file as far
as the reader's credit (L{FileWant}) allows, so memory stays bounded on
both sides without one round trip per piece.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Type

from twisted.protocols import amp

#: the greeting line the agent writes before speaking AMP
GREETING_PREFIX = b"SAMPTWIST-REMOTE "
GREETING = GREETING_PREFIX + b"2\n"
#: protocol version (answered by L{Hello})
VERSION = 2
#: largest JSON value accepted, in bytes
MAX_JSON = 16 * 1024 * 1024
_PIECE = 65000
#: most bytes of a file in one data frame
DATA_CHUNK = 512 * 1024
#: most credit a reader may hold per stream (bytes asked for, not yet sent)
MAX_CREDIT = 64 * 1024 * 1024
#: frame kinds
AMP_FRAME = 0x41
DATA_FRAME = 0x44
_HEADER = 5
#: data frames at least this big are collected piece by piece as they arrive
_COLLECT = 64 * 1024
#: largest frame accepted of each kind
MAX_FRAME = {AMP_FRAME: MAX_JSON + 1024 * 1024, DATA_FRAME: DATA_CHUNK + 4}


def frame(kind: int, payload: bytes) -> bytes:
    """
    @return: C{payload} as one frame of C{kind} (for tests and other peers).
    """
    return bytes([kind]) + len(payload).to_bytes(4, "big") + payload


class SharedFD:
    """
    A descriptor of its own for an open file (a C{dup}), closed once
    nothing refers to it any more: the source that read it and the
    L{FileSegment}s of it still waiting to be written.
    """

    def __init__(self, fd: int) -> None:
        self.fd = os.dup(fd)

    def __del__(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class FileSegment:
    """
    C{count} bytes of an open file from C{offset}, to be written to a stream
    by the kernel (C{sendfile}) by a transport that can (C{writeFile}).

    @ivar short: called if the file ends before C{count} bytes (the rest is
        then sent as zeros, to keep the frame whole).
    """

    def __init__(self, fd: int | SharedFD, offset: int, count: int,
                 short: Callable[[], None] = lambda: None) -> None:
        """
        @param fd: the file (a descriptor is duplicated: the caller may
            close its own).
        """
        self._file: SharedFD | None = fd if isinstance(fd, SharedFD) else SharedFD(fd)
        self.offset = offset
        self.count = count
        self.short = short

    @property
    def fd(self) -> int:
        """
        The file's descriptor (-1 once L{close}d).
        """
        return -1 if self._file is None else self._file.fd

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        """
        Done with the file (written, or dropped).
        """
        self._file = None


class FrameError(Exception):
    """
    The stream holds something that is not a frame of this protocol.
    """


class FramedAMP(amp.AMP):
    """
    AMP whose boxes travel in C{A} frames, beside C{D} frames of file data
    (L{dataFrameReceived}, L{sendData}).
    """

    def __init__(self) -> None:
        super().__init__()
        self._inbox = bytearray()
        # the data frame being collected: its stream, the pieces so far and
        # the bytes it still needs (pieces go straight in, not through _inbox)
        self._collecting = 0
        self._pieces: List[Any] = []
        self._need = 0

    def sendBox(self, box: amp.AmpBox) -> None:
        if self.transport is None:
            from twisted.internet.error import ConnectionLost

            raise ConnectionLost()
        data = box.serialize()
        self.transport.writeSequence([bytes([AMP_FRAME]), len(data).to_bytes(4, "big"), data])

    def sendData(self, stream: int, data: bytes) -> None:
        """
        Send C{data} (at most L{DATA_CHUNK} bytes; empty: the end) of C{stream}.
        """
        assert self.transport is not None and len(data) <= DATA_CHUNK
        self.transport.writeSequence([bytes([DATA_FRAME]), (len(data) + 4).to_bytes(4, "big"),
                                      stream.to_bytes(4, "big"), data])

    def canSendFiles(self) -> bool:
        """
        @return: whether the transport writes file segments itself
            (L{sendFileData}).
        """
        return self._transport_says("canWriteFiles")

    def filesMoved(self) -> bool:
        """
        @return: whether file segments are written by a thread of the
            transport (they need not be read ahead: L{canSendFiles}).
        """
        return self._transport_says("movesFiles")

    def _transport_says(self, question: str) -> bool:
        answer = getattr(self.transport, question, None)
        return callable(answer) and bool(answer())

    def sendFileData(self, stream: int, segment: FileSegment) -> None:
        """
        Send C{segment} (at most L{DATA_CHUNK} bytes, not empty) as a piece
        of C{stream}, written by the kernel from the file (L{canSendFiles}).
        """
        assert self.transport is not None and 0 < segment.count <= DATA_CHUNK
        self.transport.writeSequence([bytes([DATA_FRAME]), (segment.count + 4).to_bytes(4, "big"),
                                      stream.to_bytes(4, "big")])
        self.transport.writeFile(segment)  # type: ignore[attr-defined]

    def framingStopped(self) -> bool:
        """
        @return: whether to stop reading frames (the link was cut off).
        """
        return False

    def bulkWanted(self) -> int:
        """
        @return: how many bytes surely come next: the rest of the data
            frame being collected (0: none is), for a transport that can
            read them in one go.
        """
        return 0 if self.framingStopped() else self._need

    def dataReceived(self, data: bytes) -> None:
        view = memoryview(data)
        if self._need:
            # The rest of a big piece of a file: kept as it came, joined once.
            if self.framingStopped():
                return
            if len(view) < self._need:
                self._pieces.append(view)
                self._need -= len(view)
                return
            self._pieces.append(view[:self._need])
            view = view[self._need:]
            pieces, self._pieces, self._need = self._pieces, [], 0
            self.dataFramePieces(self._collecting, pieces)
            if not view:
                return
        if self._inbox:
            self._inbox += view
            buf: Any = self._inbox
        else:
            buf = view  # nothing kept from before: read the frames in place
        at = 0
        try:
            while len(buf) - at >= _HEADER and not self.framingStopped():
                kind = buf[at]
                size = int.from_bytes(buf[at + 1:at + _HEADER], "big")
                limit = MAX_FRAME.get(kind)
                if limit is None:
                    raise FrameError(f"unknown frame kind {kind}")
                if size > limit or (kind == DATA_FRAME and size < 4):
                    raise FrameError(f"a frame of {size} bytes")
                end = at + _HEADER + size
                if len(buf) < end:
                    if kind == DATA_FRAME and len(buf) - at >= _HEADER + 4 and \
                            size >= _COLLECT:
                        # Collect the rest as it comes (one copy, at the end).
                        start = at + _HEADER + 4
                        self._collecting = int.from_bytes(buf[at + _HEADER:start], "big")
                        if buf is self._inbox:  # (emptied below: keep a copy)
                            with memoryview(buf) as whole:
                                self._pieces = [bytes(whole[start:])]
                        else:
                            self._pieces = [buf[start:]]
                        self._need = end - len(buf)
                        at = len(buf)
                    break
                start, at = at + _HEADER, end
                if kind == DATA_FRAME:
                    stream = int.from_bytes(buf[start:start + 4], "big")
                    with memoryview(buf) as whole:
                        # A view of what arrived (it cannot change), but a
                        # copy out of the inbox, which is resized below: a
                        # view kept past the call (a traceback's) would stop
                        # that.
                        piece = whole[start + 4:end]
                        self.dataFramePieces(stream, [bytes(piece) if buf is self._inbox
                                                      else piece])
                        del piece
                    continue
                with memoryview(buf) as whole:  # one copy out of the buffer
                    payload = bytes(whole[start:end])
                super().dataReceived(payload)
        except FrameError as e:
            at = len(buf)
            self.frameError(str(e))
        finally:
            if buf is self._inbox:
                del buf[:at]
            elif at < len(buf):
                self._inbox += buf[at:]

    def dataFramePieces(self, stream: int, pieces: List[Any]) -> None:
        """
        A piece of C{stream} arrived, in C{pieces} (bytes-like objects that
        are valid only during the call, so that one that can send them on
        at once needs no copy); by default joined for L{dataFrameReceived}.
        """
        self.dataFrameReceived(stream, b"".join(pieces))

    def dataFrameReceived(self, stream: int, data: bytes) -> None:
        """
        A piece of C{stream} arrived (C{b""}: its end).
        """

    def frameError(self, text: str) -> None:
        """
        Something that is not a frame arrived.
        """
        if self.transport is not None:
            self.transport.loseConnection()


class JSONValue(amp.Argument):
    """
    A JSON-encodable value, split over the keys C{NAME}, C{NAME.1}, ...
    when long.  Decoding refuses more than L{MAX_JSON} bytes.
    """

    def toBox(self, name: bytes, strings: Dict[bytes, bytes], objects: Dict[str, Any],
              proto: Any) -> None:
        data = json.dumps(objects[name.decode("ascii")], separators=(",", ":")).encode("utf-8")
        if len(data) > MAX_JSON:
            raise ValueError(f"{name.decode()}: {len(data)} bytes of JSON, more than {MAX_JSON}")
        pieces = [data[i:i + _PIECE] for i in range(0, len(data), _PIECE)] or [b""]
        strings[name] = pieces[0]
        for n, piece in enumerate(pieces[1:], 1):
            strings[name + b"." + str(n).encode()] = piece

    def fromBox(self, name: bytes, strings: Dict[bytes, bytes], objects: Dict[str, Any],
                proto: Any) -> None:
        parts: List[bytes] = [strings.get(name, b"null")]
        size = len(parts[0])
        n = 1
        while True:
            piece = strings.get(name + b"." + str(n).encode())
            if piece is None:
                break
            size += len(piece)
            if size > MAX_JSON:
                raise amp.RemoteAmpError(b"TOO_BIG", f"more than {MAX_JSON} bytes of JSON")
            parts.append(piece)
            n += 1
        try:
            objects[name.decode("ascii")] = json.loads(b"".join(parts))
        except ValueError as e:
            raise amp.RemoteAmpError(b"BAD_JSON", f"{name.decode()}: not JSON: {e}") from None


class Refused(Exception):
    """
    The other side refused a request (unknown client or file, over a limit).
    """


_ERRORS: Dict[Type[Exception], bytes] = {Refused: b"REFUSED"}


class Hello(amp.Command):
    """
    The first command each side sends: who it is and where its file
    server listens.
    """

    arguments = [(b"version", amp.Integer()), (b"side", amp.Unicode()),
                 (b"place", amp.Unicode()), (b"file_port", amp.Integer()),
                 # the file server's host as formatted for a URL (absent: 127.0.0.1)
                 (b"file_host", amp.Unicode(optional=True))]
    response = [(b"version", amp.Integer())]
    errors = _ERRORS


class Ping(amp.Command):
    """
    Heartbeat: proves the stream still carries traffic both ways.
    """

    arguments = []  # type: ignore[var-annotated]
    response = []  # type: ignore[var-annotated]


class ClientUpdate(amp.Command):
    """
    A client of the sender's hub, new or changed: mirror it.
    """

    arguments = [(b"client", amp.Unicode()), (b"metadata", JSONValue()),
                 (b"subscriptions", JSONValue())]
    response = []  # type: ignore[var-annotated]
    errors = _ERRORS


class ClientGone(amp.Command):
    """
    A client of the sender's hub left (or may no longer be mirrored).
    """

    arguments = [(b"client", amp.Unicode())]
    response = []  # type: ignore[var-annotated]
    requiresAnswer = False


class Relay(amp.Command):
    """
    Deliver a message from C{sender} (a client of the sender's hub) to
    C{target} (a client of the receiver's hub).  A call is answered with
    the response map, a notification with C{null}.
    """

    arguments = [(b"sender", amp.Unicode()), (b"target", amp.Unicode()),
                 (b"message", JSONValue()), (b"call", amp.Boolean()),
                 (b"timeout", amp.Float())]
    response = [(b"response", JSONValue())]
    errors = _ERRORS


class FileOpen(amp.Command):
    """
    Open the file or URL the sender of an earlier message exported under
    C{token}.
    """

    arguments = [(b"token", amp.Unicode())]
    response = [(b"stream", amp.Integer()), (b"size", amp.Integer()),
                (b"content_type", amp.Unicode())]
    errors = _ERRORS


class FileWant(amp.Command):
    """
    The reader of an open stream may take C{size} more bytes (its credit):
    the side that has the file sends data frames up to that much.
    """

    arguments = [(b"stream", amp.Integer()), (b"size", amp.Integer())]
    response = []  # type: ignore[var-annotated]
    requiresAnswer = False


class FileFailed(amp.Command):
    """
    An open stream cannot go on (the file could not be read): the reader
    gives up on it.
    """

    arguments = [(b"stream", amp.Integer()), (b"reason", amp.Unicode())]
    response = []  # type: ignore[var-annotated]
    requiresAnswer = False


class FileClose(amp.Command):
    """
    The reader is done with a stream.
    """

    arguments = [(b"stream", amp.Integer())]
    response = []  # type: ignore[var-annotated]
    requiresAnswer = False
