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

Which files may cross (L{SharePolicy}): any client of this side's hub may
name a file in a message, a consented web page included, so naming a file
is not taken as the right to send it.  A file crosses only if its resolved
path (symbolic links followed) lies in a shared place: this side's temporary
directory (where astropy, pyvo and samptwist's helpers write the tables and
images they send), the user's home directory outside its hidden files and
directories (C{~/.ssh}, C{~/.config}, C{~/.netrc}, ... never cross), or a
directory shared explicitly (C{--share DIR}).  Whatever the place, SAMP
lockfiles (they hold hub secrets), our remembered Web Profile consents, and
any file that starts like a private key never cross.  A refused URL crosses
unchanged, and so stays unreadable on the other side.

Files are read in a thread pool when the reactor has one (the agents are
clients: the hub, which must stay thread-free, never runs this code), so a
slow disk never stalls the link.  Where the link's transport can (the far
side's standard output, L{StreamStdIO<samptwist.remote.link.StreamStdIO>}),
each piece, once read in the pool (so that it is in memory), is handed over
as a L{FileSegment} and written by the kernel (C{sendfile}) instead of
passing through Python; and pieces are read only while the transport keeps
up (L{Streams} is its push producer).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote, unquote, urlsplit

from twisted.internet import tcp
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.protocol import Protocol
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .._http import watch_answerable
from .._log import Logger
from .._net import file_url_is_local, is_loopback_host
from .protocol import DATA_CHUNK, MAX_CREDIT, FileSegment, Refused, SharedFD

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


def key_reason(head: bytes) -> Optional[str]:
    """
    @param head: the first bytes of a file.
    @return: why it must not cross (it is a private key), or C{None}.
    """
    return "it is a private key" if head.lstrip().startswith(_KEY_MARKS) else None


class SharePolicy:
    """
    Which files of this side may be sent to the other side (see the module's
    docstring); the places are resolved once, when it is made.
    """

    def __init__(self, home: Optional[Path] = None, env: Optional[Dict[str, str]] = None,
                 shared: Sequence[str] = (), temp: Optional[str] = None) -> None:
        """
        @param home: the user's home (default: C{~}).
        @param env: the environment (default: C{os.environ}).
        @param shared: more directories (or files) whose files may cross.
        @param temp: the temporary directory (default: L{tempfile.gettempdir}).
        """
        env = dict(os.environ if env is None else env)
        home = Path(os.path.expanduser("~") if home is None else home)
        self.home = Path(os.path.realpath(home))
        self.shared = [Path(os.path.realpath(p)) for p in shared]
        self.temp = Path(os.path.realpath(temp or tempfile.gettempdir()))
        secret = [home / ".ssh", home / ".gnupg", home / ".samp", home / ".samp-1"]
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        secret.append(config / "samptwist")
        hub = env.get("SAMP_HUB", "")
        if hub.startswith("std-lockurl:file:"):
            named = local_path(hub[len("std-lockurl:"):])
            if named is not None:
                secret.append(named)
        self.secret = [Path(os.path.realpath(p)) for p in secret]

    def refuse(self, path: Path) -> Optional[str]:
        """
        @param path: a file a message names (symbolic links are followed).
        @return: why it must not leave this machine, or C{None} if it may
            (its content is checked when it is read: L{key_reason}).
        """
        real = Path(os.path.realpath(path))
        for place in self.secret:
            if _within(real, place):
                return f"{place} holds secrets"
        if any(_within(real, root) for root in self.shared):
            return None
        if _within(real, self.home):
            hidden = [part for part in real.relative_to(self.home).parts if part.startswith(".")]
            if hidden:
                return f"{self.home / hidden[0]} is hidden (hidden files in HOME never cross)"
            return None
        if _within(real, self.temp):
            return None
        return (f"it is outside the shared places ({self.home}, {self.temp}"
                f"{''.join(', ' + str(p) for p in self.shared)}; share more with --share DIR)")


def _within(path: Path, place: Path) -> bool:
    return path == place or place in path.parents


