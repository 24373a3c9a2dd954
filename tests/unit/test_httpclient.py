"""
samptwist._httpclient at the transport level: the hand-written HTTP/1.1
client that carries the hub's callbacks, its lockfile ping and the client's
calls to the hub, driven byte by byte over StringTransport (and over iosim
against a real twisted.web XML-RPC server), with a MemoryReactorClock for
its time-outs.  No sockets.
"""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.web import server, xmlrpc

from samptwist._http import TolerantHTTPChannel
from samptwist._httpclient import MAX_HEAD, Answer, HTTPClient, HTTPFailed, HTTPTimedOut, dechunk
from samptwist._xmlrpc import encode_call, ok_answer, parse_answer

URL = "http://127.0.0.1:8000/xmlrpc"
BODY = encode_call("samp.client.receiveNotification", ("key", "c1", {"samp.mtype": "x"}))
OK = ok_answer("")


def outcome(d: Deferred) -> List[Any]:
    out: List[Any] = []
    d.addBoth(out.append)
    return out


class Rig:
    """An HTTPClient on a MemoryReactorClock; connections made by hand."""

    def __init__(self, **kwargs: Any) -> None:
        self.reactor = MemoryReactorClock()
        kwargs.setdefault("timeout", 10.0)
        self.http = HTTPClient(self.reactor, **kwargs)
        self.connected = 0

    def post(self, url: str = URL, body: bytes = BODY, keepalive: bool = True) -> List[Any]:
        return outcome(self.http.post(url, body, keepalive))

    def answered(self) -> Tuple[Any, StringTransport]:
        """One POST answered on a new persistent connection; @return: it."""
        got = self.post()
        proto, transport = self.connect()
        proto.dataReceived(head("200 OK", f"Content-Length: {len(OK)}") + OK)
        assert got == [Answer(200, OK, True)]
        return proto, transport

    def connect(self) -> Tuple[Any, StringTransport]:
        """Complete the newest pending connectTCP; @return: (protocol, transport)."""
        host, port, factory, timeout, _ = self.reactor.tcpClients[self.connected]
        self.connected += 1
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport


def head(status: str = "200 OK", *headers: str, version: str = "HTTP/1.1", eol: str = "\r\n"):
    return (eol.join([f"{version} {status}", *headers]) + eol + eol).encode()


def test_request_bytes_and_content_length_answer():
    rig = Rig()
    got = rig.post()
    host, port, _, timeout, _ = rig.reactor.tcpClients[0]
    assert (host, port, timeout) == ("127.0.0.1", 8000, 10.0)
    proto, transport = rig.connect()
    sent = transport.value()
    request, _, body = sent.partition(b"\r\n\r\n")
    lines = request.split(b"\r\n")
    assert lines[0] == b"POST /xmlrpc HTTP/1.1"
    assert b"Host: 127.0.0.1:8000" in lines and b"Content-Type: text/xml" in lines
    assert f"Content-Length: {len(BODY)}".encode() in lines
    assert b"Connection: close" not in lines
    assert body == BODY
    # the answer arrives in pieces, split inside the header and the body
    answer = head("200 OK", f"Content-Length: {len(OK)}") + OK
    for i in range(0, len(answer), 7):
        assert got == []
        proto.dataReceived(answer[i:i + 7])
    assert got == [Answer(200, OK, True)]
    assert parse_answer(got[0].body) == ""
    assert not transport.disconnecting  # kept for the next request


def test_chunked_answer():
    rig = Rig()
    got = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(head("200 OK", "Transfer-Encoding: chunked"))
    proto.dataReceived(b"5\r\n" + OK[:5] + b"\r\n")
    proto.dataReceived(b"%x;ext=1\r\n" % (len(OK) - 5) + OK[5:] + b"\r\n")
    assert got == []
    proto.dataReceived(b"0\r\n")
    assert got == []  # the (empty) trailer has not ended yet
    proto.dataReceived(b"\r\n")
    assert got == [Answer(200, OK, True)]
    assert not transport.disconnecting


