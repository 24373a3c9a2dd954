"""
The two agents of ``samptwist remote`` in memory: two of our hubs on a
MemoryNetwork (samptwist.testing), the AMP link between the agents over an
iosim loopback, everything driven by one MemoryReactorClock.  Covers the
relay logic (mirroring, notify/call/callAll/callAndWait both ways, file URL
translation and streaming, link loss) and a hostile far side.
"""

from __future__ import annotations

from typing import Any, List

import pytest
from twisted.internet.defer import Deferred
from twisted.logger import globalLogPublisher
from twisted.protocols import amp
from twisted.python.failure import Failure
from twisted.test import iosim

from samptwist.client import SAMPClient, ok
from samptwist.errors import SAMPCallError
from samptwist.mirror import MARKER, HubSide
from samptwist.remote import protocol as P
from samptwist.remote.agent import LOCATION, Agent, Limits, Link
from samptwist.remote.files import _Download
from samptwist.testing import MemoryHub, MemoryRig, failure_of, result_of


class MemorySide(HubSide):
    """A HubSide whose clients live on the rig's MemoryNetwork."""

    def __init__(self, rig: MemoryRig, hub: MemoryHub, label: str) -> None:
        super().__init__(rig.reactor, label)
        self.rig, self.hub = rig, hub
        self.base = f"http://{label}.callbacks.invalid/"

    def new_client(self, **kwargs: Any) -> SAMPClient:
        client = self.rig.client(hub=self.hub, **kwargs)
        return client


class Pair:
    """Desktop and remote hubs, an agent on each, linked through iosim."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.pump: Any = None
        self.rig = MemoryRig()
        self.desk_hub = self.rig.hub
        self.far_hub = self.rig.new_hub()
        self.desk = Agent(self.rig.reactor, MemorySide(self.rig, self.desk_hub, "desk"),
                          role="desktop", place="laptop", limits=limits,
                          files_listen="tcp:7001:interface=127.0.0.1")
        self.far = Agent(self.rig.reactor, MemorySide(self.rig, self.far_hub, "far"),
                         role="remote", place="cluster", limits=limits,
                         files_listen="tcp:7002:interface=127.0.0.1")
        for agent in (self.desk, self.far):
            d = Deferred.fromCoroutine(agent.start())
            self.settle()
            result_of(d)

    def link(self) -> tuple:
        desk_link, far_link = Link(self.desk), Link(self.far, greet=False)
        self.desk.attach(desk_link)
        self.far.attach(far_link)
        self.pump = iosim.connect(far_link, iosim.FakeTransport(far_link, True),
                                  desk_link, iosim.FakeTransport(desk_link, False),
                                  greet=False)
        self.settle()
        return desk_link, far_link

    def settle(self, rounds: int = 12) -> None:
        for _ in range(rounds):
            if self.pump is not None:
                self.pump.flush()
            self.rig.settle(3)

    def client(self, name: str, hub: MemoryHub) -> SAMPClient:
        client = self.rig.client(name, hub=hub)
        d = client.connect()
        self.settle()
        result_of(d)
        return client


def caught(d: Deferred) -> List[Any]:
    """Collect C{d}'s outcome now (AMP treats an error nobody waits for as unhandled)."""
    box: List[Any] = []
    d.addBoth(box.append)
    return box


def refusal(box: List[Any]) -> str:
    assert box and isinstance(box[0], Failure), box
    return str(box[0].value)


def names(client: SAMPClient) -> List[str]:
    assert client.tracker is not None
    return sorted(str(c.name) for c in client.tracker.clients.values())


@pytest.fixture
def pair() -> Pair:
    return Pair()


