"""
HTTP-level protections shared by the hub's sites: a request body size limit
(answered with 413 before the body is buffered) and checks that refuse
XML-RPC bodies with DTDs or entity declarations (entity-expansion bombs,
external entities) and non-XML content types.
"""

from __future__ import annotations

import io
import re
from typing import Any, Optional

from twisted.web import server, xmlrpc

from .._http import TolerantHTTPChannel
from .._log import Logger

#: Default limit on one request body: room for a 10 MB message and more.
__all__ = [
    "DEFAULT_MAX_REQUEST",
    "GuardedSite",
    "LimitedRequest",
    "TolerantHTTPChannel",
    "reject_unsafe_xml",
]

DEFAULT_MAX_REQUEST = 64 * 1024 * 1024

log = Logger()

_PROLOG_READ = 64 * 1024
#: After a 413, how much more of the body is read and dropped, and for how
#: long, before the connection is closed anyway.
DISCARD_BYTES = 256 * 1024 * 1024
DISCARD_TIME = 30.0
_ROOT_START = re.compile(rb"<[A-Za-z_]")


class LimitedRequest(server.Request):
    """
    A request whose body may not exceed the site's C{max_request_size}.

    A larger body (announced by Content-Length or discovered while chunks
    arrive) is answered at once with C{413 Payload Too Large}; nothing more
    of it is stored or processed.  The rest of the body is read and
    discarded, up to L{DISCARD_BYTES} more bytes and for L{DISCARD_TIME}
    seconds, so that a client still writing it gets to read the answer
    instead of a broken pipe; then the connection is closed.
    """

    _refused = False
    _received = 0
    _discarded = 0
    _drain_timer: Any = None

    def _limit(self) -> Optional[int]:
        return getattr(getattr(self.channel, "site", None), "max_request_size", None)

    def gotLength(self, length: Optional[int]) -> None:
        limit = self._limit()
        if limit is not None and length is not None and length > limit:
            self.content = io.BytesIO()
            self._refuse(limit)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            self._discarded += len(data)
            if self._discarded > DISCARD_BYTES:
                self._close()
            return
        self._received += len(data)
        limit = self._limit()
        if limit is not None and self._received > limit:
            self._refuse(limit)
            return
        super().handleContentChunk(data)

    def _refuse(self, limit: int) -> None:
        self._refused = True
        peer = self.getClientAddress()
        log.warn(
            "refused a request body over {limit} bytes from {peer}",
            limit=limit,
            peer=getattr(peer, "host", "?"),
        )
        body = f"request body exceeds the hub's limit of {limit} bytes\n".encode()
        transport = self.channel.transport
        if transport is None:
            return
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        # Closing now, with body bytes unread, would make the kernel reset
        # the connection and the client would never read the answer.
        call_later = getattr(self.channel, "callLater", None)
        if call_later is None:
            self._close()
        else:
            self._drain_timer = call_later(DISCARD_TIME, self._close)

    def _close(self) -> None:
        timer, self._drain_timer = self._drain_timer, None
        if timer is not None and timer.active():
            timer.cancel()
        transport = self.channel.transport if self.channel is not None else None
        if transport is not None:
            transport.loseConnection()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            self._close()  # the whole body has been read (and discarded)
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        timer, self._drain_timer = self._drain_timer, None
        if timer is not None and timer.active():
            timer.cancel()
        super().connectionLost(reason)


class GuardedSite(server.Site):
    """
    The base of the hub's sites: quiet (no start-up line, no tracebacks),
    bodies limited to C{max_request_size} (L{LimitedRequest}) and bare-LF
    header lines accepted (L{TolerantHTTPChannel}).  Subclasses choose how
    requests are logged.
    """

    displayTracebacks = False
    noisy = False
    requestFactory = LimitedRequest
    protocol = TolerantHTTPChannel  # type: ignore[assignment]  # HTTP/1.x only
    max_request_size: Optional[int] = DEFAULT_MAX_REQUEST


def reject_unsafe_xml(
    resource: xmlrpc.XMLRPC, request: Any, check_content_type: bool = True
) -> bool:
    """
    Answer (and log) a request that no XML-RPC server should parse: a
    non-XML content type (415; skipped with C{check_content_type=False}, for
    browsers, which send XML-RPC as text/plain) or a body with a DTD or
    entity declaration (an XML-RPC fault).

    @return: C{True} if the request was answered and must not be processed.
    """
    content_type = request.getHeader(b"content-type")
    if (
        check_content_type
        and content_type is not None
        and b"xml" not in content_type.lower()
    ):
        log.warn("refused a non-XML request ({ctype})", ctype=content_type[:60])
        request.setResponseCode(415)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.write(b"XML-RPC requests must be sent as text/xml\n")
        request.finish()
        return True
    # A DTD (and so any entity declaration) can only come before the root
    # element: read just the prolog, not a whole (possibly huge) body.
    content = request.content
    content.seek(0, 0)
    head = content.read(_PROLOG_READ)
    root = _ROOT_START.search(head)
    if root is not None and b"<!--" not in head[: root.start()]:
        prolog = head[: root.start()]
    else:  # no root element yet, or comments that could hide one: check it all
        prolog = head + content.read()
    content.seek(0, 0)
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        log.warn("refused an XML-RPC request containing a DTD or entity declaration")
        resource._cbRender(
            xmlrpc.Fault(
                resource.FAILURE, "XML-RPC requests may not contain DTDs or entity declarations"
            ),
            request,
        )
        return True
    return False
