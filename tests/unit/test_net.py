"""
The "is this host local?" policies of L{samptwist._net}, side by side: one
table of hosts against every policy, so that their differences are visible
and deliberate.
"""

from __future__ import annotations

import itertools
import socket
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from samptwist import _net

#: this machine's names in these tests: gethostname() and getfqdn() both
#: say C{myhost.lan}, so its first label C{myhost} is not one of them
OWN = frozenset({"myhost.lan"})


@pytest.fixture(autouse=True)
def own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_net, "own_host_name", lambda: "myhost.lan")
    monkeypatch.setattr(_net, "own_host_names", lambda: OWN)


#: the policies, strictest first (each of the first four accepts all the one
#: before it accepts); "peer" judges addresses only
POLICIES = ("web", "status", "callback", "translator", "peer")

T, F = True, False

#: a host (bare, as urlparse().hostname or a peer address gives it) against
#: every policy: the Web Profile's Host (with its port), the status page's
#: Host (any port or none), a callback URL, a translator redirect target, a
#: peer address (Web Profile and status page).  Each row after the first two
#: shows where the policies differ, and why.
TABLE = [
    #                        web status callback translator peer
    ("127.0.0.1",              T, T, T, T, T),
    ("::1",                    T, T, T, T, T),
    # the Web Profile's Host is one of exactly three names; the rest of
    # 127/8 and IPv4-mapped loopback are loopback for every other policy
    ("127.1.2.3",              F, T, T, T, T),
    ("::ffff:127.0.0.1",       F, T, T, T, T),
    # a name is never a peer address
    ("localhost",              T, T, T, T, F),
    ("LOCALHOST",              T, T, T, T, F),
    # names the hub calls back (and the translator never fetches) that are
    # not Host names of the Web Profile or the status page
    ("a.localhost",            F, F, T, T, F),
    ("localhost.localdomain",  F, F, T, T, F),
    ("myhost.lan",             F, F, T, T, F),
    ("MyHost.LAN.",            F, F, T, T, F),
    # the first label of this machine's name: the translator (which only
    # refuses) counts it as local, the hub does not call it back
    ("myhost",                 F, F, F, T, F),
    # a name that only starts with this machine's: someone else's
    ("myhost.lan.example.org", F, F, F, F, F),
    # not public, not this machine: only the translator refuses it
    ("10.0.0.1",               F, F, F, T, F),
    ("192.168.1.1",            F, F, F, T, F),
    ("169.254.1.1",            F, F, F, T, F),
    ("fc00::1",                F, F, F, T, F),
    ("::ffff:10.0.0.1",        F, F, F, T, F),
    ("0.0.0.0",                F, F, F, T, F),
    ("224.0.0.1",              F, F, F, T, F),
    # public: nobody's
    ("example.org",            F, F, F, F, F),
    ("8.8.8.8",                F, F, F, F, F),
    ("2001:4860:4860::8888",   F, F, F, F, F),
]


def _header(host: str, port: Optional[int]) -> bytes:
    shown = f"[{host}]" if ":" in host else host
    return (shown if port is None else f"{shown}:{port}").encode()


def _peer(host: str) -> object:
    if ":" in host:
        return IPv6Address("TCP", host, 5000)
    return IPv4Address("TCP", host, 5000)


def _verdicts(host: str) -> Dict[str, bool]:
    """
    @return: every policy's answer for C{host}, each one asked in every way
        it can be (the Host policies with and without ports).
    """
    status = {
        _net.status_host_is_allowed(_header(host, port)) for port in (None, 80, 8080, 21012)
    }
    web = {_net.web_host_is_allowed(_header(host, 21012), port) for port in (21012, None)}
    assert len(status) == len(web) == 1, "the port must not change these answers"
    # the Web Profile always wants a port, and the one it listens on
    assert _net.web_host_is_allowed(_header(host, None), None) is False
    assert _net.web_host_is_allowed(_header(host, 21013), 21012) is False
    try:
        address = _peer(host)
    except ValueError:  # a name, not an address: never a peer
        peer = False
    else:
        peer = _net.peer_is_loopback(address)
    return {
        "web": web.pop(),
        "status": status.pop(),
        "callback": _net.callback_host_is_local(host),
        "translator": _net.translator_host_is_local(host),
        "peer": peer,
    }


@pytest.mark.parametrize("row", TABLE, ids=[row[0] for row in TABLE])
def test_policies(row: Tuple[Any, ...]) -> None:
    host, *expected = row
    assert _verdicts(host) == dict(zip(POLICIES, expected))


def test_each_policy_accepts_what_the_stricter_ones_accept() -> None:
    """
    Over the whole table: web => status => callback => translator, and on
    address literals the peer policy agrees with the status page's Host.
    """
    for host, *answers in TABLE:
        verdict = dict(zip(POLICIES, answers))
        chain = [verdict[name] for name in POLICIES[:4]]
        assert chain == sorted(chain), host
        if _net._ip(host) is not None:
            assert verdict["peer"] == verdict["status"], host


def test_every_difference_is_shown() -> None:
    """
    For every two policies the table has a host one accepts and the other
    refuses: no two policies are the same rule under two names.
    """
    for a, b in itertools.combinations(range(len(POLICIES)), 2):
        assert any(row[1 + a] != row[1 + b] for row in TABLE), (POLICIES[a], POLICIES[b])