def private_reason(path: Path, home: Optional[Path] = None,
                   env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """
    @param path: a file a message names.
    @return: why the file must not leave this machine under the default
        L{SharePolicy} (its place or its content), or C{None} if it may.
        Reads the file's first bytes: not for the reactor thread.
    """
    why = SharePolicy(home, env).refuse(path)
    if why is not None:
        return why
    try:
        with open(os.path.realpath(path), "rb") as f:
            return key_reason(f.read(64))
    except OSError:
        return None  # unreadable: it will not be exported anyway


def local_path(url: str) -> Optional[Path]:
    """
    @return: the path of a C{file:} URL naming a local file
        (C{file:///p}, C{file://localhost/p}, C{file:/p}), else C{None}.
    """
    if not url.startswith("file:"):
        return None
    parts = urlsplit(url)
    if not file_url_is_local(parts.netloc) or not parts.path.startswith("/"):
        return None
    return Path(unquote(parts.path))


def is_loopback_http(url: str) -> bool:
    """
    @return: whether C{url} is an C{http:} URL on this machine's loopback.
    """
    if not url.startswith("http://"):
        return False
    host = urlsplit(url).hostname or ""
    return is_loopback_host(host)


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
                 max_size: int = MAX_FILE_SIZE, policy: Optional[SharePolicy] = None) -> None:
        """
        @param policy: which files may cross (default: L{SharePolicy}()).
        """
        super().__init__(clock, lifetime, limit)
        self.max_size = max_size
        self.policy = policy or SharePolicy()
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

    def outgoing(self, value: Any, port: int, host: str = "127.0.0.1") -> Any:
        """
        @param host: the other side's file server's host, formatted for a
            URL (L{url_host<samptwist._net.url_host>}).
        @return: C{value} (a SAMP value leaving this side) with each URL of
            a readable local file or loopback URL replaced by its URL on the
            other side's file server at C{host:port}.
        """
        base = f"http://{host}:{port}/"

        def translate(text: str) -> str:
            path = local_path(text)
            if path is not None:
                try:
                    if not stat.S_ISREG(os.stat(path).st_mode) or not os.access(path, os.R_OK):
                        return text
                except OSError:
                    return text
                why = self.policy.refuse(path)
                if why is not None:
                    log.warn("not sending {path} to the other side: {why}", path=str(path),
                             why=why)
                    return text
                path = Path(os.path.realpath(path))
                token = self.export("file", str(path))
                return f"{base}{token}/{quote(path.name)}"
            if is_loopback_http(text) and not text.startswith(base):
                token = self.export("url", text)
                name = Path(urlsplit(text).path).name or "data"
                return f"{base}{token}/{quote(name)}"
            return text

        return _walk(value, translate)


