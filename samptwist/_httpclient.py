"""
The one HTTP client both sides use for XML-RPC: the hub for callbacks to
clients (L{samptwist.hub.delivery}) and for pinging the hub a lockfile names,
the client library for calling the hub (L{samptwist.client.proxy}).

Plain C{http:} goes through a small hand-written HTTP/1.1 client: Twisted's
L{Agent} costs more CPU per request than everything else a callback
delivery does (C{Headers} objects, Deferred chains, a pool keyed per
request), and a POST to a SAMP peer needs far less: requests in order on a
persistent connection (one at a time, or pipelined for a lane), a status
line, and a body delimited by
Content-Length, chunked encoding or the end of the connection (the HTTP/1.0
callback servers of pyvo and JSAMP).  It accepts header lines ended by a bare
LF (SAOImage DS9), and a request sent on a pooled connection that the server
had closed meanwhile is sent once more on a new one.  C{https:} URLs (and an
injected L{IAgent}, for tests) go through L{samptwist._agentpost}, imported
only then: a hub whose clients all use http never loads Twisted's HTTP
client or its TLS stack.

Every time-out runs on the reactor given, so tests drive it with a
L{twisted.internet.task.Clock}.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, List, NamedTuple, Optional, Set, Tuple
from urllib.parse import urlparse

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.web.iweb import IAgent

__all__ = ["Answer", "HTTPClient", "HTTPFailed", "HTTPTimedOut"]


class HTTPFailed(Exception):
    """
    No complete HTTP answer: the connection was refused or lost, the answer
    was not HTTP, was too large, or (L{HTTPTimedOut}) did not come in time.
    The message says which.
    """


class HTTPTimedOut(HTTPFailed):
    """
    No complete answer within the client's time-out.
    """


class Answer(NamedTuple):
    """
    A complete HTTP answer.

    @ivar code: its status code.
    @ivar body: its body (de-chunked).
    @ivar persistent: whether the server keeps the connection open for
        another request (HTTP/1.1, no C{Connection: close}, a delimited body):
        if not, later requests to it should pass C{keepalive=False}.
    """

    code: int
    body: bytes
    persistent: bool


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
#: idle persistent connections kept per server address
MAX_IDLE_PER_HOST = 256
#: most bytes of an answer's status line and headers
MAX_HEAD = 64 * 1024
#: URLs whose address and request head are remembered
MAX_TARGETS = 4096


class HTTPClient:
    """
    POSTs to HTTP servers, keeping persistent connections per server
    address.

    @ivar timeout: seconds allowed for one exchange, connecting included;
        C{None}: no limit (the caller cancels the L{Deferred}).
    @ivar max_response: most bytes of an answer body.
    @ivar idle_timeout: seconds an idle pooled connection is kept;
        C{None}: until the server closes it.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: Optional[float] = 30.0,
        connect_timeout: Optional[float] = None,
        max_response: int = 1 << 20,
        user_agent: str = "samptwist",
        idle_timeout: Optional[float] = None,
        agent: Optional[IAgent] = None,
    ) -> None:
        """
        @param connect_timeout: seconds allowed to connect (default: the
            time-out, or 30).
        @param agent: an L{IAgent} for every URL (tests); by default the
            hand-written client serves C{http:} and Twisted's L{Agent} (created
            on first use) C{https:}.
        """
        self.reactor = reactor
        self.timeout = timeout
        self.connect_timeout = connect_timeout or timeout or 30.0
        self.max_response = max_response
        self.user_agent = user_agent
        self.idle_timeout = idle_timeout
        self._idle: Dict[Tuple[str, int], List[_ClientHTTP]] = {}
        self._connections: Set[_ClientHTTP] = set()
        self._targets: Dict[str, Tuple[Tuple[str, int], bytes]] = {}
        #: the connection each lane's unanswered requests ride
        self._lanes: Dict[object, _ClientHTTP] = {}
        self.direct = agent is None
        self._agents: Optional[Tuple[Any, IAgent, IAgent]] = (
            None if agent is None else (None, agent, agent)
        )

    def post(
        self, url: str, body: bytes, keepalive: bool = True, lane: Optional[object] = None
    ) -> Deferred:
        """
        POST C{body} as C{text/xml} to C{url}.

        @param keepalive: whether to use (and leave open) a persistent
            connection; pass C{False} for a server that closes after each
            answer (see L{Answer.persistent}).
        @param lane: requests posted with the same C{lane} (any object) ride
            one connection while any of them is unanswered: each is written
            behind the others (HTTP/1.1 pipelining), so the server reads them
            in the order they were posted and answers them in that order.  A
            request whose connection closes before its answer began is sent
            again on a new one, behind those before it.  (C{http:} only.)
        @return: a cancellable L{Deferred} firing with an L{Answer} (of any
            status code), or failing with L{HTTPFailed} (L{HTTPTimedOut}
            after L{timeout} seconds).
        """
        if self.direct and url.startswith("http:"):
            try:
                exchange = self._exchange(url, body, keepalive, lane)
            except ValueError as e:
                d: Deferred = Deferred()
                d.errback(HTTPFailed(f"bad URL {url!r:.80}: {e}"))
                return d
            exchange.start()
            return exchange.deferred
        return self._via_agent(url, body, keepalive)

    def close(self) -> Deferred:
        """
        Close every open connection.

        @return: a L{Deferred} firing when the pooled connections of the
            https agent (if any) are closed.
        """
        for proto in list(self._connections):
            if proto.transport is not None:
                proto.transport.loseConnection()
        for idle in self._idle.values():
            for proto in idle:
                proto.stop_idle_timer()
        self._idle.clear()
        pool = self._agents[0] if self._agents is not None else None
        if pool is None:
            d: Deferred = Deferred()
            d.callback(None)
            return d
        return pool.closeCachedConnections()

    # -- https, or an injected agent ----------------------------------------

    def _via_agent(self, url: str, body: bytes, keepalive: bool) -> Deferred:
        from ._agentpost import pooled_agents, post

        if self._agents is None:
            self._agents = pooled_agents(self.reactor, self.connect_timeout)
        _, pooled, oneshot = self._agents
        d = post(pooled if keepalive else oneshot, url, body, self.max_response, self.user_agent)
        if self.timeout is not None:
            d.addTimeout(self.timeout, self.reactor)
        d.addErrback(self._agent_failed)
        return d

    def _agent_failed(self, f: Failure) -> Failure:
        if f.check(HTTPFailed, CancelledError):
            return f
        if f.check(TimeoutError):
            return Failure(HTTPTimedOut(f"no answer within {self.timeout:g}s"))
        reasons = getattr(f.value, "reasons", None)
        if reasons:  # twisted.web.client.ResponseFailed and friends
            why = "; ".join(r.getErrorMessage() for r in reasons)
            return Failure(HTTPFailed(f"connection lost before the answer was complete ({why})"))
        return Failure(HTTPFailed(f.getErrorMessage() or repr(f.value)))

    # -- the direct HTTP/1.1 client -----------------------------------------

    def _exchange(
        self, url: str, body: bytes, keepalive: bool, lane: Optional[object] = None
    ) -> _Exchange:
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
            if len(self._targets) >= MAX_TARGETS:
                self._targets.clear()
            self._targets[url] = target
        key, head = target
        return _Exchange(
            self, key, head % (len(body), b"" if keepalive else b"Connection: close\r\n"),
            body, keepalive, lane if keepalive else None,
        )

    def _target(self, url: str) -> Tuple[Tuple[str, int], bytes]:
        # The address of a URL and its request head, to be completed with the
        # body's length and the Connection header.
        parsed = urlparse(url)
        host = parsed.hostname or "127.0.0.1"
        port = parsed.port or 80  # raises ValueError for a bad port
        path = (parsed.path or "/") + ("?" + parsed.query if parsed.query else "")
        netloc = parsed.netloc.rpartition("@")[2]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: text/xml\r\n"
            f"User-Agent: {self.user_agent}\r\n"
        ).encode("latin-1").replace(b"%", b"%%") + b"Content-Length: %d\r\n%s\r\n"
        return (host, port), head

    def _take_idle(self, key: Tuple[str, int]) -> Optional[_ClientHTTP]:
        idle = self._idle.get(key)
        while idle:
            proto = idle.pop()
            proto.stop_idle_timer()
            if proto.transport is not None and proto.alive:
                return proto
        return None

    def _leave_lane(self, proto: _ClientHTTP) -> None:
        lane, proto.lane = proto.lane, None
        if lane is not None and self._lanes.get(lane) is proto:
            del self._lanes[lane]

    def _release(self, key: Tuple[str, int], proto: _ClientHTTP) -> None:
        self._leave_lane(proto)
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_IDLE_PER_HOST:
            proto.alive = False
            proto.transport.loseConnection()  # type: ignore[union-attr]
            return
        proto.exchange = None
        idle.append(proto)
        if self.idle_timeout is not None:
            proto.idle_timer = self.reactor.callLater(self.idle_timeout, proto.idle_expired)

    def _forget(self, key: Tuple[str, int], proto: _ClientHTTP) -> None:
        self._leave_lane(proto)
        self._connections.discard(proto)
        proto.stop_idle_timer()
        idle = self._idle.get(key)
        if idle and proto in idle:
            idle.remove(proto)
            if not idle:
                del self._idle[key]


