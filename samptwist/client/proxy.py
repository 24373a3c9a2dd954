"""
Calling the hub: Standard Profile XML-RPC requests (C{samp.hub.*}) over one
persistent HTTP connection pool, with a timeout per request and faults turned
into L{SAMPHubError}.

The HTTP side is a small interface, L{IPoster}, so that tests (and users'
tests) can talk to a hub resource in memory instead of over a socket.
"""

from __future__ import annotations

from typing import Any, Optional, Set

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, fail
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    from typing_extensions import Protocol  # type: ignore[assignment]

from .._httpclient import Answer, HTTPClient
from .._log import Logger
from .._xmlrpc import Fault, NotXmlRpc, encode_call, parse_answer
from ..constants import HUB_PREFIX
from ..errors import SAMPHubError
from .errors import HubUnreachable


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


class HTTPPoster:
    """
    L{IPoster} over samptwist's HTTP client (L{samptwist._httpclient}):
    persistent connections to the hub, and a connection per request to a hub
    that closes after each answer (Python's C{xmlrpc.server}, as in
    astropy's hub).
    """

    def __init__(
        self, reactor: Any, connect_timeout: float = 10.0, idle_timeout: float = 30.0
    ) -> None:
        """
        @param connect_timeout: seconds allowed to connect.
        @param idle_timeout: seconds an idle connection is kept: less than
            the hub's own idle time-out (60 s by default), so that a request
            never races the hub's close.
        """
        # No time-out of its own: HubProxy bounds (or not) each call.
        self.http = HTTPClient(
            reactor, timeout=None, connect_timeout=connect_timeout, max_response=_MAX_ANSWER,
            user_agent="samptwist-client", idle_timeout=idle_timeout,
        )
        #: hub URLs that closed the connection after an answer
        self._no_keepalive: Set[str] = set()

    def post(self, url: str, body: bytes) -> Deferred:
        d = self.http.post(url, body, keepalive=url not in self._no_keepalive)

        def got(answer: Answer) -> bytes:
            if not answer.persistent:
                self._no_keepalive.add(url)
            if answer.code != 200:
                raise HubUnreachable(f"hub answered HTTP {answer.code}")
            return answer.body

        d.addCallback(got)
        return d

    def close(self) -> Deferred:
        return self.http.close()


#: The name of L{HTTPPoster} before it had its own HTTP client (it used
#: treq); kept so that code naming it still works.
TreqPoster = HTTPPoster
#: most bytes of one answer from the hub (a getMetadata of a large icon, a
#: callAndWait's response: SAMP messages may be large)
_MAX_ANSWER = 256 << 20


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
        self.poster: IPoster = poster if poster is not None else HTTPPoster(reactor)
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
            body = encode_call(HUB_PREFIX + method, args)
        except Exception as e:
            return fail(SAMPHubError(f"cannot encode {method} arguments: {e}"))
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
        return parse_answer(body)
    except Fault as fault:
        raise SAMPHubError(str(fault.faultString), code=_int(fault.faultCode)) from None
    except NotXmlRpc:
        raise HubUnreachable(f"the hub's answer to {method} is not XML-RPC") from None


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
