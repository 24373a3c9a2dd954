"""
The hub service on real loopback sockets: Standard Profile XML-RPC,
callbacks, isolation, lockfile lifecycle and shutdown.
"""

import stat
import xmlrpc.client

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, error, reactor
from twisted.web.xmlrpc import Fault

from samptwist.errors import HubAlreadyRunning
from samptwist.hub.service import HubService
from samptwist.lockfile import LockInfo, create_exclusive, read_lockfile

from .hubtools import Participant, deferLater, start_hub


async def fault_of(d):
    try:
        await d
    except Fault as f:
        return f
    raise AssertionError("no fault")


@pytest_twisted.ensureDeferred
async def test_lockfile_written(hub):
    """STD-LOCKFMT-4, STD-LOCKSEC-1: written 0600 after binding, with a working URL."""
    info = read_lockfile(hub.lockfile)
    assert stat.S_IMODE(hub.lockfile.stat().st_mode) == 0o600
    assert info.url == hub.url and info.url.startswith("http://127.0.0.1:")
    assert info.profile_version == "1.3" and info.secret == hub.secret
    c = Participant(hub.url)
    assert await c.hub.callRemote("samp.hub.ping") == ""
    assert await c.hub.callRemote("samp.hub.ping", "ignored-key") == ""


@pytest_twisted.ensureDeferred
async def test_wrong_secret(hub):
    """STD-SECRET-1."""
    f = await fault_of(Participant(hub.url).hub.callRemote("samp.hub.register", "wrong"))
    assert "wrong samp.secret" in f.faultString
    assert [c.public_id for c in hub.hub.clients] == ["hub"]


@pytest_twisted.ensureDeferred
async def test_clear_faults(hub, clients):
    """HUB-ERR-1: arity, unknown methods and bad values give readable faults."""
    a = await clients()
    f = await fault_of(a.hub.callRemote("samp.hub.notify", a.key))
    assert "takes 3 argument(s), got 1" in f.faultString
    f = await fault_of(a.hub.callRemote("samp.hub.nonesuch", a.key))
    assert "no such method" in f.faultString
    f = await fault_of(a.hub.callRemote("system.listMethods"))
    assert "no such method" in f.faultString
    f = await fault_of(a.call("declareMetadata", {"n": 5}))
    assert "not a SAMP type" in f.faultString
    f = await fault_of(a.call("notifyAll", {"samp.mtype": "a..b"}))
    assert "invalid MType" in f.faultString
    f = await fault_of(a.hub.callRemote("samp.hub.getRegisteredClients", "bad-key"))
    assert "private key" in f.faultString


@pytest_twisted.ensureDeferred
async def test_http_surface(hub):
    """Only POST reaches XML-RPC; / is a small page; garbage bodies fault."""
    base = hub.url.rsplit("/", 1)[0]
    r = await treq.get(hub.url)
    assert r.code == 405
    await r.content()
    r = await treq.get(base + "/")
    assert r.code == 200 and b"SAMP hub" in await r.content()
    r = await treq.post(hub.url, b"not xml at all", headers={"Content-Type": "text/xml"})
    body = await r.content()
    with pytest.raises(xmlrpc.client.Fault):
        xmlrpc.client.loads(body)


@pytest_twisted.ensureDeferred
async def test_round_trip(hub, clients):
    """HUB-CALL-1, MSG-TAG-1 over real callbacks."""
    a = await clients(subs={"test.echo": {}}, name="A")
    b = await clients(subs={})

    def echo(sender, msg_id, message):
        a.call("reply", msg_id, {"samp.status": "samp.ok",
                                 "samp.result": message["samp.params"]})

    a.recorder.on_call = echo
    msg_id = await b.call("call", a.id, "tag-1", {"samp.mtype": "test.echo",
                                                  "samp.params": {"x": ["1", {"y": "2"}]}})
    response = await b.recorder.wait_for(lambda c: c[0] == "receiveResponse")
    assert response == ("receiveResponse", a.id, "tag-1",
                        {"samp.status": "samp.ok", "samp.result": {"x": ["1", {"y": "2"}]}})
    assert a.recorder.calls[-1][:3] == ("receiveCall", b.id, msg_id)
    # callAndWait, answered from inside the recipient's callback
    r = await b.call("callAndWait", a.id, {"samp.mtype": "test.echo",
                                           "samp.params": {"z": "3"}}, "10")
    assert r["samp.result"] == {"z": "3"}
    r = await b.call("callAndWait", "hub", {"samp.mtype": "samp.app.ping"}, "5")
    assert r["samp.status"] == "samp.ok"


