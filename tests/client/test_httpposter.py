"""
HubProxy over HTTPPoster at the transport level (StringTransport, a
MemoryReactorClock): the client library's production path to the hub.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, List

from twisted.internet.defer import TimeoutError
from twisted.internet.testing import MemoryReactorClock, StringTransport

from samptwist._xmlrpc import fault_answer, ok_answer
from samptwist.client import HTTPPoster, HubProxy, HubUnreachable, TreqPoster
from samptwist.errors import SAMPHubError

URL = "http://127.0.0.1:4444/xmlrpc"


def outcome(d: Any) -> List[Any]:
    out: List[Any] = []
    d.addBoth(out.append)
    return out


def connect(reactor: MemoryReactorClock, index: int) -> Any:
    _, _, factory, _, _ = reactor.tcpClients[index]
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def answer(body: bytes, version: str = "HTTP/1.1", code: str = "200 OK") -> bytes:
    return f"{version} {code}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_calls_share_a_persistent_connection():
    reactor = MemoryReactorClock()
    proxy = HubProxy(URL, reactor, timeout=5)
    assert isinstance(proxy.poster, HTTPPoster) and TreqPoster is HTTPPoster
    first = outcome(proxy.call("ping"))
    proto, transport = connect(reactor, 0)
    args, method = xmlrpc.client.loads(transport.value().partition(b"\r\n\r\n")[2])
    assert (method, args) == ("samp.hub.ping", ())
    assert b"User-Agent: samptwist-client" in transport.value()
    proto.dataReceived(answer(ok_answer("")))
    assert first == [""]
    transport.clear()
    second = outcome(proxy.call("getRegisteredClients", "key"))
    assert len(reactor.tcpClients) == 1
    proto.dataReceived(answer(ok_answer(["hub", "c1"])))
    assert second == [["hub", "c1"]]
    assert not reactor.getDelayedCalls() or all(
        c.getTime() - reactor.seconds() == 30 for c in reactor.getDelayedCalls()
    )  # only the idle time-out of the pooled connection is left


def test_hub_that_closes_gets_connection_close():
    """astropy's hub (Python's xmlrpc.server, HTTP/1.0)."""
    reactor = MemoryReactorClock()
    proxy = HubProxy(URL, reactor, timeout=5)
    outcome(proxy.call("ping"))
    proto, transport = connect(reactor, 0)
    proto.dataReceived(answer(ok_answer(""), version="HTTP/1.0"))
    proto.connectionLost(None)
    outcome(proxy.call("ping"))
    proto2, transport2 = connect(reactor, 1)
    assert b"\r\nConnection: close\r\n" in transport2.value()


def test_fault_http_error_garbage_and_timeout():
    reactor = MemoryReactorClock()
    proxy = HubProxy(URL, reactor, timeout=5)
    fault = outcome(proxy.call("notify", "k", "c9", {}))
    proto, transport = connect(reactor, 0)
    proto.dataReceived(answer(fault_answer(3, "no such client c9")))
    assert fault[0].check(SAMPHubError)
    assert (str(fault[0].value), fault[0].value.code) == ("no such client c9", 3)

    http_error = outcome(proxy.call("ping"))
    proto.dataReceived(answer(b"gone", code="404 Not Found"))
    assert http_error[0].check(HubUnreachable) and "HTTP 404" in http_error[0].getErrorMessage()

    garbage = outcome(proxy.call("ping"))
    proto.dataReceived(answer(b"<html/>"))
    assert garbage[0].check(HubUnreachable) and "not XML-RPC" in garbage[0].getErrorMessage()

    hung = outcome(proxy.call("ping"))
    assert len(reactor.tcpClients) == 1 and not transport.disconnecting
    reactor.advance(5.1)
    assert hung[0].check(TimeoutError)
    assert transport.disconnecting  # the time-out cancelled the exchange: connection dropped


def test_no_timeout_waits_for_the_answer():
    """timeout=None (callAndWait without a time-out): no limit of the poster's own."""
    reactor = MemoryReactorClock()
    proxy = HubProxy(URL, reactor, timeout=5)
    got = outcome(proxy.call("callAndWait", "k", "c1", {}, "0", timeout=None))
    proto, _ = connect(reactor, 0)
    reactor.advance(3600)
    assert got == []
    proto.dataReceived(answer(ok_answer({"samp.status": "samp.ok"})))
    assert got == [{"samp.status": "samp.ok"}]


def test_refused():
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure

    reactor = MemoryReactorClock()
    proxy = HubProxy(URL, reactor, timeout=5)
    got = outcome(proxy.call("ping"))
    _, _, factory, _, _ = reactor.tcpClients[0]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert got[0].check(HubUnreachable) and URL in got[0].getErrorMessage()
