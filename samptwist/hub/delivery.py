"""
Delivery of Standard Profile callbacks: XML-RPC POSTs to each client's
callback URL, one ordered queue per recipient, over a shared persistent HTTP
connection pool, each request bounded by a timeout.

A slow or hung recipient only holds up its own queue; every other client is
served as usual.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import xmlrpc.client
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .._log import Logger
from ..errors import SAMPValueError
from ..types import samp_size
from .callbacks import DeliveryFailed, ICallbackTarget, QueueFull
from .limits import DEFAULT_LIMITS, MAX_CALLBACK_URL

if TYPE_CHECKING:
    from twisted.web.client import HTTPConnectionPool
    from twisted.web.iweb import IAgent


_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_HOSTNAME = socket.gethostname().lower().rstrip(".")


def is_local_host(host: str) -> bool:
    """
    @return: whether C{host} names this machine without a DNS look-up: a
        loopback address, C{localhost}, or this machine's host name (alone or
        as the first label of a fully qualified name, which is what astropy
        and pyvo clients use when the network is up).
    """
    host = host.strip("[]").lower().rstrip(".")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    return (
        host in _LOCAL_NAMES
        or host.endswith(".localhost")
        or (bool(_HOSTNAME) and (host == _HOSTNAME or host.startswith(_HOSTNAME + ".")))
    )


def check_callback_url(url: Any) -> str:
    """
    @return: C{url}, if it is an absolute C{http:}/C{https:} URL on this
        machine (see L{is_local_host}).
    @raise SAMPValueError: otherwise: the hub calls back only local clients.
    """
    if not isinstance(url, str):
        raise SAMPValueError("callback URL must be a string")
    if len(url) > MAX_CALLBACK_URL:
        raise SAMPValueError(
            f"callback URL is too large: {len(url)} characters, over the hub's limit of "
            f"{MAX_CALLBACK_URL}"
        )
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SAMPValueError(f"malformed callback URL {url!r:.80}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SAMPValueError(f"callback URL {url!r:.80} is not an absolute http URL")
    if not is_local_host(parsed.hostname):
        raise SAMPValueError(
            f"callback URL {url!r:.80} is not on this machine: the hub only calls back "
            "loopback addresses, localhost or this host's own name"
        )
    return url


class CallbackCaller:
    """
    Makes outgoing XML-RPC calls for the hub over one persistent connection
    pool.

    @ivar timeout: seconds allowed for one callback, connection to answer.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: float = 30.0,
        agent: Optional[IAgent] = None,
        max_response: int = 1 << 20,
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.max_response = max_response
        self._idle: Dict[Tuple[str, int], List[_CallbackHTTP]] = {}
        self._connections: set = set()
        self._encoded: Dict[tuple, Tuple[tuple, bytes]] = {}
        self._encoded_bytes = 0
        self.direct = agent is None
        # Twisted's Agent (and its TLS stack) is set up on the first https
        # callback: a hub whose clients all use http never imports it.
        self.pool: Optional[HTTPConnectionPool] = None
        self.agent: Optional[IAgent] = agent
        self.oneshot_agent: Optional[IAgent] = agent

    def _agent(self, keepalive: bool) -> IAgent:
        if self.agent is None or self.oneshot_agent is None:
            from .agentpost import pooled_agents

            self.pool, self.agent, self.oneshot_agent = pooled_agents(self.reactor, self.timeout)
        return self.agent if keepalive else self.oneshot_agent

    def call(self, url: str, body: bytes, keepalive: bool = True) -> Deferred:
        """
        POST an XML-RPC request.

        @param keepalive: whether to use (and leave open) a pooled persistent
            connection; pass C{False} for servers that speak only HTTP/1.0.
        @return: a L{Deferred} firing with whether the server allows
            persistent connections, or failing with L{DeliveryFailed}:
            C{unreachable=False} for an XML-RPC fault, C{True} for anything
            else (refused, timed out, HTTP error, not XML-RPC).
        """
        if self.direct and url.startswith("http:"):
            return self._direct(url, body, keepalive)
        from .agentpost import post

        d = post(self._agent(keepalive), url, body, self.max_response)
        d.addCallback(_check_answer)
        d.addTimeout(self.timeout, self.reactor, onTimeoutCancel=self._timed_out)
        d.addErrback(self._translate)
        return d

    def _timed_out(self, result: Any, timeout: float) -> Failure:
        return Failure(DeliveryFailed(f"no answer within {timeout:g}s"))

    # -- the direct HTTP/1.1 client --------------------------------------
    #
    # Twisted's Agent costs more CPU per request than everything else a
    # delivery does (Headers objects, Deferred chains, a pool keyed per
    # request).  Callbacks need far less: one POST at a time per recipient
    # on a persistent connection, a status line, Content-Length or close.

    def _direct(self, url: str, body: bytes, keepalive: bool) -> Deferred:
        parsed = urlparse(url)
        host = parsed.hostname or "127.0.0.1"
        port = parsed.port or 80
        path = (parsed.path or "/") + ("?" + parsed.query if parsed.query else "")
        netloc = parsed.netloc.rpartition("@")[2]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: text/xml\r\n"
            f"User-Agent: samptwist-hub\r\nContent-Length: {len(body)}\r\n"
            + ("" if keepalive else "Connection: close\r\n")
            + "\r\n"
        ).encode("latin-1")
        exchange = _Exchange(self, (host, port), head, body, keepalive)
        exchange.start()
        return exchange.deferred

    def _take_idle(self, key: Tuple[str, int]) -> Optional[_CallbackHTTP]:
        idle = self._idle.get(key)
        while idle:
            proto = idle.pop()
            if proto.transport is not None and proto.alive:
                return proto
        return None

    def _release(self, key: Tuple[str, int], proto: _CallbackHTTP) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= _MAX_IDLE_PER_HOST:
            proto.transport.loseConnection()  # type: ignore[union-attr]
        else:
            proto.exchange = None
            idle.append(proto)

    def _forget(self, key: Tuple[str, int], proto: _CallbackHTTP) -> None:
        self._connections.discard(proto)
        idle = self._idle.get(key)
        if idle and proto in idle:
            idle.remove(proto)
            if not idle:
                del self._idle[key]

    def encode(self, method: str, private_key: str, args: tuple) -> bytes:
        """
        @return: the XML-RPC request C{method(private_key, *args)}.

        The arguments after the key are serialised once and reused while the
        same objects are passed again: a notifyAll or hub event to N
        recipients marshals its message once, not N times.
        """
        # Keyed by identity; the entry holds the objects, so an id cannot be
        # reused while it is cached.
        cache_key = (method,) + tuple(id(a) for a in args)
        cached = self._encoded.get(cache_key)
        if cached is not None:
            tail = cached[1]
        else:
            tail = xmlrpc.client.Marshaller("utf-8", allow_none=False).dumps(args).encode(
                "utf-8"
            )
            # Marshaller.dumps gives "<params>\n<param>...</param>\n...</params>\n"
            tail = tail[len(b"<params>\n"):]
            self._encoded[cache_key] = (args, tail)
            self._encoded_bytes += len(tail)
            while len(self._encoded) > 1 and (
                len(self._encoded) > _ENCODED_ENTRIES or self._encoded_bytes > _ENCODED_BYTES
            ):
                oldest = next(iter(self._encoded))
                self._encoded_bytes -= len(self._encoded.pop(oldest)[1])
        key = xmlrpc.client.escape(private_key).encode("utf-8")
        return b"".join((
            b"<?xml version='1.0' encoding='utf-8'?>\n<methodCall>\n<methodName>",
            xmlrpc.client.escape(method).encode("utf-8"),
            b"</methodName>\n<params>\n<param>\n<value><string>",
            key,
            b"</string></value>\n</param>\n",
            tail,
            b"</methodCall>\n",
        ))

    def _translate(self, f: Failure) -> None:
        if f.check(DeliveryFailed):
            f.raiseException()
        if f.check(TimeoutError, CancelledError):
            raise DeliveryFailed(f"no answer within {self.timeout:g}s")
        from twisted.web.client import ResponseFailed

        if f.check(ResponseFailed):
            reasons = "; ".join(r.getErrorMessage() for r in getattr(f.value, "reasons", []))
            raise DeliveryFailed(f"connection lost before the answer was complete ({reasons})")
        raise DeliveryFailed(f.getErrorMessage() or repr(f.value))

    def close(self) -> Deferred:
        """
        Close pooled connections.

        @return: a L{Deferred} firing when they are closed.
        """
        for proto in list(self._connections):
            if proto.transport is not None:
                proto.transport.loseConnection()
        self._idle.clear()
        if self.pool is None:
            d: Deferred = Deferred()
            d.callback(None)
            return d
        return self.pool.closeCachedConnections()


