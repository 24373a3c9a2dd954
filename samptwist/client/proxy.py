"""
Calling the hub: Standard Profile XML-RPC requests (C{samp.hub.*}) over one
persistent HTTP connection pool, with a timeout per request and faults turned
into L{SAMPHubError}.

The HTTP side is a small interface, L{IPoster}, so that tests (and users'
tests) can talk to a hub resource in memory instead of over a socket.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, Optional

import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory
from twisted.web.http_headers import Headers

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    from typing_extensions import Protocol  # type: ignore[assignment]

from .._log import Logger
from ..errors import SAMPHubError
from .errors import HubUnreachable

PREFIX = "samp.hub."
_HEADERS = Headers({b"Content-Type": [b"text/xml"], b"User-Agent": [b"samptwist-client"]})


class IPoster(Protocol):
    """
    What L{HubProxy} needs from HTTP: POST a body, get the answer's body.
    """

    def post(self, url: str, body: bytes) -> Deferred:
        """
        POST C{body} (an XML-RPC request) to C{url}.

        @return: a cancellable L{Deferred} firing with the answer's body
            (C{bytes}), or failing with L{HubUnreachable} for a non-200
            answer or any connection error.
        """

    def close(self) -> Deferred:
        """
        Release pooled connections.

        @return: a L{Deferred} firing when they are closed.
        """


class _QuietFactory(_HTTP11ClientFactory):
    noisy = False


class TreqPoster:
    """
    L{IPoster} over treq with a persistent L{HTTPConnectionPool}.
    """

    def __init__(self, reactor: Any, connect_timeout: float = 10.0) -> None:
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = 4
        self.pool.retryAutomatically = False
        # Drop idle connections before the hub does (its default idle
        # time-out is 60 s), so a request never races the hub's close.
        self.pool.cachedConnectionTimeout = 30
        self.pool._factory = _QuietFactory
        self.http = HTTPClient(Agent(reactor, pool=self.pool, connectTimeout=connect_timeout))
        oneshot = HTTPConnectionPool(reactor, persistent=False)
        oneshot._factory = _QuietFactory
        self._oneshot = HTTPClient(Agent(reactor, pool=oneshot, connectTimeout=connect_timeout))
        #: Servers that speak HTTP/1.0 or close after each answer (Python's
        #: xmlrpc.server, as in astropy's hub) get a fresh connection per call:
        #: Twisted would otherwise pool connections those servers close.
        self._no_keepalive: set = set()

    def post(self, url: str, body: bytes) -> Deferred:
        http = self._oneshot if url in self._no_keepalive else self.http
        d = http.post(url, data=body, headers=_HEADERS)

        def got(response: Any) -> Deferred:
            connection = response.headers.getRawHeaders(b"connection", [])
            if response.version[1:] < (1, 1) or any(b"close" in v.lower() for v in connection):
                self._no_keepalive.add(url)
            if response.code != 200:
                d2 = treq.content(response)
                d2.addCallback(
                    lambda _: Failure(HubUnreachable(f"hub answered HTTP {response.code}"))
                )
                return d2
            return treq.content(response)

        d.addCallback(got)
        return d

    def close(self) -> Deferred:
        return self.pool.closeCachedConnections()


class HubProxy:
    """
    The hub's Standard Profile methods, called by their abstract names.

    @ivar url: the hub's C{samp.hub.xmlrpc.url}.
    @ivar timeout: seconds allowed for one request (except where a call
        passes its own).
    """

    log = Logger()

    def __init__(
        self,
        url: str,
        reactor: IReactorTime,
        poster: Optional[IPoster] = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.reactor = reactor
        self.poster: IPoster = poster if poster is not None else TreqPoster(reactor)
        self.timeout = timeout

    def call(self, method: str, *args: Any, timeout: Optional[float] = -1.0) -> Deferred:
        """
        Call C{samp.hub.<method>(*args)}.

        @param timeout: seconds to wait for the answer; C{-1} for the
            proxy's default, C{None} to wait for ever.
        @return: a cancellable L{Deferred} firing with the method's XML-RPC
            result, or failing with L{SAMPHubError} (the hub answered a
            fault; the message is its faultString), L{HubUnreachable} (no
            usable answer) or L{twisted.internet.defer.TimeoutError}.
        """
        try:
            body = xmlrpc.client.dumps(
                tuple(args), PREFIX + method, encoding="utf-8", allow_none=False
            ).encode("utf-8")
        except Exception as e:
            return _fail(SAMPHubError(f"cannot encode {method} arguments: {e}"))
        d = self.poster.post(self.url, body)
        d.addCallback(_parse_answer, method)
        if timeout == -1.0:
            timeout = self.timeout
        if timeout is not None:
            d.addTimeout(timeout, self.reactor)
        d.addErrback(_translate, method, self.url)
        return d

    def close(self) -> Deferred:
        """
        Close pooled connections.

        @return: a L{Deferred} firing when they are closed.
        """
        return self.poster.close()


def _parse_answer(body: bytes, method: str) -> Any:
    try:
        (result,), _ = xmlrpc.client.loads(body, use_builtin_types=False)
    except xmlrpc.client.Fault as fault:
        raise SAMPHubError(str(fault.faultString), code=_int(fault.faultCode)) from None
    except Exception:
        raise HubUnreachable(f"the hub's answer to {method} is not XML-RPC") from None
    return result


def _int(code: Any) -> int:
    try:
        return int(code)
    except (TypeError, ValueError):
        return 1


def _translate(f: Failure, method: str, url: str) -> Failure:
    if f.check(SAMPHubError, CancelledError, TimeoutError):
        return f
    reason = f.getErrorMessage() or f.type.__name__  # type: ignore[union-attr]
    raise HubUnreachable(f"cannot reach the hub at {url} for {method}: {reason}")


def _fail(error: Exception) -> Deferred:
    d: Deferred = Deferred()
    d.errback(error)
    return d