class Imports(_Tokens):
    """
    The tokens this side's file server serves: those named in messages that
    came from the other side.
    """

    def incoming(self, value: Any, port: int, host: str = "127.0.0.1") -> Any:
        """
        Remember every token of this side's file server (at C{host:port},
        the host formatted for a URL) named in C{value} (a SAMP value that
        just crossed).

        @return: C{value}, unchanged.
        """
        prefix = f"http://{host}:{port}/"
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
    One open export being read, piece by piece, in order.
    """

    size: int = -1
    content_type: str = "application/octet-stream"

    def read(self, size: int) -> Deferred:
        """
        @return: a L{Deferred} firing with the next bytes, at most C{size}
            (C{b""} at the end), or failing with L{Refused}.
        """
        raise NotImplementedError

    def close(self) -> None:
        """
        Release what the source holds.
        """


_TYPES = {".vot": "application/x-votable+xml", ".xml": "text/xml", ".fits": "application/fits",
          ".fit": "application/fits", ".fts": "application/fits", ".csv": "text/csv"}

Blocking = Callable[..., Deferred]


def blocking_runner(reactor: Any) -> Blocking:
    """
    @return: how to run blocking file I/O for C{reactor}: in its thread pool
        if it has one (the agents: clients, not the hub), else at once (a
        test's memory reactor).
    """
    if IReactorThreads.providedBy(reactor):
        def in_thread(fn: Callable[..., Any], *args: Any) -> Deferred:
            return deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)

        return in_thread
    return maybeDeferred


class FileSource(Source):
    """
    A local file, read with C{run} (in a thread pool).
    """

    def __init__(self, path: str, max_size: int, run: Blocking = maybeDeferred) -> None:
        self.path = path
        self.max_size = max_size
        self.run = run
        self._file: Any = None
        self._sent = 0
        self._scratch: Optional[bytearray] = None
        self._shared: Optional[SharedFD] = None  # (for segments: one descriptor per file)
        self.content_type = _TYPES.get(Path(path).suffix.lower(), self.content_type)

    def _open(self) -> Tuple[Any, int]:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        except OSError as e:
            raise Refused(f"cannot open the file: {e.strerror}") from None
        try:
            size = os.fstat(f.fileno()).st_size
            if size > self.max_size:
                raise Refused(f"the file has {size} bytes, more than the limit of "
                              f"{self.max_size}")
            why = key_reason(f.read(64))
            if why is not None:
                log.warn("not sending {path} to the other side: {why}", path=self.path, why=why)
                raise Refused(f"not sent: {why}")
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f, size

    async def start(self) -> FileSource:
        """
        Open the file (in the pool).

        @return: this source.
        @raise Refused: if it cannot be opened, is too big or is a key.
        """
        self._file, self.size = await self.run(self._open)
        return self

    def read(self, size: int) -> Deferred:
        return self.run(self._read, size)

    def _left(self, size: int) -> int:
        """
        @return: how much of the next C{size} bytes to send: never beyond
            the size the file had when opened (the other side was told it,
            as the download's Content-Length), however it grows meanwhile.
        @raise Refused: if the file is closed.
        """
        if self._file is None:
            raise Refused("the file is closed")
        return max(0, min(size, self.size - self._sent))

    def _shrank(self, got: int) -> bool:
        """
        @return: whether the file ended before its size when opened
            (C{got}: the bytes just read of what was asked).
        """
        return got == 0 and self._sent < self.size

    def _read(self, size: int) -> bytes:
        want = self._left(size)
        data: bytes = self._file.read(want) if want else b""
        if self._shrank(len(data)):
            raise Refused("the file shrank while it was sent")
        self._sent += len(data)
        return data

    def close(self) -> None:
        f, self._file = self._file, None
        self._shared = None  # (closed once the last segment of it is written)
        if f is not None:
            self.run(f.close).addErrback(lambda _: None)

    def segment(self, size: int, short: Callable[[], None]) -> Deferred:
        """
        @return: a L{Deferred} firing with a L{FileSegment} of the next
            bytes, at most C{size} (C{None} at the end), read once in the
            pool (so that writing it, in the kernel, finds them in memory
            and never waits for the disk), or failing with L{Refused}.
        """
        return self.run(self._segment, size, short)

    def unread_segment(self, size: int, short: Callable[[], None]) -> Optional[FileSegment]:
        """
        @return: a L{FileSegment} of the next bytes, at most C{size} and no
            further than the size the file had when opened (C{None} at that
            end), not read: for a writer that may wait for the disk.
        @raise Refused: if the file is closed.
        """
        count = self._left(size)
        return self._segment_of(count, short) if count else None

    def _segment_of(self, count: int, short: Callable[[], None]) -> FileSegment:
        assert self._file is not None
        if self._shared is None:
            self._shared = SharedFD(self._file.fileno())
        segment = FileSegment(self._shared, self._sent, count, short)
        self._sent += count
        return segment

    def _segment(self, size: int, short: Callable[[], None]) -> Optional[FileSegment]:
        want = self._left(size)
        if not want:
            return None
        if self._scratch is None or len(self._scratch) < want:
            self._scratch = bytearray(max(want, DATA_CHUNK))
        with memoryview(self._scratch) as scratch:
            got = os.preadv(self._file.fileno(), [scratch[:want]], self._sent)
        if self._shrank(got):
            raise Refused("the file shrank while it was sent")
        return self._segment_of(got, short)


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
        self._waiting: List[Tuple[Deferred, int]] = []
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
        if self._buffered > 2 * DATA_CHUNK and self._transport is not None:
            self._transport.pauseProducing()
        self._flush()

    def _ended(self, reason: Any) -> None:
        self._finished = True
        self._flush()

    def _flush(self) -> None:
        while self._waiting and (self._buffer or self._finished or self._done):
            d, want = self._waiting.pop(0)
            if self._done is not None:
                d.errback(self._done)
                continue
            d.callback(self._take(want))

    def _take(self, want: int) -> bytes:
        out, size = [], 0
        while self._buffer and size < want:
            piece = self._buffer.pop(0)
            room = want - size
            if len(piece) > room:
                self._buffer.insert(0, piece[room:])
                piece = piece[:room]
            out.append(piece)
            size += len(piece)
        self._buffered -= size
        if self._buffered <= DATA_CHUNK and self._transport is not None and not self._finished:
            self._transport.resumeProducing()
        return b"".join(out)

    def read(self, size: int) -> Deferred:
        d: Deferred = Deferred()
        self._waiting.append((d, size))
        self._flush()
        return d

    def close(self) -> None:
        if not self._finished and self._transport is not None:
            self._transport.stopProducing()


class _Outgoing:
    """
    One open stream being sent: as much as the reader's credit allows.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.credit = 0
        self.reading = False


class Streams:
    """
    The open sources of one link, by stream number (at most C{limit} at
    once), each pushed to the other side as far as its reader's credit
    allows (L{want}), and while the link's transport keeps up: this is its
    push producer (L{pauseProducing} when it has too much to write, so what
    is read ahead stays bounded whatever the credit and the streams).
    """

    def __init__(self, reactor: Any, exports: Exports, send: Callable[[int, bytes], None],
                 fail: Callable[[int, str], None], limit: int = 64,
                 send_file: Optional[Callable[[int, Optional[FileSegment]], bool]] = None,
                 files_moved: Callable[[], bool] = lambda: False) -> None:
        """
        @param send: sends a piece of a stream (C{b""}: its end).
        @param fail: tells the reader a stream cannot go on, and why.
        @param send_file: sends a L{FileSegment} as a piece of a stream, if
            the link can now (else returns C{False}, and files are read).
        @param files_moved: whether the link's transport writes segments in
            a thread (they are then not read ahead, in the thread pool).
        """
        self.reactor = reactor
        self.exports = exports
        self.send = send
        self.send_file = send_file
        self.files_moved = files_moved
        self.fail = fail
        self.limit = limit
        self.run = blocking_runner(reactor)
        self.open: Dict[int, _Outgoing] = {}
        self._next = 0
        self.paused = False

    def pauseProducing(self) -> None:
        """
        The link's transport has too much to write: read no more for now.
        """
        self.paused = True

    def resumeProducing(self) -> None:
        """
        The link's transport wrote what it had: go on.
        """
        self.paused = False
        for stream, out in list(self.open.items()):
            self._pump(stream, out)

    def stopProducing(self) -> None:
        self.close_all()

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
            source = await FileSource(entry.target, self.exports.max_size, self.run).start()
        else:
            source = await URLSource(self.reactor, entry.target, self.exports.max_size).start()
        self._next += 1
        self.open[self._next] = _Outgoing(source)
        return self._next, source

    def want(self, stream: int, size: int) -> None:
        """
        The reader of C{stream} may take C{size} more bytes: send them.

        @raise Refused: for a credit out of bounds.
        """
        out = self.open.get(stream)
        if out is None:
            return  # ended meanwhile
        if size <= 0 or out.credit + size > MAX_CREDIT:
            raise Refused(f"a credit of {size} bytes")
        out.credit += size
        self._pump(stream, out)

    def _pump(self, stream: int, out: _Outgoing) -> None:
        if out.reading or out.credit <= 0 or self.paused or self.open.get(stream) is not out:
            return
        size = min(DATA_CHUNK, out.credit)
        if self.send_file is not None and isinstance(out.source, FileSource) and \
                self.send_file(stream, None):
            if self.files_moved():
                self._pump_unread(stream, out, out.source)
                return
            out.reading = True
            d = out.source.segment(size, lambda: self._short(stream, out))
            d.addCallbacks(self._segment, self._failed, callbackArgs=(stream, out),
                           errbackArgs=(stream, out))
            return
        out.reading = True
        d = out.source.read(size)
        d.addCallbacks(self._read, self._failed, callbackArgs=(stream, out),
                       errbackArgs=(stream, out))

    def _segment(self, segment: Optional[FileSegment], stream: int, out: _Outgoing,
                 pump: bool = True) -> bool:
        """
        @return: whether the stream goes on.
        """
        out.reading = False
        if self.open.get(stream) is not out:
            if segment is not None:
                segment.close()
            return False
        if segment is None:
            self.send(stream, b"")
            self.close(stream)
            return False
        out.credit -= segment.count
        assert self.send_file is not None
        if not self.send_file(stream, segment):  # (the link is going)
            segment.close()
            self.close(stream)
            self.fail(stream, "the link ended")
            return False
        if pump:
            self._pump(stream, out)
        return True

    def _pump_unread(self, stream: int, out: _Outgoing, source: FileSource) -> None:
        # Segments made here and now, not read ahead: the link's transport
        # writes them in a thread of its own, which may wait for the disk.
        while out.credit > 0 and not self.paused and self.open.get(stream) is out:
            try:
                segment = source.unread_segment(min(DATA_CHUNK, out.credit),
                                                lambda: self._short(stream, out))
            except Exception:
                self._failed(Failure(), stream, out)
                return
            if not self._segment(segment, stream, out, pump=False):
                return

    def _short(self, stream: int, out: _Outgoing) -> None:
        if self.open.get(stream) is out:
            self.close(stream)
            self.fail(stream, "the file shrank while it was sent")

    def _read(self, data: bytes, stream: int, out: _Outgoing) -> None:
        out.reading = False
        if self.open.get(stream) is not out:
            return
        out.credit -= len(data)
        self.send(stream, data)
        if not data:
            self.close(stream)
            return
        self._pump(stream, out)

    def _failed(self, f: Failure, stream: int, out: _Outgoing) -> None:
        out.reading = False
        if self.open.get(stream) is out:
            self.close(stream)
            self.fail(stream, f.getErrorMessage() if f.check(Refused) else
                      f"cannot read: {f.getErrorMessage()}")

    def close(self, stream: int) -> None:
        out = self.open.pop(stream, None)
        if out is not None:
            out.source.close()

    def close_all(self) -> None:
        for stream in list(self.open):
            self.close(stream)


# ---------------------------------------------------------------------------
# Serving imported tokens (the side that wants the file)


def _tail(pieces: Sequence[Any], skip: int) -> bytes:
    """
    @return: the bytes of C{pieces} after the first C{skip}, joined.
    """
    rest = []
    for piece in pieces:
        if skip >= len(piece):
            skip -= len(piece)
            continue
        rest.append(memoryview(piece)[skip:] if skip else piece)
        skip = 0
    return b"".join(rest)


#: bytes a download lets the other side send ahead (its credit); memory per
#: download stays within about twice this
WINDOW = 16 * 1024 * 1024


class _Download:
    """
    One HTTP request for an imported token, fed by data frames of the link
    as far as its credit goes, and given more credit only while the client
    keeps up (the request is its consumer, this its push producer).
    """

    def __init__(self, request: Request, link: Any, stream: int) -> None:
        self.request = request
        self.link = link
        self.stream = stream
        self.granted = 0
        self.received = 0
        self.paused = False
        self.ended = False
        transport = getattr(request.channel, "transport", None)
        if transport is not None and getattr(transport, "SEND_LIMIT", 0) < DATA_CHUNK:
            # A piece of the file in one send, not four trips through the
            # event loop (Twisted sends at most 128 KiB at a time).
            transport.SEND_LIMIT = DATA_CHUNK
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._gone)

    def _gone(self, _: Any) -> None:
        if not self.ended:
            self.ended = True
            self.link.close_stream(self.stream)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.grant()

    def stopProducing(self) -> None:
        self._gone(None)

    def grant(self) -> None:
        """
        Give the other side more credit, once half the window is used and
        the client is not behind.
        """
        if not self.ended and not self.paused and \
                self.granted - self.received <= WINDOW // 2:
            more = self.received + WINDOW - self.granted
            self.granted += more
            self.link.want_stream(self.stream, more)

    def data(self, pieces: Sequence[Any]) -> Optional[str]:
        """
        A piece of the stream arrived, in C{pieces}: bytes-like objects
        valid only during the call (none, or empty: the end).

        @return: why the other side broke the protocol, or C{None}.
        """
        if self.ended:
            return None
        size = sum(len(piece) for piece in pieces)
        if not size:
            self._finish()
            return None
        self.received += size
        if self.received > self.granted:
            self._finish(abort=True)
            return f"it sent {self.received - self.granted} bytes more than asked for"
        sent = self._send_now(pieces)
        if sent < size:
            self.request.write(_tail(pieces, sent))
        self.grant()
        return None

    def _send_now(self, pieces: Sequence[Any]) -> int:
        """
        Send what the client's socket takes at once, straight from
        C{pieces}, when nothing else waits to be written to it: no copy of
        the piece (Twisted would join it with its buffer first), and no trip
        through the event loop.

        @return: the bytes sent (0 when Twisted must write them: a response
            not yet started, chunked, over TLS or not on TCP, or with data
            of its own still buffered).
        """
        request = self.request
        transport = getattr(request.channel, "transport", None)
        if not isinstance(transport, tcp.Connection) or transport.TLS or \
                not request.startedWriting or request.chunked or request.finished or \
                transport.disconnecting or not transport.connected or \
                len(transport.dataBuffer) - transport.offset + transport._tempDataLen:
            return 0
        try:
            sent = transport.socket.sendmsg(pieces)
        except OSError:
            return 0  # (full, or gone: Twisted's own write finds out which)
        request.sentLength += sent
        return sent

    def failed(self, reason: str) -> None:
        """
        The other side cannot go on.
        """
        if not self.ended:
            log.warn("download of stream {stream} broke: {error}", stream=self.stream,
                     error=reason)
            self._finish(abort=True)

    def _finish(self, abort: bool = False) -> None:
        if self.ended:
            return
        self.ended = True
        self.link.close_stream(self.stream)
        self.request.unregisterProducer()
        if abort:
            transport = getattr(self.request.channel, "transport", None)
            if transport is not None:
                transport.abortConnection()
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
        link.receive_stream(stream, _Download(request, link, stream))

    def _refused(self, f: Failure, request: Request, answerable: Callable[[], bool]) -> None:
        if not answerable():
            return
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.write(f"the other side refused: {f.getErrorMessage()}\n".encode())
        request.finish()