def test_the_table_is_the_code() -> None:
    """
    Every policy accepts something and refuses something in the table.
    """
    for n, name in enumerate(POLICIES):
        column = {row[1 + n] for row in TABLE}
        assert column == {True, False}, name


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
        ("fe80::1%eth0", "[fe80::1%25eth0]"),
    ],
)
def test_url_host(bound: str, shown: str) -> None:
    assert _net.url_host(bound) == shown


def test_one_place_decides() -> None:
    """
    No other module keeps its own "is this host local?" rule, loopback name
    set or bound-address formatting: they call L{samptwist._net}.  (The
    doctor's model of Chromium's address spaces is the browser's rule, and
    may use C{ipaddress} for it.)
    """
    root = Path(_net.__file__).parent
    needles = (".is_loopback", "LOOPBACK_NAMES", "LOOPBACK_HOSTS", "_LOCAL_NAMES", "getfqdn",
               '"0.0.0.0"', '"::"', "ipaddress", '== "localhost"', '("", "localhost")')
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == Path(_net.__file__) or path == root / "cli" / "doctor.py":
            continue
        text = path.read_text(encoding="utf-8")
        if path == root / "hub" / "service.py":
            # plain_tcp spells out Twisted's default tcp6 interface, "::" (a
            # listening default, not a rule about what is local)
            text = text.replace('else "::"', "")
        found += [f"{path.relative_to(root)}: {n}" for n in needles if n in text]
    assert not found
    doctor = (root / "cli" / "doctor.py").read_text(encoding="utf-8")
    assert ".is_loopback" not in doctor and "LOOPBACK" not in doctor
    assert _net.LOOPBACK_NAMES == {"localhost", "127.0.0.1", "::1"}


@pytest.mark.parametrize(
    "netloc,local",
    [("", True), ("localhost", True), ("LocalHost", True), ("127.0.0.1", False),
     ("otherhost", False), ("localhost.example.org", False), ("localhost:8000", False)],
)
def test_file_url_is_local(netloc: str, local: bool) -> None:
    """The one rule for the authority of a file: URL (RFC 8089)."""
    assert _net.file_url_is_local(netloc) is local


def test_file_url_rule_is_the_one_the_three_readers_use(tmp_path: Path) -> None:
    """The lockfile reader and the remote file exports keep to it."""
    from samptwist.errors import LockfileError
    from samptwist.lockfile import path_from_url
    from samptwist.remote.files import is_loopback_http, local_path

    assert path_from_url("file://localhost/tmp/x") == Path("/tmp/x")
    with pytest.raises(LockfileError):
        path_from_url("file://elsewhere/tmp/x")
    assert local_path("file:///tmp/x") == local_path("file://localhost/tmp/x") == Path("/tmp/x")
    assert local_path("file://elsewhere/tmp/x") is None
    for url, loopback in [("http://localhost:1/a", True), ("http://127.0.0.2/a", True),
                          ("http://[::1]:8/a", True), ("http://example.org/a", False),
                          ("https://127.0.0.1/a", False)]:
        assert is_loopback_http(url) is loopback, url


@pytest.mark.parametrize(
    "host,loopback",
    [("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.8.0.1", True),
     ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True), ("example.org", False),
     ("10.0.0.1", False), ("", False)],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert _net.is_loopback_host(host) is loopback


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """
    The real L{_net.own_host_name} and L{_net.own_host_names}, uncached, on a
    machine called C{box} whose resolver says C{box.example.org}; the list
    records each C{getfqdn()}, the one call that asks the resolver.
    """
    monkeypatch.undo()
    calls: list = []

    def getfqdn(name: str = "") -> str:
        calls.append(name)
        return "Box.Example.Org."

    monkeypatch.setattr(socket, "gethostname", lambda: "Box")
    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    _net.own_host_name.cache_clear()
    _net.own_host_names.cache_clear()
    yield calls
    _net.own_host_name.cache_clear()
    _net.own_host_names.cache_clear()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "a.localhost",
                                  "ip6-localhost", "box", "BOX."])
def test_callback_host_no_lookup(resolver: list, host: str) -> None:
    """Loopback addresses, localhost names and gethostname()'s name are
    local without asking the resolver (nothing to wait for in the reactor)."""
    assert _net.callback_host_is_local(host)
    assert resolver == []


def test_callback_host_lookup_once(resolver: list) -> None:
    """Any other name asks the resolver, once: the machine's full name is
    local, a name that merely starts with it is not."""
    assert _net.callback_host_is_local("box.example.org")
    assert not _net.callback_host_is_local("box.example.org.evil.test")
    assert not _net.callback_host_is_local("other.example.org")
    assert resolver == [""]
    assert _net.own_host_names() == {"box", "box.example.org"}


def test_own_host_names_without_a_full_name(resolver: list,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """getfqdn() gives gethostname() back when the resolver knows nothing:
    the name set is then just that one name."""
    monkeypatch.setattr(socket, "getfqdn", lambda name="": "box")
    assert _net.own_host_names() == {"box"}
    assert not _net.callback_host_is_local("box.example.org")
