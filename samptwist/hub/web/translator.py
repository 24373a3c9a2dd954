"""
The URL translator (WEB-URL-*, notes 17-18): C{GET
/translator/TOKEN?ref=URL} fetches C{URL} on behalf of the web client
owning C{TOKEN} and returns its content with CORS headers, so that the page
can read a table or image a desktop application told it about.

Only URLs the L{UrlTracker} permits for that client are fetched; redirects
are followed only to public http(s) hosts (re-checked at every hop);
responses are limited in size and time.  Remote fetches use Twisted's
L{Agent}; local files are streamed in small chunks, one per reactor turn,
so the reactor is never blocked (no threads).
"""

from __future__ import annotations

import mimetypes
import os
import stat
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from ..._http import watch_answerable
from ..._log import Logger
from ..._net import file_url_is_local
from .urls import UrlTracker

#: Default largest translated body, in bytes.
MAX_SIZE = 64 * 1024 * 1024
#: Default seconds a translation may take.
FETCH_TIMEOUT = 60.0
#: Most redirects followed.
MAX_REDIRECTS = 5


class TooLarge(Exception):
    """
    The body exceeded the translator's size limit.
    """


class _Collect(Protocol):
    def __init__(self, limit: int, done: Deferred) -> None:
        self.limit = limit
        self.done = done
        self.parts: list = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            if not self.done.called:
                self.done.errback(TooLarge())
            self.transport.stopProducing()  # type: ignore[union-attr]
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.done.called:
            return
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def _discard_body(response: Any) -> None:
    """Drop a response's body (its size-limit failure is expected)."""
    ignored: Deferred = Deferred()
    ignored.addErrback(lambda _: None)
    response.deliverBody(_Collect(0, ignored))


