"""
The agent of C{samptwist remote}: one on the desktop, one on the far side,
each an ordinary client of its own hub, joined by one L{Link} (AMP over a
byte stream).

Each agent tells the other about its hub's clients (L{ClientUpdate},
L{ClientGone}) and registers, on its own hub, a proxy for each client of the
other side (L{samptwist.mirror.ProxySet}); a message sent to a proxy crosses
as a L{Relay} and is delivered on the other hub by the proxy of its sender,
and the response comes back the same way.  URLs of files crossing are
rewritten by L{samptwist.remote.files}.

Everything the other side sends is checked: unknown commands, malformed
boxes or values, and more than C{Limits.max_rate} commands a second cut the
link off with one log line; the hub and its clients go on as before.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import connectionDone
from twisted.internet.task import LoopingCall
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.web.server import Site

from .._log import Logger
from .._net import is_loopback_host, url_host
from ..client.handlers import Message, error
from ..client.tracker import ClientInfo
from ..constants import DEFAULT_LISTEN
from ..mirror import MARKER, HubSide, ProxySet
from . import protocol as P
from .files import Exports, FileServer, Imports, SharePolicy, Streams

log = Logger()

#: metadata key of proxies: where the client they stand for lives
LOCATION = "x-samptwist.remote.location"

_KNOWN = {c.commandName for c in (P.Hello, P.Ping, P.ClientUpdate, P.ClientGone, P.Relay,
                                  P.FileOpen, P.FileWant, P.FileFailed, P.FileClose)}
_UNMETERED = {P.FileClose.commandName}
#: stream numbers remembered after their end (data may still be on its way)
_ENDED_STREAMS = 256


@dataclasses.dataclass
class Limits:
    """
    What one side accepts from the other.

    @ivar max_rate: commands a second (file reads not counted) before the
        other side is cut off as flooding.
    @ivar max_clients: clients of the other side mirrored at once.
    @ivar max_in_flight: relayed messages being delivered at once (more are
        refused).
    @ivar heartbeat: seconds between pings.
    @ivar silence: seconds without any traffic after which the link is
        taken for dead.
    @ivar call_timeout: seconds a relayed call may wait for its reply.
    """

    max_rate: int = 2000
    max_clients: int = 500
    max_in_flight: int = 500
    heartbeat: float = 2.0
    silence: float = 12.0
    call_timeout: float = 600.0


class Link(P.FramedAMP):
    """
    One AMP connection to the other side's agent.

    @ivar peer_place: where the other side says it is (a host name).
    @ivar peer_port: the other side's file server port.
    @ivar peer_host: its host, formatted for a URL (a loopback address).
    @ivar ready: fires with this link once both sides said hello.
    @ivar lost: fires with the reason once the connection is gone.
    """

    def __init__(self, agent: Agent, greet: bool = False) -> None:
        super().__init__()
        self.agent = agent
        self.clock = agent.reactor
        self.limits = agent.limits
        self.greet = greet
        self.peer_place = "the other side"
        self.peer_port = 0
        self.peer_host = "127.0.0.1"
        self.ready: Deferred = Deferred()
        self.lost: Deferred = Deferred()
        self.streams = Streams(agent.reactor, agent.exports, send=self._send_data,
                               fail=self._stream_failed, send_file=self._send_file,
                               files_moved=self.filesMoved)
        self.downloads: Dict[int, Any] = {}
        self._ended_streams: OrderedDict[int, None] = OrderedDict()
        self.in_flight = 0
        self.cut_reason: Optional[str] = None
        self._heard = 0.0
        self._window = (0.0, 0)
        self._beat: Optional[LoopingCall] = None
        self._hello_in = False
        self._hello_out = False

    # -- connection ----------------------------------------------------------

    def makeConnection(self, transport: Any) -> None:
        if self.greet:
            transport.write(P.GREETING)
        super().makeConnection(transport)

    def connectionMade(self) -> None:
        self._heard = self.clock.seconds()
        register = getattr(self.transport, "registerProducer", None)
        if register is not None:
            try:
                register(self.streams, True)  # files are read only as fast as they are sent
            except RuntimeError:
                pass  # (a producer of its own already)
        d = self.callRemote(P.Hello, version=P.VERSION, side=self.agent.role,
                            place=self.agent.place, file_port=self.agent.file_port,
                            file_host=self.agent.file_host)
        d.addCallbacks(self._said_hello, self._failed, errbackArgs=("hello",))
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = self.clock
        self._beat.start(self.limits.heartbeat, now=False).addErrback(lambda f: None)

    def _said_hello(self, answer: Dict[str, Any]) -> None:
        self._hello_out = True
        self._check_ready()

    def _check_ready(self) -> None:
        if self._hello_in and self._hello_out and not self.ready.called:
            self.ready.callback(self)

    def _heartbeat(self) -> None:
        if self.clock.seconds() - self._heard > self.limits.silence:
            self.cut_off(f"silent for more than {self.limits.silence:g}s (the link is dead)")
            return
        self.callRemote(P.Ping).addErrback(lambda f: None)

    def _failed(self, f: Failure, what: str) -> None:
        if self.cut_reason is None and not f.check(amp.ProtocolSwitched) and self.transport:
            log.info("{what} failed: {error}", what=what, error=f.getErrorMessage())

    def cut_off(self, why: str) -> None:
        """
        End the link, logging C{why} once.
        """
        if self.cut_reason is not None:
            return
        self.cut_reason = why
        self.agent.problem(f"cutting off {self.peer_place}: {why}")
        # Let go at once (a dead stream may take long to report its end):
        # what waits on the other side is answered with samp.error now.
        pending, self._outstandingRequests = dict(self._outstandingRequests or {}), {}
        for waiting in pending.values():
            waiting.errback(Failure(ConnectionLost(why)))
        self.agent.detach(self)
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            (abort or transport.loseConnection)()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        self.streams.close_all()
        downloads, self.downloads = list(self.downloads.values()), {}
        for download in downloads:
            download.failed("the link ended")
        super().connectionLost(reason)
        self.agent.detach(self)
        if not self.lost.called:
            self.lost.callback(self.cut_reason or reason.getErrorMessage())

    # -- policing what arrives ------------------------------------------------

    def framingStopped(self) -> bool:
        return self.cut_reason is not None

    def frameError(self, text: str) -> None:
        self.cut_off(f"it sent something that is not the samptwist remote protocol ({text})")

    def dataFrameReceived(self, stream: int, data: bytes) -> None:
        self.dataFramePieces(stream, [data])

    def dataFramePieces(self, stream: int, pieces: List[Any]) -> None:
        self._heard = self.clock.seconds()
        download = self.downloads.get(stream)
        if download is None:
            if stream not in self._ended_streams:
                self.cut_off(f"it sent data for stream {stream}, never opened")
            return
        why = download.data(pieces)
        if why is not None:
            self.cut_off(why)

    def ampBoxReceived(self, box: amp.AmpBox) -> None:
        self._heard = self.clock.seconds()
        if self.cut_reason is not None:
            return
        try:
            command = box.get(amp.COMMAND)
            if command is not None:
                if command not in _KNOWN:
                    raise ValueError(f"unknown command {command[:40]!r}")
                if command not in _UNMETERED:
                    self._meter()
                if command != P.Hello.commandName and not self._hello_in:
                    raise ValueError(f"{command.decode()} before hello")
            else:
                ask = box.get(amp.ANSWER, box.get(amp.ERROR))
                if ask is None or ask not in self._outstandingRequests:
                    raise ValueError("an answer to nothing asked")
            super().ampBoxReceived(box)
        except _Flood as e:
            self.cut_off(str(e))
        except Exception as e:
            self.cut_off(f"it sent something that is not the samptwist remote protocol "
                         f"({type(e).__name__}: {str(e)[:200]})")

    def _meter(self) -> None:
        now = self.clock.seconds()
        start, count = self._window
        if now - start >= 1.0:
            start, count = now, 0
        count += 1
        self._window = (start, count)
        if count > self.limits.max_rate:
            raise _Flood(f"it sent more than {self.limits.max_rate} commands within a second "
                         "(flooding)")

    def lengthLimitExceeded(self, length: int) -> None:
        self.cut_off(f"it sent an AMP key of {length} bytes (not the samptwist remote protocol)")

    def unhandledError(self, failure: Failure) -> None:
        self.cut_off(f"unexpected error: {failure.getErrorMessage()}")

    # -- responders -----------------------------------------------------------

    @P.Hello.responder
    def hello(self, version: int, side: str, place: str, file_port: int,
              file_host: Optional[str] = None) -> Dict[str, Any]:
        if self._hello_in:
            raise P.Refused("hello twice")
        if version != P.VERSION:
            self.clock.callLater(0, self.cut_off, f"it speaks version {version}, not {P.VERSION}")
            raise P.Refused(f"this side speaks version {P.VERSION}")
        if not 0 <= file_port < 65536:
            raise P.Refused(f"bad file port {file_port}")
        file_host = file_host or "127.0.0.1"  # (an agent of before it was sent)
        if not is_loopback_host(file_host):
            # URLs of it go to this side's clients: only ever the loopback
            raise P.Refused(f"bad file host {file_host[:80]!r} (not a loopback address)")
        self._hello_in = True
        self.peer_place = place[:200] or "the other side"
        self.peer_port = file_port
        self.peer_host = file_host
        self.clock.callLater(0, self._check_ready)
        return {"version": P.VERSION}

    @P.Ping.responder
    def ping(self) -> Dict[str, Any]:
        return {}

    @P.ClientUpdate.responder
    def client_update(self, client: str, metadata: Any, subscriptions: Any) -> Dict[str, Any]:
        if not isinstance(metadata, dict) or not isinstance(subscriptions, dict):
            raise P.Refused("metadata and subscriptions must be maps")
        self.agent.peer_update(self, client, metadata, subscriptions)
        return {}

    @P.ClientGone.responder
    def client_gone(self, client: str) -> Dict[str, Any]:
        self.agent.peer_gone(self, client)
        return {}

    @P.Relay.responder
    def relay(self, sender: str, target: str, message: Any, call: bool,
              timeout: float) -> Deferred:
        if not isinstance(message, dict) or not isinstance(message.get("samp.mtype"), str) \
                or not isinstance(message.get("samp.params", {}), dict):
            raise P.Refused("a message must be a map with samp.mtype and samp.params")
        if self.in_flight >= self.limits.max_in_flight:
            raise P.Refused(f"more than {self.limits.max_in_flight} messages in flight")
        self.in_flight += 1
        d = Deferred.fromCoroutine(self.agent.relay_in(self, sender, target, message, call))

        def done(result: Any) -> Any:
            self.in_flight -= 1
            return result

        return d.addBoth(done).addCallback(lambda response: {"response": response})

    @P.FileOpen.responder
    async def file_open(self, token: str) -> Dict[str, Any]:
        try:
            stream, source = await self.streams.start(token)
        except P.Refused as e:
            if "no such file" in str(e):
                # Only tokens seen in messages that crossed are ever asked for.
                self.clock.callLater(0, self.cut_off, f"it asked for a file never sent "
                                     f"({token[:60]!r})")
            raise
        return {"stream": stream, "size": source.size, "content_type": source.content_type}

    @P.FileWant.responder
    def file_want(self, stream: int, size: int) -> Dict[str, Any]:
        try:
            self.streams.want(stream, size)
        except P.Refused as e:
            self.clock.callLater(0, self.cut_off, f"it asked for {e}")
        return {}

    @P.FileFailed.responder
    def file_failed(self, stream: int, reason: str) -> Dict[str, Any]:
        download = self.downloads.pop(stream, None)
        if download is not None:
            self._ended(stream)
            download.failed(f"{self.peer_place}: {reason[:200]}")
        return {}

    @P.FileClose.responder
    def file_close(self, stream: int) -> Dict[str, Any]:
        self.streams.close(stream)
        return {}

    # -- what the file server asks -------------------------------------------

    def open_remote(self, token: str) -> Deferred:
        """
        @return: a L{Deferred} firing with C{(stream, size, content_type)}
            for C{token} on the other side.
        """
        d = self.callRemote(P.FileOpen, token=token)
        return d.addCallback(lambda r: (r["stream"], r["size"], r["content_type"]))

    def receive_stream(self, stream: int, download: Any) -> None:
        """
        Hand the data of C{stream} to C{download} (a L{files._Download}) and
        let the other side start sending.
        """
        if self.cut_reason is not None or self.transport is None:
            download.failed("the link ended")
            return
        self.downloads[stream] = download
        download.grant()

    def want_stream(self, stream: int, size: int) -> None:
        if self.transport is not None and self.cut_reason is None:
            self.callRemote(P.FileWant, stream=stream, size=size)

    def close_stream(self, stream: int) -> None:
        if self.downloads.pop(stream, None) is not None:
            self._ended(stream)
        if self.transport is not None and self.cut_reason is None:
            self.callRemote(P.FileClose, stream=stream)

    def _ended(self, stream: int) -> None:
        self._ended_streams[stream] = None
        while len(self._ended_streams) > _ENDED_STREAMS:
            self._ended_streams.popitem(last=False)

    def _send_data(self, stream: int, data: bytes) -> None:
        if self.transport is not None and self.cut_reason is None:
            self.sendData(stream, data)

    def _send_file(self, stream: int, segment: Optional[P.FileSegment]) -> bool:
        """
        Send C{segment} of a file as a piece of C{stream}, written by the
        kernel (C{None}: only tell whether this link can).

        @return: whether it was (or can be) sent so.
        """
        if self.transport is None or self.cut_reason is not None or not self.canSendFiles():
            return False
        if segment is not None:
            self.sendFileData(stream, segment)
        return True

    def _stream_failed(self, stream: int, reason: str) -> None:
        if self.transport is not None and self.cut_reason is None:
            self.callRemote(P.FileFailed, stream=stream, reason=reason[:500])


class _Flood(Exception):
    pass


class Agent:
    """
    One side of a remote session: a client of this side's hub (through
    L{HubSide}), the proxies of the other side's clients, the file server,
    and the current L{Link}, if any.

    @ivar role: C{"desktop"} or C{"remote"}.
    @ivar place: how the other side calls this one (a host name).
    """

    def __init__(self, reactor: Any, side: HubSide, *, role: str, place: str,
                 limits: Optional[Limits] = None, mark_names: bool = False,
                 file_lifetime: float = 3600.0, max_file_size: int = 8 * 1024 ** 3,
                 files_listen: str = DEFAULT_LISTEN,
                 share: Sequence[str] = (),
                 say: Optional[Callable[[str], None]] = None,
                 complain: Optional[Callable[[str], None]] = None) -> None:
        """
        @param say: shows what happens (links up and down, clients
            mirrored); default: the log.
        @param complain: shows problems (the other side cut off); default:
            the log, as an error.
        @param share: directories whose files may cross besides the default
            places (L{SharePolicy}).
        """
        self.reactor = reactor
        self.side = side
        self.role = role
        self.place = place
        self.limits = limits or Limits()
        self.mark_names = mark_names
        self.files_listen = files_listen
        self.exports = Exports(reactor, lifetime=file_lifetime, max_size=max_file_size,
                               policy=SharePolicy(shared=share))
        self.imports = Imports(reactor, lifetime=file_lifetime, limit=10000)
        self.proxies = ProxySet(side, self.forward, announce=self._announce,
                                timeout=self.limits.call_timeout)
        self.link: Optional[Link] = None
        self.file_port = 0
        #: this side's file server's host, formatted for a URL
        self.file_host = "127.0.0.1"
        self.announced: Set[str] = set()
        self._files: Any = None
        self.events: List[str] = []
        self._say = say or (lambda text: log.info("{text}", text=text))
        self._complain = complain or (lambda text: log.error("{text}", text=text))

    async def start(self) -> None:
        """
        Open the file server and register with this side's hub.

        @raise SAMPError: if the hub cannot be used.
        """
        if self._files is None:
            site = Site(FileServer(self.imports, lambda: self.link))
            self._files = await serverFromString(self.reactor, self.files_listen).listen(site)
            bound = self._files.getHost()
            self.file_port, self.file_host = bound.port, url_host(bound.host)
        await self.side.start(f"samptwist remote ({self.role})",
                              "links this hub to the hub of another machine")
        self.side.watch(self.local_update, self.local_drop)

    async def stop(self) -> None:
        """
        Unregister every proxy, then the agent itself; close the file server.
        """
        if self.link is not None and self.link.transport is not None:
            self.link.transport.loseConnection()
        await self.proxies.clear()
        await self.side.stop()
        if self._files is not None:
            files, self._files = self._files, None
            await files.stopListening()

    def _note(self, text: str) -> None:
        self.events.append(text)
        self._say(text)

    def problem(self, text: str) -> None:
        """
        Report a problem with the other side (one line).
        """
        self.events.append(text)
        self._complain(text)

    # -- links -----------------------------------------------------------------

    def attach(self, link: Link) -> None:
        """
        Use C{link}; once both sides said hello, tell the other side about
        this hub's clients.
        """
        self.link = link
        link.ready.addCallback(self._ready)

    def _ready(self, link: Link) -> None:
        if link is not self.link:
            return
        self._note(f"linked to {link.peer_place}")
        self.announced.clear()
        manager = self.side.manager
        if manager is not None and manager.tracker is not None:
            for client_id in list(manager.tracker.clients):
                info = self.side.foreign(client_id)
                if info is not None:
                    self.local_update(client_id, info)

    def detach(self, link: Link) -> None:
        """
        C{link} is gone: unregister the other side's proxies (calls still
        waiting on the link fail, so their callers get C{samp.error}).
        """
        if link is not self.link:
            return
        self.link = None
        self.announced.clear()
        self._note(f"link to {link.peer_place} lost: "
                   f"{link.cut_reason or 'the stream ended'}")
        Deferred.fromCoroutine(self.proxies.clear()).addErrback(
            lambda f: log.warn("clearing proxies: {e}", e=f.getErrorMessage()))

    def _live(self, link: Link) -> bool:
        return link is self.link and link.ready.called and link.cut_reason is None

    # -- this hub's clients, told to the other side ----------------------------

    def local_update(self, client_id: str, info: ClientInfo) -> None:
        link = self.link
        if link is None or not self._live(link):
            return
        self.announced.add(client_id)
        metadata = self.exports.outgoing(dict(info.metadata), link.peer_port, link.peer_host)
        d = link.callRemote(P.ClientUpdate, client=client_id, metadata=metadata,
                            subscriptions=dict(info.subscriptions))
        d.addErrback(link._failed, f"telling about {client_id}")

    def local_drop(self, client_id: str) -> None:
        link = self.link
        if client_id in self.announced and link is not None and self._live(link):
            self.announced.discard(client_id)
            link.callRemote(P.ClientGone, client=client_id)

    # -- the other side's clients, mirrored here -------------------------------

    def peer_update(self, link: Link, client_id: str, metadata: Dict[str, Any],
                    subscriptions: Dict[str, Any]) -> None:
        if link is not self.link:
            return
        if client_id not in self.proxies.wanted and \
                len(self.proxies.wanted) >= self.limits.max_clients:
            raise P.Refused(f"more than {self.limits.max_clients} clients")
        metadata = self.imports.incoming(metadata, self.file_port, self.file_host)
        metadata = {k: v for k, v in metadata.items() if k != MARKER}
        metadata[MARKER] = f"proxy of {client_id} on {link.peer_place}"
        metadata[LOCATION] = link.peer_place
        where = f"on {link.peer_place}, through samptwist remote"
        text = metadata.get("samp.description.text")
        metadata["samp.description.text"] = f"{text} ({where})" if isinstance(text, str) \
            else f"a client {where}"
        name = metadata.get("samp.name")
        if self.mark_names and isinstance(name, str):
            metadata["samp.name"] = f"{name} ({link.peer_place})"
        d = self.proxies.update(client_id, metadata, subscriptions)
        d.addErrback(self._proxy_failed, client_id)

    def _proxy_failed(self, f: Failure, client_id: str) -> None:
        from ..mirror import Gone

        if not f.check(Gone):
            log.warn("cannot mirror {client}: {error}", client=client_id,
                     error=f.getErrorMessage())

    def peer_gone(self, link: Link, client_id: str) -> None:
        if link is self.link:
            self.proxies.drop(client_id)

    def _announce(self, key: str, proxy: Any) -> None:
        self._note(f"{proxy.metadata.get('samp.name', key)} ({key}) on "
                   f"{proxy.metadata.get(LOCATION, 'the other side')} is {proxy.self_id} here")

    # -- messages ----------------------------------------------------------------

    async def forward(self, key: str, message: Message) -> Optional[Dict[str, Any]]:
        """
        A client of this hub sent C{message} to the proxy of C{key}: relay it.

        @return: the response of a call (C{samp.error} if the link is down
            or breaks before the answer), C{None} for a notification.
        """
        link = self.link
        if link is None or not self._live(link):
            if message.is_call:
                return error("the link to the other side is down")
            return None
        sender = message.sender_id
        if sender not in self.announced:  # e.g. no metadata declared yet
            info = self.side.foreign(sender)
            if info is not None:
                self.local_update(sender, info)
        body = self.exports.outgoing(dict(message.message), link.peer_port, link.peer_host)
        try:
            answer = await link.callRemote(P.Relay, sender=sender, target=key, message=body,
                                           call=message.is_call,
                                           timeout=self.limits.call_timeout)
        except Exception as e:
            if message.is_call:
                return error(f"the link to {link.peer_place} failed: "
                             f"{_describe(e)}")
            log.info("notification to {key} not relayed: {e}", key=key, e=_describe(e))
            return None
        response = answer["response"]
        if not message.is_call:
            return None
        if not isinstance(response, dict):
            return error(f"{link.peer_place} answered with {str(response)[:80]!r}")
        return self.imports.incoming(response, self.file_port, self.file_host)  # type: ignore[no-any-return]

    async def relay_in(self, link: Link, sender: str, target: str, message: Dict[str, Any],
                       call: bool) -> Optional[Dict[str, Any]]:
        """
        The other side relays C{message} from its client C{sender} to
        C{target} on this hub.

        @return: the response of a call, C{None} for a notification.
        @raise Refused: for an unknown sender or target.
        """
        if link is not self.link:
            raise P.Refused("this link is not in use")
        if sender not in self.proxies.wanted:
            raise P.Refused(f"unknown sender {sender[:60]!r}")
        if self.side.foreign(target) is None:
            if call:
                return error(f"no client {target[:60]!r} on {self.place}")
            raise P.Refused(f"no client {target[:60]!r} on {self.place}")
        body = self.imports.incoming(message, self.file_port, self.file_host)
        response = await self.proxies.deliver(sender, target, body, call,
                                              self.limits.call_timeout)
        if response is None:
            return None
        return self.exports.outgoing(response, link.peer_port, link.peer_host)  # type: ignore[no-any-return]


def _describe(e: BaseException) -> str:
    if isinstance(e, amp.RemoteAmpError):
        return str(e.description) if hasattr(e, "description") else str(e)
    text = str(e) or type(e).__name__
    return text
