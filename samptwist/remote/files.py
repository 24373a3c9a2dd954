"""
Files that cross with messages.

A message leaving this side whose values hold a C{file://} URL of a
readable file, or an C{http://localhost...} / C{http://127.0.0.1...} URL,
has each such URL replaced by C{http://127.0.0.1:PORT/TOKEN/NAME}, where
PORT is the other side's file server and TOKEN an unguessable name this
side keeps (L{Exports}) for a limited time.  The other side remembers the
tokens it saw in messages that crossed (L{Imports}) and serves exactly
those on its loopback (L{FileServer}), streaming each file through the
link from the side that has it.  Nothing else is readable from either side.

Some files never cross, whoever names them (L{private_reason}): whatever
lies under C{~/.ssh} or C{~/.gnupg}, SAMP lockfiles (C{~/.samp},
C{~/.samp-1/}, the one C{SAMP_HUB} names: they hold hub secrets), our
remembered Web Profile consents, and any file that starts like a private
key.  Any client of this side's hub may name a file in a message, a
consented web page included, so this is checked on the resolved path, at
export time; such a URL crosses unchanged, and so stays unreadable on the
other side.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .._http import watch_answerable
from .._log import Logger
from .._net import is_loopback_address
from .protocol import CHUNK, Refused

log = Logger()

#: default largest file that may cross, in bytes
MAX_FILE_SIZE = 8 * 1024 ** 3
#: default seconds a file stays fetchable after its message crossed
LIFETIME = 3600.0
#: most tokens remembered on each side (the oldest are forgotten first)
MAX_TOKENS = 10000


@dataclasses.dataclass
class Export:
    """
    A file (C{kind} C{"file"}, C{target} a path) or a loopback URL of this
    side (C{kind} C{"url"}) fetchable by the other side until C{expires}.
    """

    kind: str
    target: str
    expires: float


def _walk(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    return value


#: first bytes of private keys in the formats ssh, OpenSSL and GnuPG write
_KEY_MARKS = (b"-----BEGIN OPENSSH PRIVATE KEY", b"-----BEGIN RSA PRIVATE KEY",
              b"-----BEGIN EC PRIVATE KEY", b"-----BEGIN DSA PRIVATE KEY",
              b"-----BEGIN PRIVATE KEY", b"-----BEGIN ENCRYPTED PRIVATE KEY",
              b"-----BEGIN PGP PRIVATE KEY")


def _private_places(home: Path, env: Dict[str, str]) -> List[Path]:
    places = [home / ".ssh", home / ".gnupg", home / ".samp", home / ".samp-1"]
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    places.append(config / "samptwist")
    hub = env.get("SAMP_HUB", "")
    if hub.startswith("std-lockurl:file:"):
        named = local_path(hub[len("std-lockurl:"):])
        if named is not None:
            places.append(named)
    return [Path(os.path.realpath(p)) for p in places]


def private_reason(path: Path, home: Optional[Path] = None,
                   env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """
    @param path: a file a message names (symbolic links are followed).
    @param home: the user's home (default: C{~}).
    @param env: the environment (default: C{os.environ}).
    @return: why the file must not leave this machine, or C{None} if it may.
    """
    env = dict(os.environ if env is None else env)
    home = Path(os.path.expanduser("~") if home is None else home)
    real = Path(os.path.realpath(path))
    for place in _private_places(home, env):
        if real == place or place in real.parents:
            return f"{place} holds secrets"
    try:
        with open(real, "rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return None  # unreadable: it will not be exported anyway
    if head.startswith(_KEY_MARKS):
        return "it is a private key"
    return None


def local_path(url: str) -> Optional[Path]:
    """
    @return: the path of a C{file:} URL naming a local file
        (C{file:///p}, C{file://localhost/p}, C{file:/p}), else C{None}.
    """
    if not url.startswith("file:"):
        return None
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        return None
    return Path(unquote(parts.path))


def is_loopback_http(url: str) -> bool:
    """
    @return: whether C{url} is an C{http:} URL on this machine's loopback.
    """
    if not url.startswith("http://"):
        return False
    host = urlsplit(url).hostname or ""
    return host == "localhost" or is_loopback_address(host)


class _Tokens:
    def __init__(self, clock: Any, lifetime: float = LIFETIME, limit: int = MAX_TOKENS) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.limit = limit
        self.entries: OrderedDict[str, Any] = OrderedDict()

        #: tokens whose time is over (the oldest forgotten first)
        self.ended: OrderedDict[str, None] = OrderedDict()

    def _expire(self) -> None:
        now = self.clock.seconds()
        gone = [t for t, e in self.entries.items() if e.expires <= now]
        for token in gone:
            del self.entries[token]
        while len(self.entries) > self.limit:
            gone.append(self.entries.popitem(last=False)[0])
        for token in gone:
            self.ended[token] = None
        while len(self.ended) > self.limit:
            self.ended.popitem(last=False)


class Exports(_Tokens):
    """
    What this side lets the other side fetch: files and loopback URLs named
    in messages that left this side.
    """

    def __init__(self, clock: Any, lifetime: float = LIFETIME, limit: int = MAX_TOKENS,
                 max_size: int = MAX_FILE_SIZE) -> None:
        super().__init__(clock, lifetime, limit)
        self.max_size = max_size
        self._by_target: Dict[Tuple[str, str], str] = {}

    def export(self, kind: str, target: str) -> str:
        """
        @return: the token under which C{target} is fetchable (the same one
            while it lives; its lifetime starts again).
        """
        self._expire()
        expires = self.clock.seconds() + self.lifetime
        token = self._by_target.get((kind, target))
        if token is None or token not in self.entries:
            token = secrets.token_urlsafe(24)
            self._by_target[(kind, target)] = token
        self.entries[token] = Export(kind, target, expires)
        self.entries.move_to_end(token)
        self._by_target = {(e.kind, e.target): t for t, e in self.entries.items()}
        return token

    def lookup(self, token: str) -> Export:
        """
        @return: the live export called C{token}.
        @raise Refused: if there is none (never exported, or expired).
        """
        self._expire()
        entry = self.entries.get(token)
        if entry is None:
            if token in self.ended:  # the other side's clock may run a little late
                raise Refused("the file's lifetime is over")
            raise Refused("no such file was sent")
        return entry

    def outgoing(self, value: Any, port: int) -> Any:
        """
        @return: C{value} (a SAMP value leaving this side) with each URL of
            a readable local file or loopback URL replaced by its URL on the
            other side's file server at C{port}.
        """

        def translate(text: str) -> str:
            path = local_path(text)
            if path is not None:
                try:
                    if not stat.S_ISREG(os.stat(path).st_mode) or not os.access(path, os.R_OK):
                        return text
                except OSError:
                    return text
                why = private_reason(path)
                if why is not None:
                    log.warn("not sending {path} to the other side: {why}", path=str(path),
                             why=why)
                    return text
                path = Path(os.path.realpath(path))
                token = self.export("file", str(path))
                return f"http://127.0.0.1:{port}/{token}/{quote(path.name)}"
            if is_loopback_http(text) and not text.startswith(f"http://127.0.0.1:{port}/"):
                token = self.export("url", text)
                name = Path(urlsplit(text).path).name or "data"
                return f"http://127.0.0.1:{port}/{token}/{quote(name)}"
            return text

        return _walk(value, translate)


class Imports(_Tokens):
    """
    The tokens this side's file server serves: those named in messages that
    came from the other side.
    """

    def incoming(self, value: Any, port: int) -> Any:
        """
        Remember every token of this side's file server (at C{port}) named
        in C{value} (a SAMP value that just crossed).

        @return: C{value}, unchanged.
        """
        prefix = f"http://127.0.0.1:{port}/"
        now = self.clock.seconds()

        def note(text: str) -> str:
            if text.startswith(prefix):
                token = text[len(prefix):].split("/", 1)[0]
                if token:
                    self.entries[token] = Export("import", token, now + self.lifetime)
                    self.entries.move_to_end(token)
            return text

        result = _walk(value, note)
        self._expire()
        return result

    def known(self, token: str) -> bool:
        """
        @return: whether C{token} may be fetched from the other side.
        """
        self._expire()
        return token in self.entries


# ---------------------------------------------------------------------------
# Reading exported files and URLs (the side that has them)


class Source:
    """
    One open export being read, chunk by chunk, in order.
    """

    size: int = -1
    content_type: str = "application/octet-stream"

    def read(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the next bytes (C{b""} at the end).
        """
        raise NotImplementedError

    def close(self) -> None:
        """
        Release what the source holds.
        """


_TYPES = {".vot": "application/x-votable+xml", ".xml": "text/xml", ".fits": "application/fits",
          ".fit": "application/fits", ".fts": "application/fits", ".csv": "text/csv"}


class FileSource(Source):
    """
    A local file, read in chunks of L{CHUNK} bytes.
    """

    def __init__(self, path: str, max_size: int) -> None:
        try:
            self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        except OSError as e:
            raise Refused(f"cannot open the file: {e.strerror}") from None
        size = os.fstat(self._file.fileno()).st_size
        if size > max_size:
            self._file.close()
            raise Refused(f"the file has {size} bytes, more than the limit of {max_size}")
        self.size = size
        self.max_size = max_size
        self._sent = 0
        self.content_type = _TYPES.get(Path(path).suffix.lower(), self.content_type)

    def read(self) -> Deferred:
        data = self._file.read(CHUNK)
        self._sent += len(data)
        if self._sent > self.max_size:  # it grew meanwhile
            return Deferred.fromCoroutine(_refuse("the file grew beyond the size limit"))
        return succeed(data)

    def close(self) -> None:
        self._file.close()


async def _refuse(text: str) -> Any:
    raise Refused(text)


class _BodyReader(Protocol):
    """
    Receives an HTTP response body for L{URLSource}, pausing the connection
    while too much is buffered.
    """

    def __init__(self, source: URLSource) -> None:
        self.source = source

    def dataReceived(self, data: bytes) -> None:
        self.source._got(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.source._ended(reason)


class URLSource(Source):
    """
    An C{http:} URL on this side's loopback, fetched with Twisted's web
    client and handed on in order.
    """

    def __init__(self, reactor: Any, url: str, max_size: int) -> None:
        self.reactor = reactor
        self.url = url
        self.max_size = max_size
        self._buffer: List[bytes] = []
        self._buffered = 0
        self._received = 0
        self._done: Optional[Failure] = None
        self._finished = False
        self._waiting: List[Deferred] = []
        self._transport: Any = None
        self._response: Any = None

    async def start(self) -> URLSource:
        from twisted.web.client import Agent

        try:
            response = await Agent(self.reactor).request(b"GET", self.url.encode("ascii"))
        except Exception as e:
            raise Refused(f"cannot fetch {self.url}: {e}") from None
        if response.code != 200:
            raise Refused(f"fetching {self.url}: HTTP {response.code}")
        from twisted.web.iweb import UNKNOWN_LENGTH

        self.size = -1 if response.length is UNKNOWN_LENGTH else int(response.length)
        if self.size > self.max_size:
            raise Refused(f"{self.url} has {self.size} bytes, more than the limit")
        kind = response.headers.getRawHeaders(b"content-type")
        if kind:
            self.content_type = kind[0].decode("latin-1")
        self._response = response
        reader = _BodyReader(self)
        response.deliverBody(reader)
        self._transport = getattr(reader, "transport", None)
        return self

    def _got(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self.max_size:
            self._done = Failure(Refused("the URL gave more than the size limit"))
            self._flush()
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered > 8 * CHUNK and self._transport is not None:
            self._transport.pauseProducing()
        self._flush()

    def _ended(self, reason: Any) -> None:
        self._finished = True
        self._flush()

    def _flush(self) -> None:
        while self._waiting and (self._buffer or self._finished or self._done):
            d = self._waiting.pop(0)
            if self._done is not None:
                d.errback(self._done)
                continue
            d.callback(self._take())

    def _take(self) -> bytes:
        out, size = [], 0
        while self._buffer and size < CHUNK:
            piece = self._buffer.pop(0)
            room = CHUNK - size
            if len(piece) > room:
                self._buffer.insert(0, piece[room:])
                piece = piece[:room]
            out.append(piece)
            size += len(piece)
        self._buffered -= size
        if self._buffered <= 2 * CHUNK and self._transport is not None and not self._finished:
            self._transport.resumeProducing()
        return b"".join(out)

    def read(self) -> Deferred:
        d: Deferred = Deferred()
        self._waiting.append(d)
        self._flush()
        return d

    def close(self) -> None:
        if not self._finished and self._transport is not None:
            self._transport.stopProducing()


class Streams:
    """
    The open sources of one link, by stream number; at most C{limit} at once.
    """

    def __init__(self, reactor: Any, exports: Exports, limit: int = 64) -> None:
        self.reactor = reactor
        self.exports = exports
        self.limit = limit
        self.open: Dict[int, Source] = {}
        self._next = 0

    async def start(self, token: str) -> Tuple[int, Source]:
        """
        @return: a new stream number and its source, for C{token}.
        @raise Refused: for an unknown token, an unreadable or too big file,
            or too many open streams.
        """
        entry = self.exports.lookup(token)
        if len(self.open) >= self.limit:
            raise Refused(f"more than {self.limit} files open at once")
        source: Source
        if entry.kind == "file":
            source = FileSource(entry.target, self.exports.max_size)
        else:
            source = await URLSource(self.reactor, entry.target, self.exports.max_size).start()
        self._next += 1
        self.open[self._next] = source
        return self._next, source

    def read(self, stream: int) -> Deferred:
        """
        @return: a L{Deferred} firing with the stream's next bytes.
        @raise Refused: for a stream that is not open.
        """
        source = self.open.get(stream)
        if source is None:
            raise Refused(f"stream {stream} is not open")
        return source.read()

    def close(self, stream: int) -> None:
        source = self.open.pop(stream, None)
        if source is not None:
            source.close()

    def close_all(self) -> None:
        for stream in list(self.open):
            self.close(stream)


# ---------------------------------------------------------------------------
# Serving imported tokens (the side that wants the file)

#: reads kept in flight per download (each at most CHUNK bytes: 4 MB in all)
WINDOW = 16


class _Download:
    """
    One HTTP request for an imported token, fed by reads through the link
    and paused while the client is slow (the request is its consumer).
    """

    def __init__(self, request: Request, link: Any, stream: int) -> None:
        self.request = request
        self.link = link
        self.stream = stream
        self.queue: List[List[Any]] = []
        self.paused = False
        self.since_pause = 0
        self.ended = False
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._gone)

    def _gone(self, _: Any) -> None:
        if not self.ended:
            self.ended = True
            self.link.close_stream(self.stream)

    def pauseProducing(self) -> None:
        self.paused = True
        self.since_pause = 0

    def resumeProducing(self) -> None:
        self.paused = False
        self.pump()

    def stopProducing(self) -> None:
        self._gone(None)

    def pump(self) -> None:
        # Reads go on while the client catches up with up to one window
        # already written (the transport pauses us at every big write): the
        # pipeline stays full, and memory stays within two windows.
        while not self.ended and len(self.queue) < WINDOW and \
                (not self.paused or self.since_pause + CHUNK * len(self.queue) < WINDOW * CHUNK):
            slot: List[Any] = [False, None]
            self.queue.append(slot)
            self.link.read_stream(self.stream).addBoth(self._arrived, slot)

    def _arrived(self, result: Any, slot: List[Any]) -> None:
        # Answers come back in the order asked; write them in that order.
        slot[0], slot[1] = True, result
        while self.queue and self.queue[0][0]:
            data = self.queue.pop(0)[1]
            if self.ended:
                continue
            if isinstance(data, Failure):
                log.warn("download of stream {stream} broke: {error}", stream=self.stream,
                         error=data.getErrorMessage())
                self._finish(abort=True)
                return
            if not data:
                self._finish()
                return
            self.since_pause += len(data)
            self.request.write(data)
        self.pump()

    def _finish(self, abort: bool = False) -> None:
        if self.ended:
            return
        self.ended = True
        self.link.close_stream(self.stream)
        self.request.unregisterProducer()
        if abort and self.request.channel is not None:
            self.request.channel.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.request.finish()


class FileServer(Resource):
    """
    The loopback web server of imported tokens: C{GET /TOKEN/NAME} streams
    the file through the link (C{link.open_remote(token)}); any other path
    is a 404 that never reaches the other side.
    """

    isLeaf = True

    def __init__(self, imports: Imports, link_of: Callable[[], Any]) -> None:
        super().__init__()
        self.imports = imports
        self.link_of = link_of

    def render_HEAD(self, request: Request) -> Any:
        return self.render_GET(request)

    def render_GET(self, request: Request) -> Any:
        token = request.postpath[0].decode("ascii", "replace") if request.postpath else ""
        link = self.link_of()
        if not token or not self.imports.known(token):
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"not found: only files named in messages that crossed can be fetched\n"
        if link is None:
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"the link to the other side is down\n"
        answerable = watch_answerable(request)
        d = link.open_remote(token)
        d.addCallbacks(self._opened, self._refused, callbackArgs=(request, link, answerable),
                       errbackArgs=(request, answerable))
        return NOT_DONE_YET

    def _opened(self, opened: Tuple[int, int, str], request: Request, link: Any,
                answerable: Callable[[], bool]) -> None:
        stream, size, content_type = opened
        if not answerable():
            link.close_stream(stream)
            return
        request.setHeader(b"content-type", content_type.encode("latin-1", "replace"))
        if size >= 0:
            request.setHeader(b"content-length", str(size).encode())
        if request.method == b"HEAD":
            link.close_stream(stream)
            request.finish()
            return
        _Download(request, link, stream).pump()

    def _refused(self, f: Failure, request: Request, answerable: Callable[[], bool]) -> None:
        if not answerable():
            return
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.write(f"the other side refused: {f.getErrorMessage()}\n".encode())
        request.finish()