@pytest.mark.parametrize(
    "data, body",
    [
        (b"3\r\nabc\r\n0\r\n\r\n", b"abc"),
        (b"3\nabc\n0\n\n", b"abc"),  # bare LF
        (b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", b"abc"),
        (b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n", None),
        (b"3\r\nab", None),
        (b"zz\r\nabc\r\n0\r\n\r\n", b""),  # garbage: refused by the XML-RPC parser
    ],
)
def test_dechunk(data, body):
    assert dechunk(data) == body


def test_close_delimited_answer_http10():
    """pyvo's and JSAMP's HTTP/1.0 callback servers: no length, the end of
    the connection ends the body, and the connection is not reused."""
    rig = Rig()
    got = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(head("200 OK", "Server: BaseHTTP/0.6", version="HTTP/1.0"))
    proto.dataReceived(OK[:10])
    proto.dataReceived(OK[10:])
    assert got == []
    proto.connectionLost(Failure(ConnectionDone()))
    assert got == [Answer(200, OK, False)]


def test_not_persistent_is_closed_and_not_pooled():
    rig = Rig()
    got = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(head("200 OK", "Connection: close", f"Content-Length: {len(OK)}") + OK)
    assert got == [Answer(200, OK, False)]
    assert transport.disconnecting
    rig.post()
    assert len(rig.reactor.tcpClients) == 2  # a new connection


def test_keepalive_false_asks_to_close():
    rig = Rig()
    rig.post(keepalive=False)
    proto, transport = rig.connect()
    assert b"\r\nConnection: close\r\n" in transport.value()


def test_bare_lf_header():
    """SAOImage DS9's Tcl server ends header lines with a bare LF."""
    rig = Rig()
    got = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(head("200 OK", f"Content-Length: {len(OK)}", eol="\n") + OK)
    assert got == [Answer(200, OK, True)]


def test_reused_connection_and_retry_once_after_server_closed_it():
    rig = Rig()
    first = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(head("200 OK", f"Content-Length: {len(OK)}") + OK)
    assert first == [Answer(200, OK, True)]
    transport.clear()
    # the second request goes on the pooled connection...
    second = rig.post()
    assert len(rig.reactor.tcpClients) == 1
    assert transport.value().endswith(BODY)
    # ...which the server had closed meanwhile: sent once more, on a new one
    proto.connectionLost(Failure(ConnectionDone()))
    assert second == [] and len(rig.reactor.tcpClients) == 2
    proto2, transport2 = rig.connect()
    assert transport2.value().endswith(BODY)
    proto2.dataReceived(head("200 OK", f"Content-Length: {len(OK)}") + OK)
    assert second == [Answer(200, OK, True)]


def test_no_second_retry():
    rig = Rig()
    proto, _ = rig.answered()
    got = rig.post()
    proto.connectionLost(Failure(ConnectionDone()))  # retried on a new one...
    proto2, _ = rig.connect()
    proto2.connectionLost(Failure(ConnectionDone()))  # ...which closes too: fails
    assert got[0].check(HTTPFailed) and "connection lost" in got[0].getErrorMessage()


def test_no_retry_once_the_answer_began():
    """A server that began answering did process the request: no resend."""
    rig = Rig()
    proto, _ = rig.answered()
    got = rig.post()
    proto.dataReceived(head("200 OK", f"Content-Length: {len(OK)}"))
    proto.connectionLost(Failure(ConnectionDone()))
    assert got[0].check(HTTPFailed)
    assert len(rig.reactor.tcpClients) == 1


def test_timeout_aborts_the_connection():
    rig = Rig()
    got = rig.post()
    proto, transport = rig.connect()
    rig.reactor.advance(9.9)
    assert got == []
    rig.reactor.advance(0.2)
    assert got[0].check(HTTPTimedOut) and "10s" in got[0].getErrorMessage()
    assert transport.disconnecting
    assert not rig.reactor.getDelayedCalls()


def test_timeout_while_connecting_stops_connecting():
    rig = Rig()
    got = rig.post()
    connector = rig.reactor.connectors[0]
    rig.reactor.advance(10.5)
    assert got[0].check(HTTPTimedOut)
    assert connector.stoppedConnecting


def test_no_timeout_and_cancel():
    """timeout=None (the client's hub proxy bounds its own calls): waits for
    ever, until cancelled, which drops the connection."""
    rig = Rig(timeout=None, connect_timeout=5)
    got = rig.post()
    assert rig.reactor.tcpClients[0][3] == 5
    proto, transport = rig.connect()
    rig.reactor.advance(3600)
    assert got == []
    got_d = rig.http.post(URL, BODY)  # a second exchange, on a second connection
    got_d.cancel()
    assert outcome(got_d)[0].check(CancelledError)
    rig.reactor.advance(1)
    assert got == []


def test_cancel_in_flight_aborts():
    rig = Rig()
    d = rig.http.post(URL, BODY)
    proto, transport = rig.connect()
    d.cancel()
    assert outcome(d)[0].check(CancelledError)
    assert transport.disconnecting
    assert not rig.reactor.getDelayedCalls()


def test_connection_refused():
    rig = Rig()
    got = rig.post()
    host, port, factory, _, _ = rig.reactor.tcpClients[0]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert got[0].check(HTTPFailed) and "refused" in got[0].getErrorMessage()
    assert not rig.reactor.getDelayedCalls()


@pytest.mark.parametrize(
    "answer, text",
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", "too large"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * (MAX_HEAD + 1), "oversized header"),
    ],
)
def test_bad_answers(answer, text):
    rig = Rig(max_response=1000)
    got = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(answer)
    assert got[0].check(HTTPFailed) and text in got[0].getErrorMessage()
    assert transport.disconnecting


def test_close_delimited_answer_too_large():
    rig = Rig(max_response=1000)
    got = rig.post()
    proto, transport = rig.connect()
    proto.dataReceived(head("200 OK", version="HTTP/1.0"))
    for _ in range(100):
        proto.dataReceived(b"x" * 1000)
        if got:
            break
    assert got[0].check(HTTPFailed) and "too large" in got[0].getErrorMessage()


def test_http_error_is_an_answer():
    rig = Rig()
    got = rig.post()
    proto, _ = rig.connect()
    proto.dataReceived(head("404 Not Found", "Content-Length: 2") + b"no")
    assert got == [Answer(404, b"no", True)]


def test_idle_timeout_closes_pooled_connection():
    rig = Rig(idle_timeout=30)
    proto, transport = rig.answered()
    rig.reactor.advance(29)
    assert not transport.disconnecting
    rig.reactor.advance(2)
    assert transport.disconnecting
    proto.connectionLost(Failure(ConnectionDone()))
    rig.post()
    assert len(rig.reactor.tcpClients) == 2


def test_unasked_bytes_on_idle_connection_drop_it():
    rig = Rig()
    proto, transport = rig.answered()
    proto.dataReceived(b"HTTP/1.1 200 OK\r\n")
    assert transport.disconnecting
    rig.post()
    assert len(rig.reactor.tcpClients) == 2


def test_close_closes_connections():
    rig = Rig()
    proto, transport = rig.answered()
    done = outcome(rig.http.close())
    assert done == [None] and transport.disconnecting


def test_bad_url():
    rig = Rig()
    got = rig.post("http://127.0.0.1:99999/")
    assert got[0].check(HTTPFailed) and "bad URL" in got[0].getErrorMessage()


# -- against a real twisted.web XML-RPC server, over iosim -----------------


class Echo(xmlrpc.XMLRPC):
    def xmlrpc_echo(self, value: Any) -> Any:
        return value


def pump_to(site: Any, reactor: MemoryReactorClock) -> Any:
    """@return: an iosim pump joining the client's first connection to C{site}."""
    _, _, factory, _, _ = reactor.tcpClients[0]
    client_proto = factory.buildProtocol(None)
    server_proto = site.buildProtocol(None)
    return iosim.connect(
        server_proto, iosim.makeFakeServer(server_proto),
        client_proto, iosim.makeFakeClient(client_proto),
    )


def test_against_twisted_web_over_iosim():
    """Two calls on one persistent connection to the kind of server the hub
    and our clients run (twisted.web, the tolerant channel)."""
    reactor = MemoryReactorClock()
    http = HTTPClient(reactor, timeout=10)
    site = server.Site(Echo())
    site.protocol = TolerantHTTPChannel  # type: ignore[assignment]

    def call(value: Any) -> List[Any]:
        d = http.post("http://127.0.0.1:1/", encode_call("echo", (value,)))
        d.addCallback(lambda answer: (answer.persistent, parse_answer(answer.body)))
        return outcome(d)

    first = call("one")
    pump = pump_to(site, reactor)
    pump.flush()
    assert first == [(True, "one")]
    second = call({"samp.mtype": "two"})
    pump.flush()
    assert second == [(True, {"samp.mtype": "two"})]
    assert len(reactor.tcpClients) == 1  # the same connection


# -- pipelining: requests of one lane on one connection (issue 16) -------------

LANE = object()


def ok_bytes(value: str = "") -> bytes:
    body = ok_answer(value)
    return head("200 OK", f"Content-Length: {len(body)}") + body


def requests_in(data: bytes) -> int:
    return data.count(b"POST /xmlrpc HTTP/1.1")


def test_lane_requests_ride_one_connection_in_order():
    rig = Rig()
    got = [outcome(rig.http.post(URL, encode_call("m", (str(i),)), lane=LANE)) for i in range(3)]
    assert len(rig.reactor.tcpClients) == 1  # the others wait for the connection
    proto, transport = rig.connect()
    sent = transport.value()
    assert requests_in(sent) == 3
    assert [sent.index(b"<string>%d</string>" % i) for i in range(3)] == sorted(
        sent.index(b"<string>%d</string>" % i) for i in range(3)
    )
    # all three answers in one read, then a fourth request on the same connection
    proto.dataReceived(ok_bytes("a") + ok_bytes("b") + ok_bytes("c"))
    assert [parse_answer(g[0].body) for g in got] == ["a", "b", "c"]
    fourth = outcome(rig.http.post(URL, BODY, lane=LANE))
    assert len(rig.reactor.tcpClients) == 1 and requests_in(transport.value()) == 4
    proto.dataReceived(ok_bytes()[:30])
    proto.dataReceived(ok_bytes()[30:])
    assert fourth == [Answer(200, OK, True)]


def test_lanes_do_not_share_connections():
    rig = Rig()
    rig.http.post(URL, BODY, lane=LANE)
    rig.http.post(URL, BODY, lane=object())
    assert len(rig.reactor.tcpClients) == 2


def test_a_closing_answer_sends_the_rest_again_on_a_new_connection():
    rig = Rig()
    got = [outcome(rig.http.post(URL, BODY, lane=LANE)) for _ in range(3)]
    proto, transport = rig.connect()
    closing = head("200 OK", f"Content-Length: {len(OK)}", "Connection: close") + OK
    proto.dataReceived(closing)
    assert got[0] == [Answer(200, OK, False)] and transport.disconnecting
    assert len(rig.reactor.tcpClients) == 2  # the other two, again, in order
    proto2, transport2 = rig.connect()
    assert requests_in(transport2.value()) == 2
    proto2.dataReceived(ok_bytes() + closing)
    assert got[1] == [Answer(200, OK, True)] and got[2] == [Answer(200, OK, False)]


def test_connection_lost_sends_unanswered_ones_again_once():
    rig = Rig()
    got = [outcome(rig.http.post(URL, BODY, lane=LANE)) for _ in range(2)]
    proto, transport = rig.connect()
    proto.dataReceived(ok_bytes())  # the first answered
    proto.connectionLost(Failure(ConnectionDone()))  # the second never
    assert got[0] == [Answer(200, OK, True)] and got[1] == []
    proto2, transport2 = rig.connect()
    assert requests_in(transport2.value()) == 1
    proto2.connectionLost(Failure(ConnectionDone()))  # again: no third try
    assert got[1][0].check(HTTPFailed)


def test_a_bad_answer_fails_those_behind_it():
    rig = Rig()
    got = [outcome(rig.http.post(URL, BODY, lane=LANE)) for _ in range(2)]
    proto, transport = rig.connect()
    proto.dataReceived(b"garbage\r\n\r\n")
    assert got[0][0].check(HTTPFailed) and got[1][0].check(HTTPFailed)
    assert "earlier request" in got[1][0].getErrorMessage()
    assert transport.disconnecting


def test_cancelling_one_of_a_lane_keeps_the_connection():
    rig = Rig()
    d1 = rig.http.post(URL, BODY, lane=LANE)
    first = outcome(d1)
    second = outcome(rig.http.post(URL, BODY, lane=LANE))
    proto, transport = rig.connect()
    d1.cancel()
    assert first[0].check(CancelledError) and not transport.disconnecting
    proto.dataReceived(ok_bytes("dropped") + ok_bytes("kept"))
    assert parse_answer(second[0].body) == "kept"


def test_timeout_of_a_lane_request_aborts_and_resends_those_behind():
    rig = Rig()
    first = outcome(rig.http.post(URL, BODY, lane=LANE))
    rig.reactor.advance(5)
    second = outcome(rig.http.post(URL, BODY, lane=LANE))
    proto, transport = rig.connect()
    rig.reactor.advance(5)  # the first times out: its connection is dropped
    assert first[0].check(HTTPTimedOut) and transport.disconnecting
    proto.connectionLost(Failure(ConnectionDone()))
    assert second == [] and len(rig.reactor.tcpClients) == 2  # sent again
    proto2, transport2 = rig.connect()
    assert requests_in(transport2.value()) == 1
    proto2.dataReceived(ok_bytes())
    assert second == [Answer(200, OK, True)]


def test_chunked_answers_pipelined():
    rig = Rig()
    got = [outcome(rig.http.post(URL, BODY, lane=LANE)) for _ in range(2)]
    proto, _ = rig.connect()
    chunked = head("200 OK", "Transfer-Encoding: chunked") + b"%x\r\n%s\r\n0\r\n\r\n" % (
        len(OK), OK
    )
    proto.dataReceived(chunked + chunked)
    assert got == [[Answer(200, OK, True)], [Answer(200, OK, True)]]


def test_connect_failure_fails_the_whole_lane():
    rig = Rig()
    got = [outcome(rig.http.post(URL, BODY, lane=LANE)) for _ in range(2)]
    _, _, factory, _, _ = rig.reactor.tcpClients[0]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert all(g[0].check(HTTPFailed) for g in got)
    again = outcome(rig.http.post(URL, BODY, lane=LANE))
    assert len(rig.reactor.tcpClients) == 2 and again == []


def test_pipelined_against_twisted_web_over_iosim():
    """twisted.web reads pipelined requests one after another and answers in order."""
    reactor = MemoryReactorClock()
    http = HTTPClient(reactor, timeout=10)
    site = server.Site(Echo())
    site.protocol = TolerantHTTPChannel  # type: ignore[assignment]
    got = [
        outcome(http.post("http://127.0.0.1:1/", encode_call("echo", (str(i),)), lane=LANE)
                .addCallback(lambda a: parse_answer(a.body)))
        for i in range(5)
    ]
    pump = pump_to(site, reactor)
    pump.flush()
    assert got == [[str(i)] for i in range(5)]
    assert len(reactor.tcpClients) == 1