def test_clients_mirrored_both_ways_with_metadata_and_subscriptions(pair):
    viewer = pair.client("topcat", pair.desk_hub)
    viewer.add_handler("table.load.votable", lambda m: ok())
    notebook = pair.client("notebook", pair.far_hub)
    pair.link()
    pair.settle()
    far_view = notebook.tracker.find("topcat")
    assert far_view is not None, names(notebook)
    info = notebook.tracker.clients[far_view]
    assert "table.load.votable" in info.subscriptions
    assert info.metadata[LOCATION] == "laptop"
    assert MARKER in info.metadata and "laptop" in info.metadata["samp.description.text"]
    near_view = viewer.tracker.find("notebook")
    assert near_view is not None and viewer.tracker.clients[near_view].metadata[LOCATION] == \
        "cluster"
    # Agents and proxies are never mirrored back: one topcat on each hub.
    assert names(viewer).count("topcat") == 0 and names(notebook).count("topcat") == 1
    assert names(notebook).count("notebook") == 0 and names(viewer).count("notebook") == 1
    # A client that leaves takes its proxy with it.
    viewer.disconnect()
    pair.settle()
    assert notebook.tracker.find("topcat") is None


def test_calls_replies_notify_and_call_and_wait_both_ways(pair):
    got: List[Any] = []
    viewer = pair.client("viewer", pair.desk_hub)
    viewer.add_handler("test.echo", lambda m: (got.append(("desk", m.params)),
                                                ok({"echo": m.params["x"]}))[1])
    notebook = pair.client("notebook", pair.far_hub)
    notebook.add_handler("test.echo", lambda m: (got.append(("far", m.params)),
                                                  ok({"echo": m.params["x"]}))[1])
    pair.link()
    pair.settle()
    to_viewer = notebook.tracker.find("viewer")
    to_notebook = viewer.tracker.find("notebook")
    d = notebook.call(to_viewer, "test.echo", {"x": "1"}, timeout=30)
    pair.settle()
    assert result_of(d)["samp.result"] == {"echo": "1"}
    d = viewer.call_and_wait(to_notebook, "test.echo", {"x": "2"}, timeout=30)
    pair.settle()
    assert result_of(d)["samp.result"] == {"echo": "2"}
    d = viewer.notify(to_notebook, "test.echo", {"x": "3"})
    pair.settle()
    result_of(d)
    d = notebook.call_all("test.echo", {"x": "4"}, timeout=30)
    pair.settle()
    assert [r["samp.result"] for r in result_of(d).values()] == [{"echo": "4"}]
    assert got == [("desk", {"x": "1"}), ("far", {"x": "2"}), ("far", {"x": "3"}),
                   ("desk", {"x": "4"})]
    # An error response crosses as an error.
    viewer.add_handler("test.fail", lambda m: (_ for _ in ()).throw(ValueError("nope")))
    pair.settle()
    d = notebook.call(to_viewer, "test.fail", {}, timeout=30)
    pair.settle()
    assert "nope" in failure_of(d).value.errortxt


def loader(pair: Pair, name: str, mtype: str) -> tuple:
    """A desktop client C{name} recording the URLs it is sent with C{mtype}, a
    remote "notebook", and the linked links."""
    urls: List[str] = []
    viewer = pair.client(name, pair.desk_hub)
    viewer.add_handler(mtype, lambda m: (urls.append(m.params["url"]), ok())[1])
    notebook = pair.client("notebook", pair.far_hub)
    desk_link, far_link = pair.link()
    pair.settle()
    return urls, notebook, desk_link, far_link


