"""
Standard Profile callback delivery (samptwist.hub.delivery) with a fake
HTTP agent and a task.Clock: ordering, isolation, timeouts, answers.
"""

import xmlrpc.client

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers

from samptwist.errors import SAMPValueError
from samptwist.hub.callbacks import DeliveryFailed
from samptwist.hub.delivery import CallbackCaller, XmlRpcCallbackTarget, check_callback_url

OK = xmlrpc.client.dumps(("",), methodresponse=True).encode()


class FakeResponse:
    def __init__(self, body=OK, code=200, version=(b"HTTP", 1, 1), headers=None):
        self.body, self.code, self.version = body, code, version
        self.phrase = b"OK"
        self.headers = Headers(headers or {})
        self.length = len(body)

    def deliverBody(self, protocol):
        protocol.dataReceived(self.body)
        protocol.connectionLost(Failure(ResponseDone()))


class FakeAgent:
    """Records requests; each answer is given by the test."""

    def __init__(self):
        self.requests = []

    def request(self, method, uri, headers=None, bodyProducer=None):
        d = Deferred()
        self.requests.append((uri.decode(), bodyProducer.body, d))
        return d

    def answer(self, index=0, response=None):
        uri, body, d = self.requests.pop(index)
        d.callback(response or FakeResponse())
        return xmlrpc.client.loads(body)


@pytest.fixture
def setup():
    clock = Clock()
    agent = FakeAgent()
    caller = CallbackCaller(clock, timeout=10, agent=agent)
    return clock, agent, caller


def outcome(d):
    out = []
    d.addBoth(out.append)
    return out


def test_serial_order_per_recipient(setup):
    """HUB-ORDER-1: one request in flight per recipient, in order, key first."""
    clock, agent, caller = setup
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "KEY")
    results = [outcome(t.receiveNotification("c1", {"samp.mtype": f"m{i}"})) for i in range(3)]
    assert len(agent.requests) == 1
    for i in range(3):
        (key, sender, message), method = agent.answer()
        assert (method, key, sender, message["samp.mtype"]) == (
            "samp.client.receiveNotification", "KEY", "c1", f"m{i}")
        assert results[i] == [None]


def test_slow_recipient_does_not_block_others(setup):
    """STD-FAIL-6: a hung recipient holds up only its own queue."""
    clock, agent, caller = setup
    slow = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "A")
    fast = XmlRpcCallbackTarget(caller, "http://127.0.0.1:2/", "B")
    slow.receiveNotification("c9", {"samp.mtype": "x"})
    got = outcome(fast.receiveNotification("c9", {"samp.mtype": "x"}))
    agent.answer(1)
    assert got == [None]


def test_timeout(setup):
    """STD-FAIL-6: bounded time per callback; counts as unreachable."""
    clock, agent, caller = setup
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K")
    got = outcome(t.receiveCall("c1", "m-1", {"samp.mtype": "x"}))
    clock.advance(9)
    assert got == []
    clock.advance(2)
    assert got[0].check(DeliveryFailed) and got[0].value.unreachable
    assert "10s" in got[0].value.reason


def test_fault_is_not_unreachable(setup):
    clock, agent, caller = setup
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K")
    got = outcome(t.receiveCall("c1", "m-1", {"samp.mtype": "x"}))
    fault = xmlrpc.client.dumps(xmlrpc.client.Fault(1, "bad key"), methodresponse=True).encode()
    agent.answer(0, FakeResponse(fault))
    assert got[0].check(DeliveryFailed) and not got[0].value.unreachable
    assert "bad key" in got[0].value.reason


@pytest.mark.parametrize(
    "response, text",
    [(FakeResponse(b"<html>hi</html>"), "not XML-RPC"), (FakeResponse(code=404), "HTTP 404")],
)
def test_garbage_answers(setup, response, text):
    clock, agent, caller = setup
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K")
    got = outcome(t.receiveNotification("c1", {"samp.mtype": "x"}))
    agent.answer(0, response)
    assert got[0].check(DeliveryFailed) and text in got[0].value.reason


def test_http10_server_gets_fresh_connections(setup):
    """JSAMP's HTTP/1.0 callback server: do not reuse its connections."""
    clock, agent, caller = setup
    calls = []

    def call(url, body, keepalive=True, lane=None):
        calls.append(keepalive)
        return succeed(False) if len(calls) == 1 else Deferred()  # the first: not persistent

    caller.call = call
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K")
    t.receiveNotification("c1", {"samp.mtype": "x"})
    t.receiveNotification("c1", {"samp.mtype": "x"})
    assert calls == [True, False]


