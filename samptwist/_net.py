"""
"Is this host local?": every answer the package gives, in one place.

Each place that asks has its own, deliberately different, policy::

    ============================  ======================================  ===========
    policy                        accepts                                 port
    ============================  ======================================  ===========
    web_host_is_allowed           127.0.0.1, localhost, [::1] only        must match
    status_host_is_allowed        localhost, any loopback address         any or none
    callback_host_is_local        loopback addresses, localhost names     the URL's
                                  and aliases, this machine's exact names
    translator_host_is_local      all the callback policy accepts, and    n/a
                                  anything not public (private,
                                  link-local, reserved...), and the first
                                  label of this machine's names
    peer_is_loopback              a loopback peer address (never a name)  n/a
    file_url_is_local             a file: URL's authority "" or localhost n/a
    ============================  ======================================  ===========

Each of the first four accepts all that the one above it accepts, and
more: a Host the Web Profile takes is one the status page takes, a status
page Host is a host the hub would call back, and the translator refuses to
fetch anything the hub would call back.  L{peer_is_loopback} (the Web
Profile's and the status page's peer check) judges addresses, never names,
and accepts exactly the addresses the status page's Host policy accepts;
the Web Profile binds only where L{is_loopback_address} holds.
IPv4-mapped IPv6 addresses (C{::ffff:127.0.0.1}, what a dual-stack socket
reports for an IPv4 peer) count as the IPv4 address they map wherever an
address is judged (the Web Profile's Host is matched as one of three
names, so C{[::ffff:127.0.0.1]} is not one).
C{tests/unit/test_net.py} shows every difference, host by host.

L{url_host} is the one place a bound address is formatted for a URL.

This module imports nothing from the hub or the client: both use it.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any, FrozenSet, Optional, Union

#: the names of the loopback interface every Host and URL policy accepts
#: (bare: IPv6 without brackets)
LOOPBACK_NAMES: FrozenSet[str] = frozenset({"localhost", "127.0.0.1", "::1"})

#: further names for this machine's loopback interface found in
#: C{/etc/hosts} on common systems; a callback URL may use them
_LOCALHOST_ALIASES: FrozenSet[str] = frozenset(
    {"localhost.localdomain", "ip6-localhost", "ip6-loopback"}
)

_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def url_host(address: str) -> str:
    """
    Format the host of a bound (listening) address for a URL.

    @param address: an interface address as a port's C{getHost().host}
        reports it.
    @return: the host to put in a URL that reaches that port from this
        machine: the wildcard addresses C{0.0.0.0} / C{""} become
        C{127.0.0.1} and C{::} becomes C{[::1]}; other IPv6 addresses are
        bracketed (a zone as C{%25zone}).
    """
    if address in ("0.0.0.0", ""):
        return "127.0.0.1"
    if address == "::":
        address = "::1"
    if ":" in address and not address.startswith("["):
        # An IPv6 zone is written %25 in a URL (RFC 6874).
        return "[" + address.replace("%", "%25") + "]"
    return address


def _ip(host: str) -> Optional[_Address]:
    """
    @return: C{host} (optionally bracketed, optionally with an IPv6 zone) as
        an address, IPv4-mapped IPv6 addresses as the IPv4 address they map;
        C{None} if it is not an address literal.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback_address(host: str) -> bool:
    """
    @return: whether C{host} is a loopback address literal (C{127.0.0.0/8},
        C{::1}, or IPv4-mapped loopback; brackets and zones allowed).
    """
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def _name(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


@functools.cache
def own_host_name() -> str:
    """
    @return: C{socket.gethostname()}, lower case: this machine's name as the
        kernel has it (a system call, no look-up).  Computed once.
    """
    return _name(socket.gethostname())


@functools.cache
def own_host_names() -> FrozenSet[str]:
    """
    @return: this machine's own names, exactly: C{socket.gethostname()} and
        C{socket.getfqdn()} (what astropy and pyvo clients put in their
        callback URLs when the network is up), lower case.  Computed once,
        on first use: C{getfqdn()} asks the resolver (C{/etc/hosts}, then
        DNS), which can take seconds on a badly configured machine, so no
        hub pays it at start; L{callback_host_is_local} asks only for a
        host that is neither a loopback address, C{localhost} nor
        L{own_host_name}.
    """
    names = {own_host_name(), _name(socket.getfqdn())}
    names.discard("")
    return frozenset(names)


def is_localhost_name(host: str) -> bool:
    """
    @return: whether C{host} is C{localhost} or a C{*.localhost} name (which
        resolve to loopback, RFC 6761), in any case, with or without a final
        dot.
    """
    name = _name(host)
    return name == "localhost" or name.endswith(".localhost")


def callback_host_is_local(host: str) -> bool:
    """
    The hub's policy for the host of a client's callback URL: the hub calls
    back only this machine, decided without a DNS look-up.

    @param host: the host of the URL (C{urlparse(url).hostname}).
    @return: whether it is a loopback address, C{localhost} (or
        C{*.localhost} or a common alias) or exactly one of
        L{own_host_names}.  C{myhost.example.org} is I{not} local just
        because this machine is called C{myhost}.
    """
    if is_loopback_address(host):
        return True
    name = _name(host)
    if is_localhost_name(name) or name in _LOCALHOST_ALIASES or name == own_host_name():
        return True
    # Only now the resolver, once (cached): a fully qualified name of this
    # machine's, or someone else's.
    return bool(name) and name in own_host_names()


def peer_is_loopback(address: Any) -> bool:
    """
    The policy for who may connect to the Web Profile (WEB-HTTP-2) and the
    status page: only a peer on this machine.

    @param address: the peer's address (C{request.getClientAddress()}).
    @return: whether it is a TCP peer with a loopback address
        (C{127.0.0.0/8}, C{::1}, or IPv4-mapped loopback).
    """
    host = getattr(address, "host", None)
    return isinstance(host, str) and is_loopback_address(host)


#: the Host header names the Web Profile accepts, as they appear in it
_WEB_HOST_NAMES: FrozenSet[str] = frozenset(url_host(name) for name in LOOPBACK_NAMES)


def web_host_is_allowed(host: Optional[bytes], port: Optional[int]) -> bool:
    """
    The Web Profile's policy for the C{Host} header (DNS rebinding, notes 10).

    @param host: the request's C{Host} header (C{None} if absent).
    @param port: the port the Web Profile listens on, or C{None} to accept
        any port (when it is not known, e.g. in memory tests).
    @return: whether C{host} is exactly C{127.0.0.1:PORT}, C{localhost:PORT}
        or C{[::1]:PORT} (case-insensitive), the only names a page on this
        machine needs; a port is required (the Web Profile never runs on
        port 80).
    """
    if not host:
        return False
    try:
        text = host.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return False
    name, sep, port_text = text.rpartition(":")
    if not sep or name not in _WEB_HOST_NAMES or not port_text.isdigit():
        return False
    return port is None or int(port_text) == port


def status_host_is_allowed(host: Optional[bytes]) -> bool:
    """
    The status page's policy for the C{Host} header (DNS rebinding): looser
    than the Web Profile's, since the page is also opened by hand.

    @param host: the request's C{Host} header (C{None} if absent).
    @return: whether its host is C{localhost} or any loopback address, with
        any port or none.
    """
    if host is None:
        return False
    text = host.decode("ascii", "replace").strip()
    if text.startswith("["):
        name = text[: text.find("]") + 1]
    else:
        name = text.partition(":")[0]
    return is_loopback_host(name)


def is_loopback_host(host: str) -> bool:
    """
    @return: whether C{host} (a URL's or a Host header's, without the port)
        is one of L{LOOPBACK_NAMES} or any loopback address: what the status
        page's Host policy accepts, and where the remote session's file
        server serves C{http:} URLs from.
    """
    return _name(host) in LOOPBACK_NAMES or is_loopback_address(host)


def file_url_is_local(netloc: str) -> bool:
    """
    @param netloc: the authority of a C{file:} URL (C{urlsplit(url).netloc}).
    @return: whether it names this machine: empty (C{file:///p},
        C{file:/p}) or C{localhost} (RFC 8089), the only C{file:} URLs the
        lockfile reader, the Web Profile's translator and the remote
        session's file exports open.
    """
    return netloc == "" or netloc.lower() == "localhost"


def translator_host_is_local(host: Optional[str]) -> bool:
    """
    The URL translator's policy for redirect targets: it refuses to forward
    a page's request to anything that is not public.

    @param host: the host of the target URL (C{None} or empty if it has
        none, which counts as local).
    @return: whether C{host} is anything L{callback_host_is_local} accepts
        (so the translator never fetches what the hub would call back), the
        first label of one of L{own_host_names}, or a private, link-local,
        unspecified, reserved or multicast address.
    """
    if not host or callback_host_is_local(host):
        return True
    name = _name(host)
    ip = _ip(name)
    if ip is None:
        return name in {n.split(".", 1)[0] for n in own_host_names()}
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
    )
