"""
POSTs through Twisted's L{Agent}: L{samptwist._httpclient}'s path for
C{https:} URLs (and for an injected agent in tests).  Plain http goes
through the leaner hand-written client there; this module, and with it
twisted.web.client and its TLS machinery, is imported only when needed.
"""

from __future__ import annotations

from typing import Any, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    PartialDownloadError,
    _HTTP11ClientFactory,
    readBody,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer
from zope.interface import implementer

from ._httpclient import Answer, HTTPFailed


class _QuietFactory(_HTTP11ClientFactory):
    noisy = False  # no log line per outgoing connection


@implementer(IBodyProducer)
class BytesBody:
    """
    A request body already in memory.
    """

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


def pooled_agents(
    reactor: IReactorTime, timeout: float
) -> Tuple[HTTPConnectionPool, IAgent, IAgent]:
    """
    @return: a persistent connection pool, an agent using it, and an agent
        that opens a connection per request (for HTTP/1.0-only servers).
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 2
    pool.retryAutomatically = False
    oneshot = HTTPConnectionPool(reactor, persistent=False)
    # The one private Twisted API of our HTTP clients: HTTPConnectionPool
    # has no public way to choose its protocol factory, and its default one
    # logs "Starting factory" / "Stopping factory" for every connection (a
    # line per callback in the hub's log).
    pool._factory = oneshot._factory = _QuietFactory
    return (
        pool,
        Agent(reactor, pool=pool, connectTimeout=timeout),  # type: ignore[arg-type]
        Agent(reactor, pool=oneshot, connectTimeout=timeout),  # type: ignore[arg-type]
    )


def post(
    agent: IAgent, url: str, body: bytes, max_response: int, user_agent: str = "samptwist"
) -> Deferred:
    """
    POST C{body} as C{text/xml} to C{url}.

    @return: a L{Deferred} firing with an L{Answer}, or failing with
        L{HTTPFailed} for an answer longer than C{max_response}, or with
        Twisted's own connection errors.
    """
    headers = Headers({b"Content-Type": [b"text/xml"], b"User-Agent": [user_agent.encode()]})
    d: Deferred[Any] = agent.request(b"POST", url.encode("ascii"), headers, BytesBody(body))
    persistent = [True]
    code = [0]

    def got_response(response: Any) -> Any:
        # Twisted pools HTTP/1.0 connections that the server then closes;
        # remember not to reuse connections to such servers.
        connection = response.headers.getRawHeaders(b"connection", [])
        persistent[0] = response.version[1:] >= (1, 1) and not any(
            b"close" in v.lower() for v in connection
        )
        code[0] = response.code
        if response.code != 200:
            response.deliverBody(_Discard())
            return b""
        if response.length is not None and response.length > max_response:
            response.deliverBody(_Discard())
            raise HTTPFailed("the answer is too large")
        return readBody(response).addErrback(_body_despite_close)

    d.addCallback(got_response)
    d.addCallback(lambda body: Answer(code[0], body, persistent[0]))
    return d


def _body_despite_close(f: Failure) -> bytes:
    # Some clients answer without a Content-Length and close the connection
    # to end the body; that is a complete answer.
    error = f.value
    if isinstance(error, PartialDownloadError) and error.response is not None:
        return error.response
    f.raiseException()
    raise AssertionError("unreachable")