def test_queue_bound_and_close(setup):
    clock, agent, caller = setup
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K", max_queue=2)
    first = outcome(t.receiveNotification("c1", {"samp.mtype": "x"}))  # in flight
    queued = [outcome(t.receiveNotification("c1", {"samp.mtype": "x"})) for _ in range(2)]
    over = outcome(t.receiveNotification("c1", {"samp.mtype": "x"}))
    assert over[0].check(DeliveryFailed) and "queue is full" in over[0].value.reason
    t.close()
    assert all(q[0].check(DeliveryFailed) and q[0].value.gone for q in queued)
    agent.answer()
    assert first == [None]
    assert outcome(t.receiveNotification("c1", {}))[0].value.gone


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/xmlrpc", "https://localhost/"])
def test_callback_url_ok(url):
    assert check_callback_url(url) == url


@pytest.mark.parametrize("url", ["ftp://x/", "127.0.0.1:80", "http://", "http://h:99999/", 5])
def test_callback_url_bad(url):
    with pytest.raises(SAMPValueError):
        check_callback_url(url)


def test_ejection_drops_backlog_before_disconnect(setup):
    """ADM-DISC-1: an ejected client's backlog is dropped so samp.hub.disconnect
    is the next callback after the one in flight."""
    from samptwist.hub.core import Hub

    clock, agent, caller = setup
    hub = Hub(clock)
    c = hub.register("standard")
    target = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", c.private_key)
    hub.set_callback(c.private_key, target)
    hub.declare_subscriptions(c.private_key, {"a.b": {}, "samp.hub.disconnect": {}})
    sender = hub.register("standard")
    for _ in range(50):
        hub.notify(sender.private_key, c.public_id, {"samp.mtype": "a.b"})
    assert len(target) >= 49
    hub.eject(c, "testing")
    assert len(target) == 1  # only the farewell waits behind the request in flight
    agent.answer()  # the request that was in flight
    (key, sender_id, message), method = agent.answer()
    assert message["samp.mtype"] == "samp.hub.disconnect"
    assert message["samp.params"] == {"reason": "testing"}


# -- the production path: the hand-written HTTP client over StringTransport --


def _connect(reactor, index):
    from twisted.internet.testing import StringTransport

    _, _, factory, _, _ = reactor.tcpClients[index]
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def _http_answer(body, version="HTTP/1.1", length=True):
    head = f"{version} 200 OK\r\n" + (f"Content-Length: {len(body)}\r\n" if length else "")
    return (head + "\r\n").encode() + body


def test_direct_path_over_transport():
    """No agent: callbacks go through samptwist._httpclient; an HTTP/1.0
    recipient (pyvo, JSAMP) gets Connection: close from then on, a fault
    counts as reachable."""
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    caller = CallbackCaller(reactor, timeout=10)
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:9/cb", "KEY")
    first = outcome(t.receiveNotification("c1", {"samp.mtype": "a"}))
    second = outcome(t.receiveCall("c1", "m-1", {"samp.mtype": "b"}))
    proto, transport = _connect(reactor, 0)
    request = transport.value()
    assert request.startswith(b"POST /cb HTTP/1.1\r\n")
    assert b"Connection: close" not in request
    (key, sender, message), method = xmlrpc.client.loads(request.partition(b"\r\n\r\n")[2])
    assert (method, key, message["samp.mtype"]) == ("samp.client.receiveNotification", "KEY", "a")
    proto.dataReceived(_http_answer(OK, "HTTP/1.0", length=False))
    assert first == []
    proto.connectionLost(None)
    assert first == [None]
    proto2, transport2 = _connect(reactor, 1)
    assert b"\r\nConnection: close\r\n" in transport2.value()
    fault = xmlrpc.client.dumps(xmlrpc.client.Fault(1, "no"), methodresponse=True).encode()
    proto2.dataReceived(_http_answer(fault, "HTTP/1.0", length=True))
    assert second[0].check(DeliveryFailed) and not second[0].value.unreachable


def test_direct_path_timeout_and_http_error():
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    caller = CallbackCaller(reactor, timeout=10)
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:9/", "KEY")
    hung = outcome(t.receiveNotification("c1", {"samp.mtype": "a"}))
    refused = outcome(t.receiveNotification("c1", {"samp.mtype": "a"}))
    _connect(reactor, 0)
    reactor.advance(11)
    assert hung[0].check(DeliveryFailed) and hung[0].value.unreachable
    assert "10s" in hung[0].value.reason
    proto, _ = _connect(reactor, 1)
    proto.dataReceived(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    assert refused[0].check(DeliveryFailed) and "HTTP 500" in refused[0].value.reason
