"""
How the hub listens on its endpoint string: plain TCP through
C{reactor.listenTCP} (no endpoint machinery, so no TLS stack), anything else
through Twisted's parser, with the same meaning either way.
"""

from __future__ import annotations

import pytest
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

from samptwist.constants import DEFAULT_LISTEN, DEFAULT_WEB_LISTEN
from samptwist.hub.service import PlainTCP, listen, plain_tcp


@pytest.mark.parametrize(
    "description, expected",
    [
        (DEFAULT_LISTEN, PlainTCP(0, "127.0.0.1", 50)),
        (DEFAULT_WEB_LISTEN, PlainTCP(21012, "127.0.0.1", 50)),
        ("tcp:8000", PlainTCP(8000, "", 50)),
        ("tcp6:8000", PlainTCP(8000, "::", 50)),
        ("tcp:port=8000:backlog=5", PlainTCP(8000, "", 5)),
        ("tcp6:0:interface=\\:\\:1", PlainTCP(0, "::1", 50)),
        ("tcp:interface=127.0.0.2:port=1", PlainTCP(1, "127.0.0.2", 50)),
    ],
)
def test_plain_tcp(description, expected):
    assert plain_tcp(description) == expected


@pytest.mark.parametrize(
    "description",
    [
        "unix:/tmp/hub.sock", "ssl:443", "systemd:domain=INET:index=0", "tcp", "tcp:",
        "tcp:http", "tcp:70000", "tcp:-1", "tcp:0:backlog=0", "tcp:0:50",
        "tcp:0:interface=a\\b", "tcp:0:unknown=1", "TCP:0", "tcp:interface=127.0.0.1",
    ],
)
def test_other_strings_are_left_to_twisted(description):
    assert plain_tcp(description) is None


def test_listen_plain_tcp_without_endpoints():
    reactor = MemoryReactor()
    factory = Factory()
    port = []
    listen(reactor, "tcp:0:interface=127.0.0.1", factory).addCallback(port.append)
    assert reactor.tcpServers == [(0, factory, 50, "127.0.0.1")]
    assert port  # fired at once


def test_listen_other_kinds_through_twisted(tmp_path):
    reactor = MemoryReactor()
    factory = Factory()
    path = str(tmp_path / "hub.sock")
    listen(reactor, f"unix:{path}", factory)
    assert [(p, f) for p, f, *_ in reactor.unixServers] == [(path, factory)]


def test_listen_bad_string_fails_the_deferred():
    failures = []
    listen(MemoryReactor(), "nonsense:1", Factory()).addErrback(failures.append)
    assert failures and failures[0].check(ValueError)
