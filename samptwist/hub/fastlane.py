"""
The Standard Profile site's fast lane: a plain XML-RPC POST to the hub's
endpoint is read, answered and written by the connection itself, without
twisted.web's per-request machinery (a L{twisted.web.server.Request}, its
header objects, resource traversal, producers), which costs more CPU than
everything the hub does with a message.

What SAMP clients send is a small set of requests: C{POST /xmlrpc} over
HTTP/1.1 (or 1.0) with a Content-Length, an XML content type, CRLF line
ends and a small body without a DTD.  Those take the lane, pipelined ones
included, and go to L{StandardProfile.answer
<samptwist.hub.standard.StandardProfile.answer>}, as twisted.web's path does.
Anything else (another path or method, chunked bodies, C{Expect}, bare-LF
headers, large bodies, a DTD or comment, or the hub logging at debug level)
hands the connection, from that request on, to twisted.web's channel
(L{GuardedChannel}), with the site's size limits, its 413 and 415 answers
and its DTD refusal.  Either way the answer is the same bytes of XML-RPC.
"""

from __future__ import annotations

import time
from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString

from .._log import get_level
from .._oneshot import OneShot
from .httpguard import GuardedChannel

__all__ = ["FastLaneChannel", "MAX_LANE_BODY", "MAX_LANE_HEAD"]

#: most bytes of a request's line and headers the lane reads
MAX_LANE_HEAD = 8 * 1024
#: larger bodies go through twisted.web, which streams them to a file
MAX_LANE_BODY = 256 * 1024

_END_OF_HEAD = b"\r\n\r\n"
_ANSWER_HEAD = (
    b"%s 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: %d\r\n"
    b"Date: %s\r\n%s\r\n"
)
_CLOSE = b"Connection: close\r\n"


def read_head(head: bytes, path: bytes) -> Optional[Tuple[bytes, int, bool]]:
    """
    Read the request line and headers of a request (without the blank line
    that ends them) if the fast lane serves it.

    @param path: the endpoint's path (C{b"/xmlrpc"}).
    @return: the HTTP version, the body's length and whether the connection
        closes after the answer; C{None} if twisted.web must handle it.
    """
    lines = head.split(b"\r\n")
    first = lines[0].split(b" ")
    if len(first) != 3 or first[0] != b"POST" or first[1] != path:
        return None
    version = first[2]
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        return None
    length = -1
    close = version == b"HTTP/1.0"
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in b" \t" or name[:1] in b" \t":
            return None  # malformed, or a folded line: twisted.web answers it
        name = name.lower()
        value = value.strip(b" \t")
        if name == b"content-length":
            if length >= 0 or not value.isdigit():
                return None
            length = int(value)
        elif name == b"content-type":
            if b"xml" not in value.lower():
                return None  # refused with 415 by twisted.web's path
        elif name == b"connection":
            if b"close" in value.lower():
                close = True
        elif name == b"transfer-encoding" or name == b"expect":
            return None
    if length < 0:
        return None
    return version, length, close


_date: List[Any] = [0, b""]


def http_date(seconds: float) -> bytes:
    """
    @return: the HTTP C{Date} of C{seconds} since the epoch (the last one
        is remembered: one formatting per second).
    """
    whole = int(seconds)
    if _date[0] != whole:
        _date[:] = [whole, datetimeToString(whole)]
    return _date[1]  # type: ignore[no-any-return]


class _Waiting(OneShot[None]):
    """
    What the dispatch may watch in place of a twisted.web request while
    the answer to a request on the lane is not written yet: C{notifyFinish}
    fires when it is written, fails when the connection is lost first.
    """

    def notifyFinish(self) -> Deferred[None]:
        return self.observe()


class FastLaneChannel(GuardedChannel):
    """
    The Standard Profile site's channel: serves the lane's requests itself
    (see the module's docstring) and hands the connection to
    L{GuardedChannel} at the first request that is not one.  Its site
    names the endpoint as C{fast_lane}: a C{(path, resource)} pair whose
    resource has C{answer(request, body)}; without it, it is just a
    L{GuardedChannel}.

    Answers are written in the order of the requests: while one waits (a
    C{callAndWait}), later requests on the connection wait behind it.
    """

    site: Any  # set by the site's buildProtocol
    _on_lane = True
    _buffer = b""
    _waiting: Optional[_Waiting] = None
    _closing = False

    def connectionMade(self) -> None:
        super().connectionMade()
        if getattr(self.site, "fast_lane", None) is None:
            self._on_lane = False

    def dataReceived(self, data: bytes) -> None:
        if not self._on_lane:
            super().dataReceived(data)
            return
        if self._counted:
            limiter = self._limiter()
            if limiter is not None:
                limiter.active(self)
        self.resetTimeout()
        self._buffer += data
        if self._waiting is None:
            self._serve()
        elif len(self._buffer) > MAX_LANE_HEAD + MAX_LANE_BODY:
            self.transport.pauseProducing()  # type: ignore[union-attr]

    def idle(self) -> bool:
        return self._waiting is None and super().idle()

    def _leave_lane(self) -> None:
        self._on_lane = False
        data, self._buffer = self._buffer, b""
        if data:
            super().dataReceived(data)

    def _serve(self) -> None:
        path, resource = self.site.fast_lane
        limit = MAX_LANE_BODY
        site_limit = getattr(self.site, "max_request_size", None)
        if site_limit is not None:
            limit = min(limit, site_limit)
        while self._buffer and self._waiting is None and not self._closing:
            buffer = self._buffer
            end = buffer.find(_END_OF_HEAD)
            if end < 0:
                if len(buffer) > MAX_LANE_HEAD or b"\n\n" in buffer or b"\n\r\n" in buffer:
                    self._leave_lane()
                return
            head = read_head(buffer[:end], path) if end <= MAX_LANE_HEAD else None
            if head is None or head[1] > limit or get_level() == LogLevel.debug:
                self._leave_lane()
                return
            version, length, close = head
            start = end + 4
            if len(buffer) < start + length:
                return  # the rest of the body is on its way
            body = buffer[start:start + length]
            if b"<!" in body:
                self._leave_lane()  # DTDs and comments: twisted.web's checks
                return
            self._buffer = buffer[start + length:]
            self._answer(resource, body, version, close)

    def _answer(self, resource: Any, body: bytes, version: bytes, close: bool) -> None:
        waiting = _Waiting()
        content = resource.answer(waiting, body)
        if isinstance(content, Deferred):
            self._waiting = waiting
            saved = self.setTimeout(None)  # as twisted.web: no idle time-out while answering
            content.addCallback(self._answered, waiting, version, close, saved)
        else:
            self._write(content, version, close)
            waiting.fire(None)

    def _answered(
        self, content: bytes, waiting: _Waiting, version: bytes, close: bool, saved: Any
    ) -> None:
        if waiting.called:
            return  # the connection was lost meanwhile
        self._waiting = None
        self._write(content, version, close)
        waiting.fire(None)
        if self._closing or self.transport is None:
            return
        self.setTimeout(saved)
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        self._serve()

    def _write(self, content: bytes, version: bytes, close: bool) -> None:
        transport: Any = self.transport
        if transport is None:
            return
        seconds = getattr(getattr(self.site, "reactor", None), "seconds", time.time)()
        transport.write(
            _ANSWER_HEAD % (version, len(content), http_date(seconds), _CLOSE if close else b"")
            + content
        )
        if close:
            self._closing = True
            self._buffer = b""
            transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.called:
            waiting.fail(reason if isinstance(reason, Failure) else Failure(ConnectionError()))
        super().connectionLost(reason)