@pytest_twisted.ensureDeferred
async def test_hung_recipient_isolated(hub, clients):
    """STD-FAIL-6, HUB-WAIT-4: one hung callback delays nobody else."""
    slow = await clients(subs={"a.b": {}})
    slow.recorder.hang = True
    fast = await clients(subs={"a.b": {}})
    sender = await clients()
    start = reactor.seconds()
    for i in range(5):
        ids = await sender.call("notifyAll", {"samp.mtype": "a.b", "samp.params": {"i": str(i)}})
        assert sorted(ids) == sorted([slow.id, fast.id])
    await fast.recorder.wait_for(lambda c: c[-1]["samp.params"] == {"i": "4"}, timeout=2)
    assert reactor.seconds() - start < 2
    assert len(slow.recorder.calls) == 1  # its queue waits for the hung call


@pytest_twisted.ensureDeferred
async def test_dead_recipient_answers_caller(hub, clients):
    """A call whose delivery fails reaches the caller as samp.error, promptly."""
    dead = await clients(subs={"a.b": {}}, name="Dead")
    await dead.port.stopListening()
    dead.port = None
    caller = await clients()
    start = reactor.seconds()
    r = await caller.call("callAndWait", dead.id, {"samp.mtype": "a.b"}, "30")
    assert r["samp.status"] == "samp.error"
    assert "Dead" in r["samp.error"]["samp.errortxt"]
    assert reactor.seconds() - start < 2


@pytest_twisted.ensureDeferred
async def test_unregistering_recipient_releases_waiter(hub, clients):
    """HUB-UNREG-2: callAndWait returns at once when the recipient leaves."""
    r = await clients(subs={"a.b": {}})
    caller = await clients()
    waiting = caller.call("callAndWait", r.id, {"samp.mtype": "a.b"}, "0")
    await r.recorder.wait_for(lambda c: c[0] == "receiveCall")
    await r.call("unregister")
    response = await waiting
    assert response["samp.status"] == "samp.error"


@pytest_twisted.ensureDeferred
async def test_caller_hanging_up_cancels_wait(hub, clients):
    r = await clients(subs={"a.b": {}})
    caller = await clients()
    d = caller.call("callAndWait", r.id, {"samp.mtype": "a.b"}, "0")
    await r.recorder.wait_for(lambda c: c[0] == "receiveCall")
    assert hub.hub.pending_calls == 1
    d.cancel()  # closes the HTTP connection
    d.addErrback(lambda _: None)
    for _ in range(50):
        if not hub.hub.pending_calls:
            break
        await deferLater(0.02)
    assert hub.hub.pending_calls == 0


@pytest_twisted.ensureDeferred
async def test_second_hub_refused(hub, tmp_path):
    """STD-LOCKSEC-2: a live hub's lockfile is never replaced."""
    other = HubService(reactor, lockfile=hub.lockfile)
    other.startService()
    with pytest.raises(HubAlreadyRunning, match="already running at " + hub.url):
        await other.ready
    await other.stopService()
    assert read_lockfile(hub.lockfile).secret == hub.secret


@pytest_twisted.ensureDeferred
async def test_stale_lockfile_replaced(tmp_path):
    """STD-LOCKSEC-2: a lockfile naming a dead hub is replaced."""
    path = tmp_path / "lock"
    create_exclusive(path, LockInfo("old", "http://127.0.0.1:9/xmlrpc", "1.3"))
    service = await start_hub(tmp_path)
    try:
        assert read_lockfile(path).secret == service.secret
    finally:
        await service.stopService()
    assert not path.exists()


