"""
The Standard Profile site's fast lane (samptwist.hub.fastlane, issue 16):
plain XML-RPC POSTs are answered by the channel itself, byte for byte what
twisted.web's path answers; everything else goes to twisted.web, with its
limits and refusals.
"""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel

from samptwist._log import set_level
from samptwist.hub import fastlane
from samptwist.hub.fastlane import FastLaneChannel, http_date, read_head
from samptwist.hub.service import HubService


def request(method: str, *args: Any, head: bytes = b"", version: bytes = b"HTTP/1.1",
            path: bytes = b"/xmlrpc", ctype: bytes = b"text/xml") -> bytes:
    body = xmlrpc.client.dumps(args, method).encode()
    return (
        b"POST %s %s\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n\r\n"
        % (path, version, ctype, head, len(body))
    ) + body


def answers(data: bytes) -> List[Tuple[bytes, bytes]]:
    """The (head, body) of each HTTP answer in C{data}."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        out.append((head, rest[:length]))
        data = rest[length:]
    return out


def value(body: bytes) -> Any:
    return xmlrpc.client.loads(body)[0][0]


class Rig:
    def __init__(self, tmp_path: Path, **kwargs: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)
        self.service = HubService(reactor=self.reactor, lockfile=tmp_path / "lock", **kwargs)
        self.hub = self.service.hub

    def connect(self) -> Tuple[FastLaneChannel, StringTransport]:
        channel = self.service.site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        return channel, transport

    def register(self) -> str:
        channel, transport = self.connect()
        channel.dataReceived(request("samp.hub.register", self.service.secret))
        return value(answers(transport.value())[0][1])["samp.private-key"]


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


def test_a_call_takes_the_lane_and_is_answered_like_twisted_web(rig, monkeypatch):
    created = []
    monkeypatch.setattr(
        "samptwist.hub.httpguard.LimitedRequest.__init__",
        lambda *a, **k: created.append(a) or (_ for _ in ()).throw(AssertionError("slow path")),
    )
    channel, transport = rig.connect()
    channel.dataReceived(request("samp.hub.ping"))
    [(head, body)] = answers(transport.value())
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Type: text/xml; charset=utf-8" in lines
    assert b"Date: " + http_date(rig.reactor.seconds()) in lines
    assert value(body) == ""
    assert created == [] and channel._on_lane and not transport.disconnecting


def test_pipelined_and_split_requests(rig):
    key = rig.register()
    channel, transport = rig.connect()
    both = request("samp.hub.getRegisteredClients", key) + request("samp.hub.ping")
    for i in range(len(both)):  # a byte at a time
        channel.dataReceived(both[i:i + 1])
    got = answers(transport.value())
    assert [value(b) for _, b in got] == [["hub"], ""]


def test_faults_are_those_of_twisted_web(rig):
    channel, transport = rig.connect()
    channel.dataReceived(request("samp.hub.nope"))
    channel.dataReceived(request("samp.hub.register", "wrong secret"))
    body = b"<methodCall>"
    channel.dataReceived(
        b"POST /xmlrpc HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    faults = []
    for _, answer in answers(transport.value()):
        with pytest.raises(xmlrpc.client.Fault) as e:
            xmlrpc.client.loads(answer)
        faults.append(e.value.faultString)
    assert "no such method 'samp.hub.nope'" in faults[0]
    assert "wrong samp.secret" in faults[1]
    assert faults[2].startswith("Can't deserialize input")


@pytest.mark.parametrize(
    "version, header", [(b"HTTP/1.0", b""), (b"HTTP/1.1", b"Connection: close\r\n")]
)
def test_closing_requests_close_after_the_answer(rig, version, header):
    channel, transport = rig.connect()
    channel.dataReceived(request("samp.hub.ping", head=header, version=version)
                         + request("samp.hub.ping"))
    [(head, _)] = answers(transport.value())
    assert head.startswith(version + b" 200 OK") and b"Connection: close" in head
    assert transport.disconnecting


@pytest.mark.parametrize("data, status", [
    (request("samp.hub.ping", ctype=b"text/plain"), b"415"),
    (request("samp.hub.ping", path=b"/xmlrpc?x"), b"200"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"200"),
    (request("samp.hub.ping").replace(b"\r\n", b"\n", 3), b"200"),  # bare LF: SAOImage DS9
    (b"POST /xmlrpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"200"),
])
def test_other_requests_leave_the_lane_for_twisted_web(rig, data, status):
    channel, transport = rig.connect()
    channel.dataReceived(data)
    assert not channel._on_lane
    assert transport.value().startswith(b"HTTP/1.1 " + status)


def test_dtds_get_twisted_webs_refusal(rig):
    body = (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><methodCall><methodName>"
            b"samp.hub.ping</methodName></methodCall>")
    channel, transport = rig.connect()
    channel.dataReceived(b"POST /xmlrpc HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
    assert not channel._on_lane
    assert b"may not contain DTDs" in transport.value()


def test_bodies_over_the_site_limit_get_413(tmp_path):
    rig = Rig(tmp_path, max_request_size=100)
    channel, transport = rig.connect()
    channel.dataReceived(request("samp.hub.ping", "x" * 200))
    assert transport.value().startswith(b"HTTP/1.1 413")


def test_large_bodies_go_to_twisted_web(rig, monkeypatch):
    monkeypatch.setattr(fastlane, "MAX_LANE_BODY", 100)
    channel, transport = rig.connect()
    channel.dataReceived(request("samp.hub.ping", "x" * 200))
    assert not channel._on_lane
    assert transport.value().startswith(b"HTTP/1.1 200")


def test_debug_logging_uses_twisted_web_and_its_request_log(rig):
    set_level(LogLevel.debug)
    try:
        channel, transport = rig.connect()
        channel.dataReceived(request("samp.hub.ping"))
    finally:
        set_level(LogLevel.info)
    assert not channel._on_lane and transport.value().startswith(b"HTTP/1.1 200")


def wait_setup(rig: Rig) -> Tuple[str, str]:
    sender = rig.register()
    receiver = rig.register()
    rig.hub.declare_subscriptions(receiver, {"x.y": {}})
    rig.hub.set_callback(receiver, _Sink())
    return sender, rig.hub.client_for_key(receiver).public_id


class _Sink:
    """A callback target that takes everything and never answers calls."""

    def __getattr__(self, name: str) -> Any:
        from twisted.internet.defer import succeed

        return lambda *a: succeed(None) if name.startswith("receive") else None


def test_answers_keep_the_order_of_requests_while_one_waits(rig):
    sender, receiver_id = wait_setup(rig)
    channel, transport = rig.connect()
    channel.dataReceived(
        request("samp.hub.callAndWait", sender, receiver_id, {"samp.mtype": "x.y"}, "5")
        + request("samp.hub.ping")
    )
    assert transport.value() == b""  # the ping waits behind the call
    assert not channel.idle()
    rig.reactor.advance(6)  # the call times out: answered with a fault, then the ping
    got = answers(transport.value())
    assert len(got) == 2
    with pytest.raises(xmlrpc.client.Fault):
        xmlrpc.client.loads(got[0][1])
    assert value(got[1][1]) == "" and channel.idle()


def test_hanging_up_cancels_a_waiting_call(rig):
    sender, receiver_id = wait_setup(rig)
    channel, transport = rig.connect()
    channel.dataReceived(
        request("samp.hub.callAndWait", sender, receiver_id, {"samp.mtype": "x.y"}, "60")
    )
    assert rig.hub.pending_calls == 1
    channel.connectionLost(None)
    assert rig.hub.pending_calls == 0
    rig.reactor.advance(61)
    assert transport.value() == b""


@pytest.mark.parametrize("head, want", [
    (b"POST /xmlrpc HTTP/1.1\r\nContent-Length: 5", (b"HTTP/1.1", 5, False)),
    (b"POST /xmlrpc HTTP/1.0\r\ncontent-length:  7 \r\nConnection: keep-alive",
     (b"HTTP/1.0", 7, True)),
    (b"POST /xmlrpc HTTP/1.1\r\nConnection: Close\r\nContent-Length: 0", (b"HTTP/1.1", 0, True)),
    (b"POST /xmlrpc HTTP/1.1", None),  # no length
    (b"POST /xmlrpc HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5", None),
    (b"POST /xmlrpc HTTP/1.1\r\nContent-Length: -5", None),
    (b"POST /xmlrpc HTTP/1.1\r\nContent-Length : 5", None),
    (b"POST /xmlrpc HTTP/1.1\r\nContent-Length: 5\r\n folded", None),
    (b"POST /xmlrpc HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue", None),
    (b"POST /other HTTP/1.1\r\nContent-Length: 5", None),
    (b"PUT /xmlrpc HTTP/1.1\r\nContent-Length: 5", None),
    (b"POST /xmlrpc HTTP/2\r\nContent-Length: 5", None),
    (b"POST  /xmlrpc HTTP/1.1\r\nContent-Length: 5", None),
])
def test_read_head(head, want):
    assert read_head(head, b"/xmlrpc") == want


def test_http_date_is_formatted_once_a_second(monkeypatch):
    calls = []
    monkeypatch.setattr(fastlane, "datetimeToString", lambda s: calls.append(s) or b"D%d" % s)
    monkeypatch.setattr(fastlane, "_date", [0, b""])
    assert [http_date(5.1), http_date(5.9), http_date(6.0)] == [b"D5", b"D5", b"D6"]
    assert calls == [5, 6]


def test_unexpected_errors_are_logged_and_answered_with_a_fault(rig):
    from twisted.logger import globalLogPublisher

    from samptwist._xmlrpc import Procedure

    def broken(*args: Any) -> None:
        raise RuntimeError("bug")

    rig.service.standard.table.procedures["ping"] = Procedure(broken, 0, 1)
    seen: List[Any] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        channel, transport = rig.connect()
        channel.dataReceived(request("samp.hub.ping"))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    with pytest.raises(xmlrpc.client.Fault) as e:
        xmlrpc.client.loads(answers(transport.value())[0][1])
    assert e.value.faultString == "error"
    assert any(isinstance(getattr(ev.get("log_failure"), "value", None), RuntimeError)
               for ev in seen)
