"""
HTTP-level protections shared by the hub's sites: a request body size limit
(answered with 413 before the body is buffered), bounded idle keep-alive
connections and a cap on open connections with a reserve for new clients
(L{ConnectionLimiter}), and checks that refuse XML-RPC bodies with DTDs or
entity declarations (entity-expansion bombs, external entities) and non-XML
content types.
"""

from __future__ import annotations

import collections
import io
import re
from typing import Any, Dict, Optional

from twisted.web import server, xmlrpc

from .._http import TolerantHTTPChannel
from .._log import Logger
from .._xmlrpc import write_fault

#: Default limit on one request body: room for a 10 MB message and more.
__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_REQUEST",
    "ConnectionLimiter",
    "GuardedChannel",
    "GuardedSite",
    "LimitedRequest",
    "TolerantHTTPChannel",
    "reject_unsafe_xml",
]

DEFAULT_MAX_REQUEST = 64 * 1024 * 1024
#: Seconds an open connection may stay idle (no request in progress).
DEFAULT_IDLE_TIMEOUT = 60.0

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
    dispatched = False

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
        self.dispatched = True  # the connection is busy until it is answered
        # Twisted parses every POST's Content-Type with the email package to
        # find form submissions, a large share of an XML-RPC call's CPU.  An
        # XML body is never a form, so that parse is skipped for it.
        ctype = self.requestHeaders.getRawHeaders(b"content-type")
        if ctype and b"xml" in ctype[0].lower():
            self._parsePOSTFormSubmission = False
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        timer, self._drain_timer = self._drain_timer, None
        if timer is not None and timer.active():
            timer.cancel()
        super().connectionLost(reason)


def default_max_connections(reserve_fraction: int = 4) -> int:
    """
    @return: how many connections the hub's sites may hold open at once: the
        process's soft C{RLIMIT_NOFILE} less a reserve (a quarter of it,
        between 32 and 1024 descriptors) for callbacks to clients, files,
        logs and the new connection that makes an idle one go.
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return 1024
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 20
    reserve = min(max(soft // reserve_fraction, 32), 1024)
    return max(soft - reserve, 8)


class ConnectionLimiter:
    """
    Caps the connections open at once to one or more sites (which share the
    process's file descriptors).

    When a new connection would pass L{limit}, the connection that has been
    idle longest (no request being answered) is closed to make room, so a
    flood of idle connections cannot lock new clients out; only when every
    open connection is busy is the new one refused (with a 503).  The first
    time the limit is reached a warning is logged; when the number of open
    connections has fallen back to half the limit, one more line says how
    many were closed or refused meanwhile.

    @ivar limit: most connections open at once.
    """

    log = Logger()

    def __init__(self, limit: int = 0) -> None:
        """
        @param limit: most connections open at once; 0: from the process's
            file descriptor limit (L{default_max_connections}).
        """
        self.limit = limit or default_max_connections()
        self._open: Dict[Any, None] = collections.OrderedDict()
        self.flooded = False
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, channel: Any) -> bool:
        """
        Count C{channel} in, closing the longest-idle connection if the limit
        is reached.

        @return: C{False} if C{channel} must be refused: every open
            connection is busy.
        """
        if len(self._open) >= self.limit:
            if not self.flooded:
                self.flooded = True
                self.log.warn(
                    "{n} connections open, the limit: closing the longest idle ones to "
                    "make room for new clients (a connection flood?)",
                    n=len(self._open),
                )
            victim = next((c for c in self._open if c.idle()), None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            self._open.pop(victim, None)
            _close_now(victim.transport)
        self._open[channel] = None
        return True

    def active(self, channel: Any) -> None:
        """
        C{channel} received data: it is the most recently active now.
        """
        if channel in self._open:
            self._open.move_to_end(channel)  # type: ignore[attr-defined]

    def closed(self, channel: Any) -> None:
        self._open.pop(channel, None)
        if self.flooded and len(self._open) <= self.limit // 2:
            self.flooded = False
            self.log.warn(
                "connection flood over: {evicted} idle connections closed, {refused} refused",
                evicted=self.evicted,
                refused=self.refused,
            )
            self.evicted = self.refused = 0


def _close_now(transport: Any) -> None:
    # abortConnection frees the descriptor only on a later reactor turn,
    # and one turn may accept a hundred connections or more: free it now.
    # (Twisted stops watching the socket first; closing a closed Python
    # socket later is harmless.)
    sock = getattr(transport, "socket", None)
    transport.abortConnection()
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: 44\r\n\r\n"
    b"the hub has too many connections open; retry"
)


class GuardedChannel(TolerantHTTPChannel):
    """
    The hub's HTTP channel: counted by its site's L{ConnectionLimiter}, and
    closed without a log line once idle for the site's C{timeOut} seconds.
    """

    _counted = False

    def _limiter(self) -> Optional[ConnectionLimiter]:
        return getattr(getattr(self, "site", None), "limiter", None)

    def connectionMade(self) -> None:
        super().connectionMade()
        limiter = self._limiter()
        if limiter is None:
            return
        if limiter.opened(self):
            self._counted = True
        else:
            transport: Any = self.transport
            transport.write(_BUSY)
            transport.loseConnection()

    def idle(self) -> bool:
        """
        @return: whether no request on this connection is being answered
            (a request whose body has not all arrived does not count).
        """
        return not any(getattr(r, "dispatched", False) for r in self.requests)

    def dataReceived(self, data: bytes) -> None:
        if self._counted:
            limiter = self._limiter()
            if limiter is not None:
                limiter.active(self)
        super().dataReceived(data)

    def timeoutConnection(self) -> None:
        # Twisted logs a line per timed-out connection; a flood would make
        # thousands.  Idle means nothing is being answered: just close.
        transport: Any = self.transport
        transport.abortConnection()

    def connectionLost(self, reason: Any = None) -> None:
        if self._counted:
            self._counted = False
            limiter = self._limiter()
            if limiter is not None:
                limiter.closed(self)
        super().connectionLost(reason)


class GuardedSite(server.Site):
    """
    The base of the hub's sites: quiet (no start-up line, no tracebacks),
    bodies limited to C{max_request_size} (L{LimitedRequest}), bare-LF
    header lines accepted, idle connections closed after C{timeOut} seconds
    and open connections capped by C{limiter} (L{GuardedChannel}).
    Subclasses choose how requests are logged.

    @ivar limiter: a L{ConnectionLimiter}, possibly shared with other sites
        of the process, or C{None} for no cap.
    """

    displayTracebacks = False
    noisy = False
    requestFactory = LimitedRequest
    protocol = GuardedChannel  # type: ignore[assignment]  # HTTP/1.x only
    max_request_size: Optional[int] = DEFAULT_MAX_REQUEST
    limiter: Optional[ConnectionLimiter] = None

    def __init__(self, resource: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", DEFAULT_IDLE_TIMEOUT)
        super().__init__(resource, *args, **kwargs)


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
        write_fault(
            request,
            resource.FAILURE,
            "XML-RPC requests may not contain DTDs or entity declarations",
        )
        return True
    return False