def test_file_urls_cross_as_tokens_served_only_if_sent(tmp_path):
    pair = Pair(Limits(silence=10 ** 6))  # an hour passes below, in one step
    data = tmp_path / "remote-only.vot"
    data.write_bytes(b"<VOTABLE>" + b"x" * 200000 + b"</VOTABLE>")
    urls, notebook, desk_link, far_link = loader(pair, "topcat", "table.load.votable")
    d = notebook.call(notebook.tracker.find("topcat"), "table.load.votable",
                      {"url": data.as_uri(), "name": "t",
                       "missing": "file:///nonexistent/x.vot"}, timeout=30)
    pair.settle()
    result_of(d)
    (url,) = urls
    assert url.startswith("http://127.0.0.1:7001/") and url.endswith("/remote-only.vot")
    token = url.split("/")[3]
    assert len(token) >= 32 and pair.desk.imports.known(token)
    assert not pair.desk.imports.known("x" * 32)
    # Stream it through the link, as the desktop's file server does.
    opened = desk_link.open_remote(token)
    pair.settle()
    stream, size, kind = result_of(opened)
    assert size == data.stat().st_size and kind == "application/x-votable+xml"
    sink = Sink()
    desk_link.receive_stream(stream, _Download(sink, desk_link, stream))  # type: ignore[arg-type]
    pair.settle()
    assert sink.finished and b"".join(sink.written) == data.read_bytes()
    assert far_link.streams.open == {} and desk_link.downloads == {}
    # The lifetime ends: the token is gone on both sides.
    pair.rig.reactor.advance(3601)
    assert not pair.desk.imports.known(token)
    with pytest.raises(P.Refused, match="lifetime is over"):
        pair.far.exports.lookup(token)
    # Asked for just after its end (clocks differ a little): refused, not cut off.
    late = caught(desk_link.open_remote(token))
    pair.settle()
    assert "lifetime is over" in refusal(late) and far_link.cut_reason is None


class Sink:
    """The part of an HTTP request a download uses, with a client that may fall behind."""

    def __init__(self) -> None:
        self.written: List[bytes] = []
        self.finished = False
        self.producer: Any = None
        self.channel = None
        self._done: List[Deferred] = []

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        assert streaming
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def finish(self) -> None:
        self.finished = True
        for d in self._done:
            d.callback(None)

    def notifyFinish(self) -> Deferred:
        d: Deferred = Deferred()
        self._done.append(d)
        return d