def _check_answer(answer: Tuple[bool, bytes]) -> bool:
    persistent, body = answer
    _parse_answer(body)
    return persistent


def _parse_answer(body: bytes) -> None:
    try:
        xmlrpc.client.loads(body)
    except xmlrpc.client.Fault as fault:
        raise DeliveryFailed(
            f"client answered fault: {fault.faultString}", unreachable=False
        ) from None
    except Exception:
        raise DeliveryFailed("callback answer is not XML-RPC") from None




_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_MAX_IDLE_PER_HOST = 256
_MAX_HEAD = 64 * 1024
_ENCODED_ENTRIES = 16
_ENCODED_BYTES = 32 << 20


class _Exchange:
    """
    One callback POST on the direct client: finds or opens a connection,
    bounds the whole exchange by the caller's time-out, and fires
    L{deferred} like L{CallbackCaller.call}.
    """

    def __init__(
        self,
        caller: CallbackCaller,
        key: Tuple[str, int],
        head: bytes,
        body: bytes,
        keepalive: bool,
    ) -> None:
        self.caller = caller
        self.key = key
        self.head = head
        self.body = body
        self.keepalive = keepalive
        self.deferred: Deferred = Deferred()
        self.proto: Optional[_CallbackHTTP] = None
        self.connector: Any = None
        self.retried = False
        self.timer: Optional[IDelayedCall] = None

    def start(self) -> None:
        caller = self.caller
        self.timer = caller.reactor.callLater(caller.timeout, self._timed_out)
        proto = caller._take_idle(self.key) if self.keepalive else None
        if proto is not None:
            proto.send(self, reused=True)
        else:
            self.connect()

    def connect(self) -> None:
        caller = self.caller
        self.connector = caller.reactor.connectTCP(  # type: ignore[attr-defined]
            self.key[0], self.key[1], _CallbackHTTPFactory(self), timeout=caller.timeout
        )

    def retry(self) -> None:
        # A pooled connection the client had closed: try once on a new one.
        self.retried = True
        self.proto = None
        self.connect()

    def _timed_out(self) -> None:
        self.timer = None
        proto, self.proto = self.proto, None
        self.fail(DeliveryFailed(f"no answer within {self.caller.timeout:g}s"))
        if proto is not None:
            proto.exchange = None
            if proto.transport is not None:
                proto.transport.abortConnection()  # type: ignore[attr-defined]
        elif self.connector is not None:
            self.connector.stopConnecting()

    def fail(self, error: Exception) -> None:
        if self.deferred.called:
            return
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.deferred.errback(error)

    def done(self, code: int, body: bytes, persistent: bool) -> None:
        if self.deferred.called:
            return
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if code != 200:
            self.deferred.errback(DeliveryFailed(f"callback answered HTTP {code}"))
            return
        try:
            _parse_answer(body)
        except DeliveryFailed as e:
            self.deferred.errback(e)
            return
        self.deferred.callback(persistent)