class _Exchange:
    """
    One POST on the direct client: finds or opens a connection, bounds the
    whole exchange by the client's time-out, and fires L{deferred} like
    L{HTTPClient.post}.
    """

    def __init__(
        self,
        client: HTTPClient,
        key: Tuple[str, int],
        head: bytes,
        body: bytes,
        keepalive: bool,
        lane: Optional[object] = None,
    ) -> None:
        self.client = client
        self.key = key
        self.head = head
        self.body = body
        self.keepalive = keepalive
        self.lane = lane
        self.deferred: Deferred = Deferred(self._cancel)
        self.proto: Optional[_ClientHTTP] = None
        self.connector: Any = None
        self.retried = False
        self.timer: Optional[IDelayedCall] = None

    def start(self) -> None:
        client = self.client
        if client.timeout is not None:
            self.timer = client.reactor.callLater(client.timeout, self._timed_out)
        self._go()

    def _go(self) -> None:
        client = self.client
        if self._ride_lane():
            return
        proto = client._take_idle(self.key) if self.keepalive else None
        if proto is not None:
            proto.send(self, reused=True)
        else:
            self.connect()

    def connect(self) -> None:
        client = self.client
        factory = _ClientHTTPFactory(self)
        if self.lane is not None:
            # Requests of the lane posted while this connects wait behind it.
            factory.proto.lane = self.lane
            client._lanes[self.lane] = factory.proto
        self.connector = client.reactor.connectTCP(  # type: ignore[attr-defined]
            self.key[0], self.key[1], factory, timeout=client.connect_timeout
        )

    def retry(self, counted: bool = True) -> None:
        """
        Send the request again (its connection closed before any of its
        answer came): on the lane's connection, if it has one, else a new
        one.

        @param counted: whether this uses up the one retry a request gets (a
            connection that answered nothing); not when the server answered
            an earlier request and closed, as it may.
        """
        if counted:
            self.retried = True
        self.proto = None
        if not self._ride_lane():
            self.connect()

    def _ride_lane(self) -> bool:
        # Behind the unanswered requests of its lane, on their connection.
        if self.lane is not None:
            riding = self.client._lanes.get(self.lane)
            if riding is not None and riding.alive:
                riding.pipeline(self)
                return True
        return False

    def _drop_connection(self, abort: bool = True) -> None:
        # abort=False (a cancelled request of a lane): the connection carries
        # others too; the answer is read when it comes, and dropped.
        proto, self.proto = self.proto, None
        if proto is not None:
            if not abort:
                return
            if proto.exchange is self:
                proto.exchange = None
            proto.alive = False
            if proto.transport is not None:
                proto.transport.abortConnection()  # type: ignore[attr-defined]
        elif self.connector is not None and abort:
            self.connector.stopConnecting()

    def _timed_out(self) -> None:
        self.timer = None
        self.fail(HTTPTimedOut(f"no answer within {self.client.timeout:g}s"))
        self._drop_connection()

    def _cancel(self, d: Deferred) -> None:
        # Deferred.cancel then fails it with CancelledError.
        self._stop_timer()
        self._drop_connection(abort=self.lane is None)

    def _stop_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def fail(self, error: Exception) -> None:
        if self.deferred.called:
            return
        self._stop_timer()
        self.deferred.errback(error)

    def done(self, code: int, body: bytes, persistent: bool) -> None:
        if self.deferred.called:
            return
        self._stop_timer()
        self.deferred.callback(Answer(code, body, persistent))


