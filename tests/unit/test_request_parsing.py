"""
LimitedRequest skips Twisted's form parsing for XML bodies (issue 16: the
email-package Content-Type parse was a large share of each XML-RPC call's
CPU) and keeps it for real form submissions.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from samptwist.hub.httpguard import GuardedSite


class Recorder(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.args: List[Dict[bytes, Any]] = []

    def render_POST(self, request: Any) -> bytes:
        self.args.append(dict(request.args))
        return b"ok"


def post(site: GuardedSite, ctype: bytes, body: bytes) -> bytes:
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(
        b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (ctype, len(body), body)
    )
    return transport.value()


@pytest.mark.parametrize("ctype", [b"text/xml", b"application/xml; charset=utf-8", b"TEXT/XML"])
def test_xml_bodies_are_not_parsed_as_forms(monkeypatch, ctype):
    parsed = []
    monkeypatch.setattr(
        "twisted.web.http._parseContentType", lambda line: parsed.append(line) or b"x/y"
    )
    recorder = Recorder()
    answer = post(GuardedSite(recorder), ctype, b"a=1&b=2")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert recorder.args == [{}]
    assert parsed == []


def test_form_submissions_are_still_parsed():
    recorder = Recorder()
    post(GuardedSite(recorder), b"application/x-www-form-urlencoded", b"a=1&b=2")
    assert recorder.args == [{b"a": [b"1"], b"b": [b"2"]}]
