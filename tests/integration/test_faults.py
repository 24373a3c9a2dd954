"""
Faulty clients and hubs (issue 8): callbacks that answer garbage, die
mid-message, refuse or hang; hubs killed, stopped with hung clients, or
started twice at once.
"""

import os
import signal
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import protocol, reactor
from twisted.internet.endpoints import serverFromString

from samptwist.lockfile import read_lockfile
from tests.peers import HUB_READY_TEXT, hub_command, peer_env, running_hub

from .hubtools import Participant, deferLater


class Garbage(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nnot xml-rpc")


class Hangup(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.abortConnection()


async def bad_client(hub, proto, subs):
    factory = protocol.Factory.forProtocol(proto)
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    c = await Participant(hub.url).register(hub.secret, callable=False, name=proto.__name__)
    await c.call("setXmlrpcCallback", f"http://127.0.0.1:{port.getHost().port}/")
    await c.call("declareSubscriptions", subs)
    return c, port


@pytest.mark.parametrize("proto", [Garbage, Hangup])
@pytest_twisted.ensureDeferred
async def test_broken_callbacks(hub, clients, proto):
    """Callers get a timely samp.error; others see no delay; 3 failures eject the client."""
    bad, port = await bad_client(hub, proto, {"a.b": {}})
    good = await clients(subs={"a.b": {}, "samp.hub.event.unregister": {}})
    sender = await clients()
    try:
        start = reactor.seconds()
        r = await sender.call("callAndWait", bad.id, {"samp.mtype": "a.b"}, "30")
        assert r["samp.status"] == "samp.error" and proto.__name__ in \
            r["samp.error"]["samp.errortxt"]
        assert reactor.seconds() - start < 2
        for i in range(2):
            await sender.call("notifyAll", {"samp.mtype": "a.b", "samp.params": {"i": str(i)}})
        await good.recorder.wait_for(
            lambda c: c[-1]["samp.mtype"] == "samp.hub.event.unregister"
            and c[-1]["samp.params"]["id"] == bad.id, timeout=5)
        assert bad.id not in await sender.call("getRegisteredClients")
        assert len([c for c in good.recorder.calls if c[-1]["samp.mtype"] == "a.b"]) == 2
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_slow_callback_times_out(tmp_path):
    """A callback slower than --callback-timeout fails the call with samp.error."""
    from .hubtools import start_hub

    service = await start_hub(tmp_path, callback_timeout=0.5)
    try:
        slow = await Participant(service.url).register(service.secret, subs={"a.b": {}})
        slow.recorder.hang = True
        sender = await Participant(service.url).register(service.secret, callable=False)
        r = await sender.call("callAndWait", slow.id, {"samp.mtype": "a.b"}, "30")
        assert "no answer within 0.5s" in r["samp.error"]["samp.errortxt"]
        await slow.close()
    finally:
        await service.stopService()


def test_sigkill_leaves_stale_lockfile_that_next_hub_replaces(tmp_path):
    """A hub killed with SIGKILL leaves its lockfile; the next hub detects it is stale."""
    home = tmp_path / "home"
    home.mkdir()
    lockfile = home / ".samp"
    proc = subprocess.Popen(hub_command(lockfile), env=peer_env(home, lockfile),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        for line in proc.stdout:
            if HUB_READY_TEXT.encode() in line:
                break
        old = read_lockfile(lockfile)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert lockfile.exists()
    with running_hub(tmp_path) as hub:
        assert hub.secret != old.secret
        assert "does not answer; replacing it" in hub.log_text()


def test_sigterm_bounded_with_hung_client(tmp_path):
    """SIGTERM: exit 0 within the shutdown grace even if a subscriber never answers."""
    import xmlrpc.client

    with running_hub(tmp_path, "--shutdown-grace", "2") as hub:
        import socket

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)  # accepts connections, never answers
        try:
            proxy = xmlrpc.client.ServerProxy(hub.url)
            key = proxy.samp.hub.register(hub.secret)["samp.private-key"]
            proxy.samp.hub.setXmlrpcCallback(key, f"http://127.0.0.1:{listener.getsockname()[1]}/")
            proxy.samp.hub.declareSubscriptions(key, {"samp.hub.event.shutdown": {}})
            start = time.monotonic()
            hub.proc.send_signal(signal.SIGTERM)
            assert hub.proc.wait(timeout=15) == 0
            assert time.monotonic() - start < 6
            assert not hub.lockfile.exists()
        finally:
            listener.close()


def test_two_hubs_at_once(tmp_path):
    """Two hubs started together on one lockfile: exactly one wins, the other says why."""
    home = tmp_path / "home"
    home.mkdir()
    lockfile = home / ".samp"
    env = peer_env(home, lockfile)
    procs = [subprocess.Popen(hub_command(lockfile), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=tmp_path,
                              text=True) for _ in range(2)]
    try:
        loser = None
        deadline = time.monotonic() + 60
        while loser is None and time.monotonic() < deadline:
            for p in procs:
                if p.poll() is not None:
                    loser = p
            if loser is None:
                os.sched_yield() if hasattr(os, "sched_yield") else None
                try:
                    procs[0].wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
        assert loser is not None, "both hubs kept running"
        winner = procs[1 - procs.index(loser)]
        assert loser.returncode == 1
        err = loser.stderr.read()
        assert "a SAMP hub is already running at" in err and "Traceback" not in err
        assert winner.poll() is None
        info = read_lockfile(lockfile)
        assert info.extra["hub.pid"] == str(winner.pid)
        winner.send_signal(signal.SIGTERM)
        assert winner.wait(timeout=15) == 0
        assert not lockfile.exists()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for stream in (p.stdout, p.stderr):
                stream.close()


@pytest_twisted.ensureDeferred
async def test_refusing_client_ejected_and_reregistration_ok(hub, clients):
    dead = await clients(subs={"a.b": {}})
    await dead.port.stopListening()
    dead.port = None
    sender = await clients()
    for _ in range(3):
        await sender.call("notify", dead.id, {"samp.mtype": "a.b"})
        await deferLater(0.05)
    for _ in range(40):
        if dead.id not in await sender.call("getRegisteredClients"):
            break
        await deferLater(0.05)
    assert dead.id not in await sender.call("getRegisteredClients")
    again = await clients(subs={"a.b": {}})
    assert again.id != dead.id


class BareLF(protocol.Protocol):
    """A callback server answering with bare-LF header lines, as DS9's does."""

    received = 0

    def dataReceived(self, data):
        if b"</methodCall>" in data:
            BareLF.received += 1
            body = b"<?xml version='1.0'?>\n<methodResponse><params><param><value>" \
                   b"<string></string></value></param></params></methodResponse>\n"
            self.transport.write(b"HTTP/1.0 200 OK\nContent-Type: text/xml\n"
                                 b"Content-Length: %d\n\n" % len(body) + body)
            self.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_bare_lf_callback_answers(hub, clients):
    """Callback answers with bare-LF headers are understood (SAOImage DS9)."""
    BareLF.received = 0
    ds9, port = await bad_client(hub, BareLF, {"a.b": {}})
    sender = await clients()
    try:
        for _ in range(4):
            await sender.call("notify", ds9.id, {"samp.mtype": "a.b"})
        for _ in range(100):
            if BareLF.received >= 4:
                break
            await deferLater(0.02)
        assert BareLF.received == 4
        assert hub.hub.stats.delivery_failures == 0
        assert ds9.id in await sender.call("getRegisteredClients")
    finally:
        await port.stopListening()