class _ClientHTTPFactory(ClientFactory):
    noisy = False

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        self.proto = _ClientHTTP(exchange)

    def buildProtocol(self, addr: Any) -> _ClientHTTP:
        return self.proto

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.proto.connect_failed(
            HTTPFailed(reason.getErrorMessage() or "connection failed")
        )


class _ClientHTTP(Protocol):
    """
    One client connection: its requests written in order (one at a time, or
    several pipelined for a lane), their answers read in that order,
    delimited by Content-Length, chunked encoding or the end of the
    connection.

    @ivar exchange: the request whose answer is read now.
    @ivar queued: requests written after it, answered after it.
    @ivar waiting: a lane's requests posted while this connects.
    @ivar lane: the lane whose requests this carries, if any.
    """

    idle_timer: Optional[IDelayedCall] = None
    lane: Optional[object] = None

    def __init__(self, exchange: _Exchange) -> None:
        self.client = exchange.client
        self.key = exchange.key
        self.exchange: Optional[_Exchange] = exchange
        self.queued: Deque[_Exchange] = deque()
        self.waiting: List[_Exchange] = []
        self.alive = True
        self.answered = 0  # answers read on this connection
        self._reset(False)

    def _reset(self, reused: bool) -> None:
        self.reused = reused
        self.buf = b""
        self.parts: List[bytes] = []
        self.have = 0
        self.code = 0
        self.version = b""
        self.length: Optional[int] = None
        self.chunked = False
        self.persistent = False
        self.in_body = False
        self.got_bytes = False

    def connectionMade(self) -> None:
        self.client._connections.add(self)
        try:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
        except Exception:
            pass
        pending = [self.exchange] + self.waiting if self.exchange is not None else self.waiting
        self.exchange, self.waiting = None, []
        pending = [e for e in pending if not e.deferred.called]
        if not pending:
            self.alive = False
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.send(pending[0], reused=False)
        for exchange in pending[1:]:
            self.pipeline(exchange)

    def connect_failed(self, error: Exception) -> None:
        self.alive = False
        self.client._leave_lane(self)
        for exchange in ([self.exchange] if self.exchange is not None else []) + self.waiting:
            exchange.fail(error)
        self.exchange, self.waiting = None, []

    def send(self, exchange: _Exchange, reused: bool) -> None:
        self.exchange = exchange
        exchange.proto = self
        if exchange.lane is not None:
            self.lane = exchange.lane
            self.client._lanes[exchange.lane] = self
        self._reset(reused)
        self.transport.writeSequence([exchange.head, exchange.body])  # type: ignore[union-attr]

    def pipeline(self, exchange: _Exchange) -> None:
        """
        Write C{exchange} behind the requests this connection carries (or,
        while it connects, send it once connected).
        """
        if self.transport is None:
            self.waiting.append(exchange)
            return
        if self.exchange is None:
            self.send(exchange, reused=True)
            return
        exchange.proto = self
        self.queued.append(exchange)
        self.transport.writeSequence([exchange.head, exchange.body])  # type: ignore[union-attr]

    def stop_idle_timer(self) -> None:
        timer, self.idle_timer = self.idle_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def idle_expired(self) -> None:
        self.idle_timer = None
        self.alive = False
        if self.transport is not None:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self.exchange is None:
            # Bytes nobody asked for (on an idle connection): it is unusable.
            self.alive = False
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.got_bytes = True
        if self.in_body:
            self.parts.append(data)
            self.have += len(data)
            self._body(data)
            return
        self.buf += data
        # The header ends at a blank line; some servers (SAOImage DS9's Tcl
        # one) end lines with a bare LF instead of CRLF.
        blank = _BLANK_LINE.search(self.buf)
        if blank is None:
            if len(self.buf) > MAX_HEAD:
                self._abort(HTTPFailed("the answer has an oversized header"))
            return
        if not self._head(self.buf[: blank.start()]):
            return
        rest, self.buf = self.buf[blank.end():], b""
        self.in_body = True
        self.parts = [rest]
        self.have = len(rest)
        self._body(rest)

    def _head(self, head: bytes) -> bool:
        lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
        parts = lines[0].split(None, 2)
        try:
            self.version, self.code = parts[0], int(parts[1])
        except (IndexError, ValueError):
            self._abort(HTTPFailed("the answer is not HTTP"))
            return False
        if not self.version.startswith(b"HTTP/"):
            self._abort(HTTPFailed("the answer is not HTTP"))
            return False
        connection = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    self.length = int(value)
                except ValueError:
                    self._abort(HTTPFailed("the answer has a bad Content-Length"))
                    return False
                if self.length < 0:
                    self._abort(HTTPFailed("the answer has a bad Content-Length"))
                    return False
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif name == b"connection":
                connection = value.lower()
        if self.chunked:
            self.length = None
        if self.length is not None and self.length > self.client.max_response:
            self._abort(HTTPFailed("the answer is too large"))
            return False
        assert self.exchange is not None
        self.persistent = (
            self.exchange.keepalive
            and self.version == b"HTTP/1.1"
            and b"close" not in connection
            and (self.length is not None or self.chunked)
        )
        return True

    def _body(self, last: bytes) -> None:
        # The body is kept as the list of pieces received, joined when it may
        # be complete: a large answer costs O(size), not O(size^2).
        if self.have > self.client.max_response + MAX_HEAD:
            self._abort(HTTPFailed("the answer is too large"))
            return
        if self.chunked:
            # Only a piece ending a line can end the last chunk.
            if last.endswith(b"\n"):
                data = b"".join(self.parts)
                self.parts = [data]
                found = _dechunk(data)
                if found is not None:
                    self._complete(found[0], data[found[1]:])
        elif self.length is not None and self.have >= self.length:
            data = b"".join(self.parts)
            self._complete(data[: self.length], data[self.length:])

    def _complete(self, body: bytes, rest: bytes = b"") -> None:
        exchange, self.exchange = self.exchange, None
        self.parts = []
        self.answered += 1
        code, persistent = self.code, self.persistent
        if exchange is not None:
            exchange.proto = None
        again: List[_Exchange] = []
        if persistent and self.queued:
            self.exchange = self.queued.popleft()  # its answer comes next
            self._reset(True)
        elif persistent:
            self.client._release(self.key, self)
        else:
            self.alive = False
            self.client._leave_lane(self)
            again, self.queued = list(self.queued), deque()
            self.transport.loseConnection()  # type: ignore[union-attr]
        for later in again:
            # The server answered and closed, as it may: the requests written
            # behind go again, in order, on a new connection (before anything
            # the answer below makes its caller send).
            later.retry(counted=False)
        if exchange is not None:
            exchange.done(code, body, persistent)
        if rest and self.exchange is not None:
            self.dataReceived(rest)

    def _abort(self, error: Exception) -> None:
        exchange, self.exchange = self.exchange, None
        self.alive = False
        self.client._leave_lane(self)
        self.transport.loseConnection()  # type: ignore[union-attr]
        if exchange is not None:
            exchange.proto = None
            exchange.fail(error)
        # The connection is out of step: what was written behind cannot be
        # read back here.
        queued, self.queued = list(self.queued), deque()
        for later in queued:
            later.proto = None
            later.fail(HTTPFailed(f"an earlier request on the connection failed ({error})"))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.alive = False
        self.client._forget(self.key, self)
        exchange, self.exchange = self.exchange, None
        queued, self.queued = list(self.queued), deque()
        why = reason.getErrorMessage() if reason is not None else "closed"
        if exchange is not None and not exchange.deferred.called:
            exchange.proto = None
            if self.in_body and self.length is None and not self.chunked:
                # the end of the connection ends the body
                exchange.done(self.code, b"".join(self.parts), False)
            elif (self.reused or self.answered) and not self.got_bytes and not exchange.retried:
                exchange.retry()
            else:
                exchange.fail(HTTPFailed(f"connection lost before the answer was complete ({why})"))
        for later in queued:
            # Written behind, no byte of their answers read.
            if later.deferred.called:
                continue
            later.proto = None
            if later.retried:
                later.fail(HTTPFailed(f"connection lost before the answer was complete ({why})"))
            else:
                later.retry()