@pytest_twisted.ensureDeferred
async def test_foreign_lockfile_left_alone(tmp_path):
    """STD-LOCKSEC-4: on stop, a lockfile that is no longer ours stays."""
    service = await start_hub(tmp_path)
    path = service.lockfile
    path.unlink()
    create_exclusive(path, LockInfo("someone-else", "http://127.0.0.1:9/", "1.3"))
    await service.stopService()
    assert read_lockfile(path).secret == "someone-else"


@pytest_twisted.ensureDeferred
async def test_shutdown_event_before_close(hub, clients):
    """ADM-SHUT-1, STD-SHUT-1: subscribers hear of the shutdown; then the port closes."""
    c = await clients(subs={"samp.hub.event.shutdown": {}})
    await hub.stopService()
    assert c.recorder.mtypes()[-1] == "samp.hub.event.shutdown"
    assert not hub.lockfile.exists()
    with pytest.raises(error.ConnectionRefusedError):
        await c.hub.callRemote("samp.hub.ping")


@pytest_twisted.ensureDeferred
async def test_bare_lf_request_accepted(hub):
    """Requests whose header lines end with a bare LF (SAOImage DS9 sends them) are
    served, not left waiting for a CRLF that never comes."""
    from twisted.internet.protocol import ClientFactory, Protocol

    body = (b'<?xml version="1.0"?>\n<methodCall>\n<methodName>samp.hub.register</methodName>'
            b"\n<params><param><value><string>" + hub.secret.encode() +
            b"</string></value></param></params>\n</methodCall>\n")
    request = (b"POST /xmlrpc HTTP/1.0\nContent-Type: text/xml\nContent-length: %d\n\n"
               % len(body)) + body
    answer = defer.Deferred()

    class Raw(Protocol):
        data = b""

        def connectionMade(self):
            self.transport.write(request)

        def dataReceived(self, data):
            self.data += data

        def connectionLost(self, reason):
            answer.callback(self.data)

    factory = ClientFactory.forProtocol(Raw)
    port = int(hub.url.split(":")[2].split("/")[0])
    reactor.connectTCP("127.0.0.1", port, factory)
    data = await answer.addTimeout(10, reactor)
    assert data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200"), data[:200]
    registration = xmlrpc.client.loads(data.split(b"\r\n\r\n", 1)[1])[0][0]
    assert registration["samp.hub-id"] == "hub"


async def _xmlrpc_ping(url, method):
    # Twisted's Agent, not treq: treq (hyperlink) cannot encode an IPv6
    # literal host, nor can twisted.web.xmlrpc.Proxy parse one.
    import io

    from twisted.web.client import Agent, FileBodyProducer, readBody
    from twisted.web.http_headers import Headers

    fields = {b"content-type": [b"text/xml"]}
    body = FileBodyProducer(io.BytesIO(xmlrpc.client.dumps((), method).encode()))
    response = await Agent(reactor).request(b"POST", url.encode("ascii"), Headers(fields), body)
    answer = xmlrpc.client.loads(await readBody(response))
    assert response.code == 200 and answer[0] == ("",), (url, answer)


@pytest_twisted.ensureDeferred
async def test_ipv6_loopback_urls(tmp_path):
    """
    A hub and its Web Profile listening on ::1 advertise [::1] URLs
    (samptwist._net.url_host, the one formatter), and both answer there.
    """
    listen = r"tcp6:0:interface=\:\:1"
    service = HubService(reactor, listen=listen, lockfile=tmp_path / "lock",
                         web_listen=listen, web_consent="deny")
    service.startService()
    try:
        assert await service.when_ready() is service
        web = await service.web.when_ready()
        assert web is service.web
        assert service.url.startswith("http://[::1]:") and service.url.endswith("/xmlrpc")
        assert read_lockfile(tmp_path / "lock").url == service.url
        await _xmlrpc_ping(service.url, "samp.hub.ping")
        assert web.url.startswith("http://[::1]:") and web.url.endswith("/")
        # (the Agent's Host header, [::1]:PORT, is one the Web Profile takes)
        await _xmlrpc_ping(web.url, "samp.webhub.ping")
    finally:
        await service.stopService()
