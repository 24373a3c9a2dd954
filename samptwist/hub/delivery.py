"""
Delivery of Standard Profile callbacks: XML-RPC POSTs to each client's
callback URL, one ordered queue per recipient, over a shared persistent HTTP
connection pool, each request bounded by a timeout.

A slow or hung recipient only holds up its own queue; every other client is
served as usual.
"""

from __future__ import annotations

import ipaddress
import socket
import xmlrpc.client
from collections import deque
from typing import Any, Deque, Dict, Optional, Tuple
from urllib.parse import urlparse

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    PartialDownloadError,
    ResponseFailed,
    _HTTP11ClientFactory,
    readBody,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer
from zope.interface import implementer

from .._log import Logger
from ..errors import SAMPValueError
from .callbacks import DeliveryFailed, ICallbackTarget

_HEADERS = Headers({b"Content-Type": [b"text/xml"], b"User-Agent": [b"samptwist-hub"]})


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
        if agent is None:
            self.pool: Optional[HTTPConnectionPool] = HTTPConnectionPool(reactor, persistent=True)
            self.pool.maxPersistentPerHost = 2
            self.pool.retryAutomatically = False
            self.pool._factory = _QuietFactory
            agent = Agent(reactor, pool=self.pool, connectTimeout=timeout)
            oneshot = HTTPConnectionPool(reactor, persistent=False)
            oneshot._factory = _QuietFactory
            self.oneshot_agent: IAgent = Agent(reactor, pool=oneshot, connectTimeout=timeout)
        else:
            self.pool = None
            self.oneshot_agent = agent
        self.agent = agent

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
        agent = self.agent if keepalive else self.oneshot_agent
        d: Deferred[Any] = agent.request(b"POST", url.encode("ascii"), _HEADERS, _Body(body))
        persistent = [True]

        def got_response(response: Any) -> Deferred:
            # Twisted pools HTTP/1.0 connections that the server then closes;
            # remember not to reuse connections to such servers.
            connection = response.headers.getRawHeaders(b"connection", [])
            persistent[0] = response.version[1:] >= (1, 1) and not any(
                b"close" in v.lower() for v in connection
            )
            if response.code != 200:
                response.deliverBody(_Discard())
                raise DeliveryFailed(f"callback answered HTTP {response.code}")
            if response.length is not None and response.length > self.max_response:
                response.deliverBody(_Discard())
                raise DeliveryFailed("callback answer too large")
            return readBody(response).addErrback(_body_despite_close)

        d.addCallback(got_response)
        d.addCallback(_parse_answer)
        d.addCallback(lambda _: persistent[0])
        d.addTimeout(self.timeout, self.reactor, onTimeoutCancel=self._timed_out)
        d.addErrback(self._translate)
        return d

    def _timed_out(self, result: Any, timeout: float) -> Failure:
        return Failure(DeliveryFailed(f"no answer within {timeout:g}s"))

    def _translate(self, f: Failure) -> None:
        if f.check(DeliveryFailed):
            f.raiseException()
        if f.check(TimeoutError, CancelledError):
            raise DeliveryFailed(f"no answer within {self.timeout:g}s")
        if f.check(ResponseFailed):
            reasons = "; ".join(r.getErrorMessage() for r in getattr(f.value, "reasons", []))
            raise DeliveryFailed(f"connection lost before the answer was complete ({reasons})")
        raise DeliveryFailed(f.getErrorMessage() or repr(f.value))

    def close(self) -> Deferred:
        """
        Close pooled connections.

        @return: a L{Deferred} firing when they are closed.
        """
        if self.pool is None:
            d: Deferred = Deferred()
            d.callback(None)
            return d
        return self.pool.closeCachedConnections()


def _body_despite_close(f: Failure) -> bytes:
    # Some clients answer without a Content-Length and close the connection
    # to end the body; that is a complete answer.
    error = f.value
    if isinstance(error, PartialDownloadError) and error.response is not None:
        return error.response
    f.raiseException()
    raise AssertionError("unreachable")


def _parse_answer(body: bytes) -> None:
    try:
        xmlrpc.client.loads(body)
    except xmlrpc.client.Fault as fault:
        raise DeliveryFailed(
            f"client answered fault: {fault.faultString}", unreachable=False
        ) from None
    except Exception:
        raise DeliveryFailed("callback answer is not XML-RPC") from None




class _QuietFactory(_HTTP11ClientFactory):
    noisy = False  # no log line per outgoing connection


@implementer(IBodyProducer)
class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred:
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _Discard(Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        pass


@implementer(ICallbackTarget)
class XmlRpcCallbackTarget:
    """
    One Standard Profile client's callback endpoint: callbacks are sent one at
    a time, in order.

    @ivar max_queue: how many callbacks may wait for this client; beyond that
        new ones fail at once (and are reported, never dropped silently).
    """

    log = Logger()

    def __init__(
        self, caller: CallbackCaller, url: str, private_key: str, max_queue: int = 10_000
    ) -> None:
        self.caller = caller
        self.url = url
        self.private_key = private_key
        self.max_queue = max_queue
        self._queue: Deque[Tuple[str, tuple, Deferred]] = deque()
        self._busy = False
        self._closed = False
        self._keepalive = True

    def _enqueue(self, method: str, args: tuple) -> Deferred:
        if self._closed:
            return _failed("client is gone", gone=True)
        if len(self._queue) >= self.max_queue:
            return _failed(f"client's queue is full ({self.max_queue} callbacks waiting)")
        d: Deferred = Deferred()
        self._queue.append((method, args, d))
        if not self._busy:
            self._next()
        return d

    def _next(self) -> None:
        while self._queue and not self._busy:
            method, args, d = self._queue.popleft()
            try:
                body = xmlrpc.client.dumps(
                    (self.private_key,) + args, method, encoding="utf-8"
                ).encode("utf-8")
            except Exception as e:  # cannot happen for checked SAMP values
                d.errback(DeliveryFailed(f"cannot encode callback: {e}", unreachable=False))
                continue
            self._busy = True
            sent = self.caller.call(self.url, body, self._keepalive)
            sent.addBoth(self._done, d)

    def _done(self, result: Any, d: Deferred) -> None:
        self._busy = False
        if isinstance(result, Failure):
            d.errback(result)
        else:
            self._keepalive = bool(result)
            d.callback(None)
        if not self._closed:
            self._next()

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveNotification", (senderId, message))

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveCall", (senderId, msgId, message))

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveResponse", (responderId, msgTag, response))

    def close(self) -> None:
        self._closed = True
        queued, self._queue = self._queue, deque()
        for _, _, d in queued:
            d.errback(DeliveryFailed("client is gone", unreachable=False, gone=True))

    def __len__(self) -> int:
        return len(self._queue)


def _failed(reason: str, gone: bool = False) -> Deferred:
    d: Deferred = Deferred()
    d.errback(DeliveryFailed(reason, unreachable=False, gone=gone))
    return d
