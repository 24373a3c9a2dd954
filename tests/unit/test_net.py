"""
The "is this host local?" policies of L{samptwist._net}, side by side: one
table of hosts against every policy, so that their differences are visible
and deliberate.
"""

from __future__ import annotations

import socket
from typing import Optional

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from samptwist import _net

OWN = frozenset({"myhost", "myhost.lan"})


@pytest.fixture(autouse=True)
def own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    This machine is C{myhost} (C{gethostname}), C{myhost.lan} (C{getfqdn}).
    """
    monkeypatch.setattr(_net, "own_host_names", lambda: OWN)


# host (bare, as urlparse().hostname or a peer address gives it):
#   callback URL, peer (Web Profile and status page), translator target,
#   status page Host (no port), Web Profile Host (with the right port)
TABLE = [
    ("127.0.0.1", True, True, True, True, True),
    ("127.1.2.3", True, True, True, True, False),
    ("::1", True, True, True, True, True),
    ("::ffff:127.0.0.1", True, True, True, True, False),
    ("localhost", True, False, True, True, True),
    ("LOCALHOST", True, False, True, True, True),
    ("a.localhost", True, False, True, False, False),
    ("localhost.localdomain", True, False, False, False, False),
    ("myhost", True, False, True, False, False),
    ("myhost.lan", True, False, True, False, False),
    ("MyHost.", True, False, True, False, False),
    ("myhost.example.org", False, False, False, False, False),
    ("10.0.0.1", False, False, True, False, False),
    ("192.168.1.1", False, False, True, False, False),
    ("::ffff:10.0.0.1", False, False, True, False, False),
    ("0.0.0.0", False, False, True, False, False),
    ("example.org", False, False, False, False, False),
    ("8.8.8.8", False, False, False, False, False),
    ("2001:4860:4860::8888", False, False, False, False, False),
]


def _header(host: str, port: Optional[int]) -> bytes:
    shown = f"[{host}]" if ":" in host else host
    return (shown if port is None else f"{shown}:{port}").encode()


def _peer(host: str) -> object:
    if ":" in host:
        return IPv6Address("TCP", host, 5000)
    return IPv4Address("TCP", host, 5000)


@pytest.mark.parametrize("host,callback,peer,translator,status,web", TABLE)
def test_policies(
    host: str, callback: bool, peer: bool, translator: bool, status: bool, web: bool
) -> None:
    assert _net.callback_host_is_local(host) is callback
    assert _net.translator_host_is_local(host) is translator
    assert _net.status_host_is_allowed(_header(host, None)) is status
    assert _net.status_host_is_allowed(_header(host, 8080)) is status
    assert _net.web_host_is_allowed(_header(host, 21012), 21012) is web
    assert _net.web_host_is_allowed(_header(host, 21012), None) is web
    # the Web Profile always wants a port, and the one it listens on
    assert _net.web_host_is_allowed(_header(host, None), None) is False
    assert _net.web_host_is_allowed(_header(host, 21013), 21012) is False
    try:
        address = _peer(host)
    except ValueError:  # a name, not an address: never a peer
        assert not peer
    else:
        assert _net.peer_is_loopback(address) is peer


@pytest.mark.parametrize(
    "header,web,status",
    [
        (None, False, False),
        (b"", False, False),
        (b"::1:21012", False, False),  # IPv6 without brackets
        (b"[::1]", False, True),
        (b"[::1]:21012", True, True),
        (b"127.0.0.1:21012 ", True, True),
        (b"localhost:http", False, True),
        (b"\xff:21012", False, False),
        (b"evil.example:21012", False, False),
    ],
)
def test_host_headers(header: Optional[bytes], web: bool, status: bool) -> None:
    assert _net.web_host_is_allowed(header, 21012) is web
    assert _net.status_host_is_allowed(header) is status


def test_peer_not_tcp() -> None:
    assert not _net.peer_is_loopback(UNIXAddress(b"/tmp/socket"))
    assert not _net.peer_is_loopback(None)


def test_peer_zone() -> None:
    assert _net.peer_is_loopback(IPv6Address("TCP", "::1%lo", 5000))


def test_translator_no_host() -> None:
    assert _net.translator_host_is_local(None)
    assert _net.translator_host_is_local("")


def test_own_host_names_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Without the fixture's names: this machine's real name is local, a name
    that only starts with it is not.
    """
    monkeypatch.undo()
    name = socket.gethostname()
    assert name.lower().rstrip(".") in _net.own_host_names()
    assert _net.callback_host_is_local(name)
    assert not _net.callback_host_is_local(name + ".example.invalid")


@pytest.mark.parametrize(
    "bound,shown",
    [
        ("0.0.0.0", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("::", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "[::1]"),
        ("[::1]", "[::1]"),
        ("fe80::1", "[fe80::1]"),
    ],
)
def test_url_host(bound: str, shown: str) -> None:
    assert _net.url_host(bound) == shown


def test_one_loopback_set() -> None:
    from samptwist.hub import status
    from samptwist.hub.web import access

    assert not hasattr(status, "LOOPBACK_NAMES")
    assert not hasattr(access, "LOOPBACK_NAMES")
    assert _net.LOOPBACK_NAMES == {"localhost", "127.0.0.1", "::1"}