def test_downloads_are_flow_controlled_by_their_client(tmp_path):
    """A client that falls behind stops the sender within one window; memory stays bounded."""
    from samptwist.remote.files import WINDOW

    pair = Pair(Limits(silence=10 ** 6))
    data = tmp_path / "big.fits"
    data.write_bytes(bytes(range(256)) * (6 * WINDOW // 256))
    urls, notebook, desk_link, far_link = loader(pair, "ds9", "image.load.fits")
    d = notebook.notify(notebook.tracker.find("ds9"), "image.load.fits", {"url": data.as_uri()})
    pair.settle()
    result_of(d)
    opened = desk_link.open_remote(urls[0].split("/")[3])
    pair.settle()
    stream, size, _ = result_of(opened)
    sink = Sink()
    download = _Download(sink, desk_link, stream)  # type: ignore[arg-type]
    download.pauseProducing()  # the client is slow from the start: no credit
    desk_link.receive_stream(stream, download)
    pair.settle()
    assert sink.written == [] and desk_link.downloads
    download.resumeProducing()  # one window of credit...
    download.pauseProducing()  # ...and the client falls behind again
    pair.settle(40)
    got = sum(map(len, sink.written))
    assert got == WINDOW < size and not sink.finished  # nothing beyond the credit
    sink.producer.resumeProducing()
    pair.settle(200)
    assert sink.finished and b"".join(sink.written) == data.read_bytes()
    assert far_link.streams.open == {} and desk_link.downloads == {}


def test_data_never_asked_for_cuts_the_link_off(logged):
    pair, viewer, link, evil = hostile_pair()
    evil.sendData(7, b"unsolicited")
    pair.settle()
    assert "stream 7, never opened" in (link.cut_reason or ""), link.cut_reason
    still_serving(pair, viewer)


def test_size_limit_refuses_big_files(tmp_path):
    pair = Pair()
    pair.far.exports.max_size = 1000
    big = tmp_path / "big.fits"
    big.write_bytes(b"\0" * 5000)
    urls, notebook, desk_link, _ = loader(pair, "ds9", "image.load.fits")
    result_of_call = notebook.notify(notebook.tracker.find("ds9"), "image.load.fits",
                                     {"url": big.as_uri()})
    pair.settle()
    result_of(result_of_call)
    opened = caught(desk_link.open_remote(urls[0].split("/")[3]))
    pair.settle()
    assert "more than the limit" in refusal(opened)


def test_link_lost_drops_mirrors_and_answers_calls_in_flight(pair):
    viewer = pair.client("viewer", pair.desk_hub)
    never: List[Any] = []
    viewer.add_handler("test.slow", lambda m: Deferred(), auto_reply=True)
    notebook = pair.client("notebook", pair.far_hub)
    desk_link, far_link = pair.link()
    pair.settle()
    d = notebook.call(notebook.tracker.find("viewer"), "test.slow", {}, timeout=300)
    d.addErrback(never.append)
    pair.settle()
    assert not never
    desk_link.transport.loseConnection()
    pair.settle(30)
    assert notebook.tracker.find("viewer") is None
    assert viewer.tracker.find("notebook") is None
    assert never and isinstance(never[0].value, SAMPCallError), never
    assert "failed" in never[0].value.errortxt or "down" in never[0].value.errortxt
    # A new link mirrors everyone again.
    pair.link()
    pair.settle()
    assert notebook.tracker.find("viewer") is not None
    assert viewer.tracker.find("notebook") is not None


def test_silent_link_is_cut_after_the_silence_limit(pair):
    pair.client("viewer", pair.desk_hub)
    notebook = pair.client("notebook", pair.far_hub)
    desk_link, far_link = pair.link()
    pair.settle()
    assert notebook.tracker.find("viewer") is not None
    pair.pump = None  # nothing flows any more (a sleeping laptop)
    waiting = caught(notebook.call(notebook.tracker.find("viewer"), "samp.app.ping", {},
                                   timeout=300))
    pair.rig.settle()
    for _ in range(8):
        pair.rig.reactor.advance(2)
    pair.rig.settle()
    assert far_link.cut_reason is not None and "silent" in far_link.cut_reason
    assert notebook.tracker.find("viewer") is None
    # The call that was crossing is answered with samp.error, not left to time out.
    assert waiting and isinstance(waiting[0].value, SAMPCallError), waiting
    assert "silent for more than 12s" in waiting[0].value.errortxt


# -- a hostile far side -------------------------------------------------------


class Hostile(P.FramedAMP):
    """Speaks just enough AMP to say hello, then misbehaves."""

    def connectionMade(self) -> None:
        self.callRemote(P.Hello, version=P.VERSION, side="remote", place="evil",
                        file_port=7002).addErrback(lambda f: None)

    @P.Hello.responder
    def hello(self, **kw: Any) -> dict:
        return {"version": P.VERSION}

    @P.Ping.responder
    def ping(self) -> dict:
        return {}


@pytest.fixture
def logged():
    events: List[str] = []

    def observe(event: dict) -> None:
        from twisted.logger import formatEvent

        events.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def hostile_pair(limits: Limits | None = None):
    pair = Pair(limits)
    viewer = pair.client("viewer", pair.desk_hub)
    link = Link(pair.desk)
    pair.desk.attach(link)
    evil = Hostile()
    pair.pump = iosim.connect(evil, iosim.FakeTransport(evil, True),
                              link, iosim.FakeTransport(link, False), greet=False)
    pair.settle()
    assert link.ready.called
    return pair, viewer, link, evil


def still_serving(pair: Pair, viewer: SAMPClient) -> None:
    d = viewer.ping()
    pair.settle()
    result_of(d)
    other = pair.client("newcomer", pair.desk_hub)
    assert other.is_connected


def test_garbage_cuts_the_link_off(logged):
    pair, viewer, link, evil = hostile_pair()
    # a box with no command, in an AMP frame
    evil.transport.write(P.frame(P.AMP_FRAME, b"\x00\x05hello\x00\x03bad\x00\x00"))
    pair.settle()
    assert link.cut_reason and "not the samptwist remote protocol" in link.cut_reason
    assert any("cutting off evil" in e for e in logged), logged
    still_serving(pair, viewer)
    # bytes that are not frames at all, or frames too big
    for junk in (b"\x00\x05hello", P.frame(P.DATA_FRAME, b"") , b"A\xff\xff\xff\xff"):
        pair, viewer, link, evil = hostile_pair()
        evil.transport.write(junk)
        pair.settle()
        assert "not the samptwist remote protocol" in (link.cut_reason or ""), junk
        still_serving(pair, viewer)


def test_unknown_command_and_overlong_key_cut_the_link_off(logged):
    pair, viewer, link, evil = hostile_pair()
    evil.sendBox(amp.AmpBox(_command=b"Steal", _ask=b"1"))
    pair.settle()
    assert "unknown command" in (link.cut_reason or "")
    pair, viewer, link, evil = hostile_pair()
    evil.transport.write(P.frame(P.AMP_FRAME, b"\x01\x00" + b"k" * 256))
    pair.settle()
    assert "AMP key of" in (link.cut_reason or ""), link.cut_reason
    still_serving(pair, viewer)


def test_request_for_an_unlisted_file_cuts_the_link_off(logged, tmp_path):
    pair, viewer, link, evil = hostile_pair()
    secret = tmp_path / "id_ed25519"
    secret.write_text("private")
    d = caught(evil.callRemote(P.FileOpen, token="guessed-token"))
    pair.settle()
    assert "no such file" in refusal(d)
    assert "asked for a file never sent" in (link.cut_reason or "")
    assert any("cutting off evil: it asked for a file never sent" in e for e in logged)
    still_serving(pair, viewer)


def test_flood_cuts_the_link_off(logged):
    pair, viewer, link, evil = hostile_pair(Limits(max_rate=50))
    for n in range(200):
        evil.callRemote(P.ClientGone, client=f"c{n}")
    pair.settle()
    assert "flooding" in (link.cut_reason or "")
    assert any("more than 50 commands within a second" in e for e in logged)
    still_serving(pair, viewer)


def test_relay_from_an_unknown_sender_is_refused(logged):
    pair, viewer, link, evil = hostile_pair()
    d = caught(evil.callRemote(P.Relay, sender="nobody", target=viewer.self_id,
                               message={"samp.mtype": "samp.app.ping", "samp.params": {}},
                               call=True, timeout=5.0))
    pair.settle()
    assert "unknown sender" in refusal(d)
    assert link.cut_reason is None  # refused, not cut: the link goes on
    d = caught(evil.callRemote(P.ClientUpdate, client="x", metadata="not a map",
                               subscriptions={}))
    pair.settle()
    assert "must be maps" in refusal(d)


def test_json_values_split_and_limited():
    arg = P.JSONValue()
    strings: dict = {}
    big = {"samp.mtype": "x", "samp.params": {"rows": ["a" * 1000] * 300}}
    arg.toBox(b"message", strings, {"message": big}, None)
    assert len(strings) > 1 and all(len(v) <= 65535 for v in strings.values())
    objects: dict = {}
    arg.fromBox(b"message", strings, objects, None)
    assert objects["message"] == big
    with pytest.raises(amp.RemoteAmpError):
        arg.fromBox(b"m", {b"m": b"{not json"}, {}, None)
    too_big = {b"m": b"[" + b'"' + b"a" * 65000}
    for n in range(1, 300):
        too_big[b"m." + str(n).encode()] = b"a" * 65000
    with pytest.raises(amp.RemoteAmpError, match="more than"):
        arg.fromBox(b"m", too_big, {}, None)


def test_url_translation_rules(tmp_path):
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports, Imports, is_loopback_http, local_path

    data = tmp_path / "a b.vot"
    data.write_text("x")
    assert local_path(data.as_uri()) == data
    assert local_path("file://localhost/etc/x") is not None
    assert local_path("file://otherhost/etc/x") is None
    assert is_loopback_http("http://localhost:8000/x") and is_loopback_http("http://127.0.0.2/")
    assert not is_loopback_http("http://example.org/x") and not is_loopback_http("https://[::1]/")
    exports = Exports(Clock())
    out = exports.outgoing({"url": data.as_uri(), "other": "http://example.org/t.vot",
                            "list": ["http://localhost:8000/img.fits", str(tmp_path)],
                            "dir": tmp_path.as_uri()}, 7002)
    assert out["other"] == "http://example.org/t.vot"  # elsewhere: readable as it is
    assert out["dir"] == tmp_path.as_uri()  # directories never cross
    assert out["url"].startswith("http://127.0.0.1:7002/") and out["url"].endswith("/a%20b.vot")
    assert out["list"][0].startswith("http://127.0.0.1:7002/") and out["list"][1] == str(tmp_path)
    token = out["list"][0].split("/")[3]
    assert exports.lookup(token).kind == "url"
    assert exports.outgoing(data.as_uri(), 7002) == out["url"]  # one token per file
    imports = Imports(Clock())
    imports.incoming(out, 7002)
    assert imports.known(token) and not imports.known("other")


def test_file_server_serves_only_imported_tokens():
    from twisted.internet.task import Clock
    from twisted.web.test.requesthelper import DummyRequest

    from samptwist.remote.files import FileServer, Imports

    imports = Imports(Clock())
    server = FileServer(imports, lambda: None)
    request = DummyRequest([b"guessed", b"x.vot"])
    body = server.render_GET(request)
    assert request.responseCode == 404 and b"only files named in messages" in body
    imports.incoming("http://127.0.0.1:1/known/x.vot", 1)
    request = DummyRequest([b"known", b"x.vot"])
    assert b"link to the other side is down" in server.render_GET(request)
    assert request.responseCode == 503


class _HostSays(Hostile):
    """Says hello with its file server on C{file_host}."""

    file_host = "[::1]"
    answer: Any = None

    def connectionMade(self) -> None:
        d = self.callRemote(P.Hello, version=P.VERSION, side="remote", place="far",
                            file_port=7002, file_host=self.file_host)
        d.addBoth(lambda r: setattr(self, "answer", r))


@pytest.mark.parametrize("file_host,taken", [("[::1]", True), ("127.0.0.1", True),
                                              ("localhost", True), ("evil.example.org", False),
                                              ("10.0.0.1", False), ("127.0.0.1/x@evil", False)])
def test_the_other_sides_file_host_is_used_and_must_be_loopback(tmp_path, file_host, taken):
    """
    Each side says where its file server listens (its bound address as
    url_host formats it): files sent there are named on that host; a
    host that is not loopback is refused (the URLs go to this side's
    clients).
    """
    from twisted.internet.task import Clock

    from samptwist.remote.files import Exports

    pair = Pair(None)
    link = Link(pair.desk)
    pair.desk.attach(link)
    evil = _HostSays()
    evil.file_host = file_host
    pair.pump = iosim.connect(evil, iosim.FakeTransport(evil, True),
                              link, iosim.FakeTransport(link, False), greet=False)
    pair.settle()
    if not taken:
        assert isinstance(evil.answer, Failure) and "bad file host" in str(evil.answer.value)
        assert link.peer_host == "127.0.0.1"
        return
    assert evil.answer == {"version": P.VERSION} and link.peer_host == file_host
    data = tmp_path / "t.vot"
    data.write_text("x")
    out = Exports(Clock()).outgoing(data.as_uri(), link.peer_port, link.peer_host)
    assert out.startswith(f"http://{file_host}:7002/") and out.endswith("/t.vot")
    assert pair.desk.file_host == "127.0.0.1"  # its own, from the bound DEFAULT_LISTEN