class _CallbackHTTPFactory(ClientFactory):
    noisy = False

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange

    def buildProtocol(self, addr: Any) -> _CallbackHTTP:
        return _CallbackHTTP(self.exchange)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.exchange.fail(DeliveryFailed(reason.getErrorMessage() or "connection failed"))


class _CallbackHTTP(Protocol):
    """
    A minimal HTTP/1.1 client connection: one request at a time; answers
    delimited by Content-Length, chunked encoding or the end of the
    connection (JSAMP's HTTP/1.0 server).
    """

    def __init__(self, exchange: _Exchange) -> None:
        self.caller = exchange.caller
        self.key = exchange.key
        self.exchange: Optional[_Exchange] = exchange
        self.alive = True
        self._reset(False)

    def _reset(self, reused: bool) -> None:
        self.reused = reused
        self.buf = b""
        self.code = 0
        self.version = b""
        self.length: Optional[int] = None
        self.chunked = False
        self.persistent = False
        self.in_body = False
        self.got_bytes = False

    def connectionMade(self) -> None:
        self.caller._connections.add(self)
        try:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
        except Exception:
            pass
        exchange, self.exchange = self.exchange, None
        if exchange is None or exchange.deferred.called:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.send(exchange, reused=False)

    def send(self, exchange: _Exchange, reused: bool) -> None:
        self.exchange = exchange
        exchange.proto = self
        self._reset(reused)
        self.transport.writeSequence([exchange.head, exchange.body])  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.exchange is None:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.got_bytes = True
        self.buf += data
        if not self.in_body:
            # The header ends at a blank line; some servers (SAOImage DS9's
            # Tcl one) end lines with a bare LF instead of CRLF.
            blank = _BLANK_LINE.search(self.buf)
            if blank is None:
                if len(self.buf) > _MAX_HEAD:
                    self._abort(DeliveryFailed("callback answer has an oversized header"))
                return
            if not self._head(self.buf[: blank.start()]):
                return
            self.buf = self.buf[blank.end():]
            self.in_body = True
        self._body()

    def _head(self, head: bytes) -> bool:
        lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
        parts = lines[0].split(None, 2)
        try:
            self.version, self.code = parts[0], int(parts[1])
        except (IndexError, ValueError):
            self._abort(DeliveryFailed("callback answer is not HTTP"))
            return False
        connection = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    self.length = int(value)
                except ValueError:
                    self._abort(DeliveryFailed("callback answer has a bad Content-Length"))
                    return False
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif name == b"connection":
                connection = value.lower()
        if self.chunked:
            self.length = None
        if self.length is not None and self.length > self.caller.max_response:
            self._abort(DeliveryFailed("callback answer too large"))
            return False
        assert self.exchange is not None
        self.persistent = (
            self.exchange.keepalive
            and self.version == b"HTTP/1.1"
            and b"close" not in connection
            and (self.length is not None or self.chunked)
        )
        return True

    def _body(self) -> None:
        if len(self.buf) > self.caller.max_response + _MAX_HEAD:
            self._abort(DeliveryFailed("callback answer too large"))
            return
        if self.chunked:
            body = _dechunk(self.buf)
            if body is not None:
                self._complete(body)
        elif self.length is not None and len(self.buf) >= self.length:
            self._complete(self.buf[: self.length])

    def _complete(self, body: bytes) -> None:
        exchange, self.exchange = self.exchange, None
        self.buf = b""
        if self.persistent:
            self.caller._release(self.key, self)
        else:
            self.alive = False
            self.transport.loseConnection()  # type: ignore[union-attr]
        if exchange is not None:
            exchange.proto = None
            exchange.done(self.code, body, self.persistent)

    def _abort(self, error: Exception) -> None:
        exchange, self.exchange = self.exchange, None
        self.alive = False
        self.transport.loseConnection()  # type: ignore[union-attr]
        if exchange is not None:
            exchange.proto = None
            exchange.fail(error)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.alive = False
        self.caller._forget(self.key, self)
        exchange, self.exchange = self.exchange, None
        if exchange is None or exchange.deferred.called:
            return
        exchange.proto = None
        if self.in_body and self.length is None and not self.chunked:
            exchange.done(self.code, self.buf, False)  # the end of the connection ends the body
        elif self.reused and not self.got_bytes and not exchange.retried:
            exchange.retry()
        else:
            why = reason.getErrorMessage() if reason is not None else "closed"
            exchange.fail(
                DeliveryFailed(f"connection lost before the answer was complete ({why})")
            )