class Translator(Resource):
    """
    C{/translator/}: one child path segment, the client's translator token.
    """

    isLeaf = True
    log = Logger()

    def __init__(
        self,
        reactor: Any,
        tracker: UrlTracker,
        lookup: Callable[[str], Any],
        *,
        max_size: int = MAX_SIZE,
        timeout: float = FETCH_TIMEOUT,
        agent: Any = None,
    ) -> None:
        """
        @param lookup: maps a translator token to the web client's state
            (with C{.permitted} and C{.client}), or C{None}.
        @param agent: an L{IAgent<twisted.web.iweb.IAgent>} for remote fetches (default: a
            non-persistent L{Agent}, which follows no redirects by itself).
        """
        super().__init__()
        self.reactor = reactor
        self.tracker = tracker
        self.lookup = lookup
        self.max_size = max_size
        self.timeout = timeout
        if agent is None:
            agent = Agent(
                reactor, pool=HTTPConnectionPool(reactor, persistent=False), connectTimeout=timeout
            )
        self.agent = agent

    def _error(self, request: Any, code: int, text: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (text + "\n").encode("utf-8")

    def render_GET(self, request: Any) -> Any:
        state = None
        if len(request.postpath) == 1:
            try:
                state = self.lookup(request.postpath[0].decode("ascii"))
            except UnicodeDecodeError:
                state = None
        if state is None:
            return self._error(
                request, 403, "unknown translator key (not a registered web client)"
            )
        values = request.args.get(b"ref")
        if not values:
            return self._error(request, 404, "no URL to translate: append ?ref=URL")
        try:
            url = values[0].decode("ascii")
        except UnicodeDecodeError:
            return self._error(request, 400, "malformed URL (not ASCII)")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            return self._error(request, 400, "malformed URL")
        if not parts.scheme:
            return self._error(request, 400, "malformed URL (no scheme)")
        refusal = self.tracker.check(url, state.permitted)
        if refusal is not None:
            self.log.warn(
                "URL translation for {client_id} refused: {url}: {why}",
                client_id=state.client.public_id,
                url=url[:300],
                why=refusal,
            )
            return self._error(request, 403, f"translation refused: {refusal}")
        self.log.info(
            "translating {url} for {client_id}", url=url[:300], client_id=state.client.public_id
        )
        if parts.scheme.lower() == "file":
            return self._file(request, parts)
        self._fetch(request, url, state)
        return NOT_DONE_YET

    # -- local files ---------------------------------------------------------

    def _file(self, request: Any, parts: Any) -> Any:
        if not file_url_is_local(parts.netloc):
            return self._error(request, 403, "translation refused: file: URL on another host")
        path = url2pathname(parts.path)
        try:
            # O_NONBLOCK: opening a FIFO must not hang the reactor.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as e:
            return self._error(request, 404, f"cannot open file: {e.strerror}")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return self._error(request, 403, "translation refused: not a regular file")
        if info.st_size > self.max_size:
            os.close(fd)
            return self._error(
                request, 413, f"file larger than the translator's limit ({self.max_size} bytes)"
            )
        handle = os.fdopen(fd, "rb")
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        request.setHeader(b"content-type", kind.encode("ascii"))
        request.setHeader(b"content-length", str(info.st_size).encode("ascii"))
        if request.method == b"HEAD":
            handle.close()
            return b""
        _FileStreamer(self.reactor, handle, request).start()
        return NOT_DONE_YET

    # -- remote URLs ---------------------------------------------------------

    def _fetch(self, request: Any, url: str, state: Any) -> None:
        current: list = [None]

        def get(target: str, hops: int) -> Deferred:
            d = self.agent.request(
                b"GET",
                target.encode("ascii"),
                Headers({b"User-Agent": [b"samptwist-hub URL translator"]}),
            )
            current[0] = d
            d.addCallback(got, target, hops)
            return d

        def got(response: Any, target: str, hops: int) -> Any:
            location = response.headers.getRawHeaders(b"location", [None])[0]
            if response.code in (301, 302, 303, 307, 308) and location:
                _discard_body(response)
                if hops >= MAX_REDIRECTS:
                    raise _Refused(502, "too many redirects")
                next_url = urljoin(target, location.decode("ascii", "replace"))
                why = self.tracker.redirect_allowed(next_url, state.permitted)
                if why is not None:
                    raise _Refused(403, f"translation refused: {why}")
                return get(next_url, hops + 1)
            if response.length is not None and response.length > self.max_size:
                _discard_body(response)
                raise _Refused(413, f"larger than the translator's limit ({self.max_size} bytes)")
            body: Deferred = Deferred()
            response.deliverBody(_Collect(self.max_size, body))
            kind = response.headers.getRawHeaders(b"content-type", [None])[0]
            return body.addCallback(lambda data: (response.code, kind, data))

        answerable = watch_answerable(request)  # first: it must know before failed() runs
        overall = get(url, 0)
        overall.addTimeout(self.timeout, self.reactor)
        request.notifyFinish().addErrback(lambda _: overall.cancel())

        def write(result: Any) -> None:
            code, kind, data = result
            request.setResponseCode(code)
            request.setHeader(b"content-type", kind or b"application/octet-stream")
            request.setHeader(b"content-length", str(len(data)).encode("ascii"))
            request.write(data)
            request.finish()

        def failed(f: Failure) -> None:
            if not answerable():
                return
            if isinstance(f.value, _Refused):
                code, text = f.value.code, f.value.text
            elif f.check(TooLarge):
                code, text = 413, f"larger than the translator's limit ({self.max_size} bytes)"
            elif f.check(TimeoutError, CancelledError):
                code, text = 504, f"no complete answer within {self.timeout:g}s"
            else:
                code, text = 502, f"cannot fetch the URL: {f.getErrorMessage()}"
            self.log.warn(
                "URL translation for {client_id} failed: {text}",
                client_id=state.client.public_id,
                text=text,
            )
            request.write(self._error(request, code, text))
            request.finish()

        overall.addCallbacks(write, failed)
        overall.addErrback(lambda f: self.log.failure("translator", f))


@implementer(IPushProducer)
class _FileStreamer:
    """
    Streams a file to a request in chunks, one chunk per reactor turn, and
    pauses while the connection's buffer is full: a large file never holds
    the reactor.
    """

    CHUNK = 64 * 1024

    def __init__(self, reactor: Any, handle: Any, request: Any) -> None:
        self.reactor = reactor
        self.handle = handle
        self.request = request
        self.paused = False
        self.done = False
        self._call: Any = None

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addErrback(lambda _: self.stopProducing())
        self._schedule()

    def _schedule(self) -> None:
        if not self.paused and not self.done and self._call is None:
            self._call = self.reactor.callLater(0, self._step)

    def _step(self) -> None:
        self._call = None
        if self.done or self.paused:
            return
        chunk = self.handle.read(self.CHUNK)
        if not chunk:
            self._finish()
            self.request.finish()
            return
        self.request.write(chunk)
        self._schedule()

    def _finish(self) -> None:
        self.done = True
        self.handle.close()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.request.unregisterProducer()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        if not self.done:
            self._finish()


class _Refused(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
