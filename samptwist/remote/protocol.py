"""
The wire protocol of C{samptwist remote}: Twisted's AMP over the one byte
stream between the desktop and the far side (an ssh session, C{docker exec},
any pipe), preceded by a one-line greeting so that whatever a login shell
prints first is recognised and skipped.

Every command names clients by their id on the hub where they live; no hub
secret, private key or hub URL ever crosses.  Values that are SAMP maps
travel as JSON, split over as many AMP values as they need (an AMP value
holds at most 65535 bytes), up to L{MAX_JSON} bytes.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Type

from twisted.protocols import amp

#: the greeting line the agent writes before speaking AMP
GREETING = b"SAMPTWIST-REMOTE 1\n"
#: protocol version (answered by L{Hello})
VERSION = 1
#: largest JSON value accepted, in bytes
MAX_JSON = 16 * 1024 * 1024
_PIECE = 65000
#: bytes per read of a file (in four AMP values)
CHUNK = 4 * _PIECE


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


class BigBytes(amp.Argument):
    """
    Bytes, split over the keys C{NAME}, C{NAME.1}, ... (at most L{CHUNK}
    bytes in all).
    """

    def toBox(self, name: bytes, strings: Dict[bytes, bytes], objects: Dict[str, Any],
              proto: Any) -> None:
        data = objects[name.decode("ascii")]
        if len(data) > CHUNK:
            raise ValueError(f"{len(data)} bytes, more than {CHUNK}")
        strings[name] = data[:_PIECE]
        for n, start in enumerate(range(_PIECE, len(data), _PIECE), 1):
            strings[name + b"." + str(n).encode()] = data[start:start + _PIECE]

    def fromBox(self, name: bytes, strings: Dict[bytes, bytes], objects: Dict[str, Any],
                proto: Any) -> None:
        parts = [strings.get(name, b"")]
        for n in range(1, CHUNK // _PIECE + 1):
            piece = strings.get(name + b"." + str(n).encode())
            if piece is None:
                break
            parts.append(piece)
        objects[name.decode("ascii")] = b"".join(parts)


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
                 (b"place", amp.Unicode()), (b"file_port", amp.Integer())]
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


class FileRead(amp.Command):
    """
    The next bytes (at most L{CHUNK}) of an open stream; empty at the end.
    """

    arguments = [(b"stream", amp.Integer())]
    response = [(b"data", BigBytes())]
    errors = _ERRORS


class FileClose(amp.Command):
    """
    The reader is done with a stream.
    """

    arguments = [(b"stream", amp.Integer())]
    response = []  # type: ignore[var-annotated]
    requiresAnswer = False