def _dechunk(data: bytes) -> Optional[bytes]:
    """@return: the body of a complete chunked message, or C{None} if incomplete."""
    out: List[bytes] = []
    at = 0
    while True:
        eol = data.find(b"\r\n", at)
        if eol < 0:
            return None
        try:
            size = int(data[at:eol].split(b";")[0], 16)
        except ValueError:
            return b""  # garbage: let the XML-RPC parser reject it
        at = eol + 2
        if size == 0:
            return b"".join(out)
        if len(data) < at + size + 2:
            return None
        out.append(data[at: at + size])
        at += size + 2


@implementer(ICallbackTarget)
class XmlRpcCallbackTarget:
    """
    One Standard Profile client's callback endpoint: callbacks are sent one at
    a time, in order.

    @ivar max_queue: how many callbacks may wait for this client; beyond that
        new ones fail at once (and are reported, never dropped silently).
    @ivar max_queue_bytes: how many bytes of messages (L{samp_size}) may
        wait for it; one callback always fits into an empty queue.
    @ivar queued_bytes: the size of the callbacks waiting now.

    Cancelling the L{Deferred} of a callback that is still queued removes it
    from the queue (the hub does so for calls that ended before delivery).
    """

    log = Logger()

    def __init__(
        self,
        caller: CallbackCaller,
        url: str,
        private_key: str,
        max_queue: int = DEFAULT_LIMITS.max_queue,
        max_queue_bytes: int = DEFAULT_LIMITS.max_queue_bytes,
    ) -> None:
        self.caller = caller
        self.url = url
        self.private_key = private_key
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.queued_bytes = 0
        self._queue: Deque[Tuple[str, tuple, Deferred, int]] = deque()
        self._busy = False
        self._closed = False
        self._keepalive = True

    def _enqueue(self, method: str, args: tuple) -> Deferred:
        if self._closed:
            return _failed("client is gone", gone=True)
        if len(self._queue) >= self.max_queue:
            return fail(QueueFull(
                f"client's queue is full ({self.max_queue} callbacks waiting, its limit: "
                "max-queue)"
            ))
        size = samp_size(args)
        if self._queue and self.queued_bytes + size > self.max_queue_bytes:
            return fail(QueueFull(
                f"client's queue is full ({self.queued_bytes} bytes waiting; this callback "
                f"of {size} bytes would pass its limit of {self.max_queue_bytes}: "
                "max-queue-bytes)"
            ))
        entry: Tuple[str, tuple, Deferred, int]

        def cancel(d: Deferred) -> None:
            # Still queued: take it out.  In flight: it is answered anyway
            # and the answer is ignored (see _done).
            try:
                self._queue.remove(entry)
            except ValueError:
                return
            self.queued_bytes -= size

        d: Deferred = Deferred(cancel)
        entry = (method, args, d, size)
        self._queue.append(entry)
        self.queued_bytes += size
        if not self._busy:
            self._next()
        return d

    def _next(self) -> None:
        while self._queue and not self._busy:
            method, args, d, size = self._queue.popleft()
            self.queued_bytes -= size
            try:
                body = self.caller.encode(method, self.private_key, args)
            except Exception as e:  # cannot happen for checked SAMP values
                d.errback(DeliveryFailed(f"cannot encode callback: {e}", unreachable=False))
                continue
            self._busy = True
            sent = self.caller.call(self.url, body, self._keepalive)
            sent.addBoth(self._done, d)

    def _done(self, result: Any, d: Deferred) -> None:
        self._busy = False
        if not isinstance(result, Failure):
            self._keepalive = bool(result)
        if d.called:
            pass  # cancelled while in flight: nobody waits for the outcome
        elif isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(None)
        if not self._closed:
            self._next()

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveNotification", (senderId, message))

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveCall", (senderId, msgId, message))

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveResponse", (responderId, msgTag, response))

    def discard_queued(self) -> None:
        """
        Fail every callback still waiting (not the one in flight), as for a
        client that is gone; later callbacks are queued as usual.
        """
        queued, self._queue = self._queue, deque()
        self.queued_bytes = 0
        for _, _, d, _ in queued:
            d.errback(DeliveryFailed("client is gone", unreachable=False, gone=True))

    def discard_call(self, msg_id: str) -> bool:
        # A queued call's Deferred is cancelled by the hub, which drops it.
        return False

    def close(self) -> None:
        self._closed = True
        queued, self._queue = self._queue, deque()
        self.queued_bytes = 0
        for _, _, d, _ in queued:
            d.errback(DeliveryFailed("client is gone", unreachable=False, gone=True))

    def __len__(self) -> int:
        return len(self._queue)


def _failed(reason: str, gone: bool = False) -> Deferred:
    d: Deferred = Deferred()
    d.errback(DeliveryFailed(reason, unreachable=False, gone=gone))
    return d