def _dechunk(data: bytes) -> Optional[Tuple[bytes, int]]:
    """
    @return: the body of a complete chunked message (C{b""} for garbage, which
        the XML-RPC parser then refuses) and where the message ends in
        C{data}, or C{None} if it is incomplete.
    """
    out: List[bytes] = []
    at = 0
    while True:
        eol = data.find(b"\n", at)
        if eol < 0:
            return None
        try:
            size = int(data[at:eol].rstrip(b"\r").split(b";")[0], 16)
        except ValueError:
            return b"", len(data)
        at = eol + 1
        if size == 0:
            # The trailer (usually empty) ends at an empty line.
            if data.startswith(b"\r\n", at):
                return b"".join(out), at + 2
            if data.startswith(b"\n", at):
                return b"".join(out), at + 1
            end = _BLANK_LINE.search(data, at - 1)
            return (b"".join(out), end.end()) if end else None
        if size < 0:
            return b"", len(data)
        if len(data) < at + size + 2:
            return None
        out.append(data[at: at + size])
        at += size
        if data[at: at + 2] == b"\r\n":
            at += 2
        elif data[at: at + 1] == b"\n":
            at += 1
        else:
            return b"", len(data)


def dechunk(data: bytes) -> Optional[bytes]:
    """
    @return: the body of a complete chunked message (C{b""} for garbage, which
        the XML-RPC parser then refuses), or C{None} if it is incomplete.
    """
    found = _dechunk(data)
    return None if found is None else found[0]
