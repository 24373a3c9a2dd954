"""
C{samptwist bridge LOCKFILE_A LOCKFILE_B}: join two hubs, so that the
clients of each see, and exchange messages with, the clients of the other.

For every client R on one hub the bridge registers a proxy client on the
other hub, with R's metadata and subscriptions.  A message sent to the proxy
is forwarded to R by the proxy of its sender on R's hub, and R's reply goes
back the same way.  Hub events and the hubs' own clients are not bridged.

Loop protection: proxies carry the metadata key C{x-samptwist.bridge}; no
client carrying it (this bridge's proxies, or another bridge's) is ever
bridged, so two bridges between the same hubs do not echo clients back and
forth.

URL translation: C{--map A_PREFIX=B_PREFIX} rewrites every string starting
with C{A_PREFIX} in metadata, messages and responses going from hub A to hub
B (and C{B_PREFIX} back to C{A_PREFIX} in the other direction), for URLs that
name different places on the two sides (an SSH tunnel, a shared file system
mounted elsewhere).
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any, Dict, List, Optional, Set, Tuple

from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site

from ..client import SAMPClient
from ..client.handlers import Message, error
from ..client.tracker import TrackerEvent
from ..errors import SAMPCallError, SAMPError
from ._common import CLIError, add_hub_options

HELP = "connect two hubs so that their clients see and message each other"
DESCRIPTION = """Connect the hubs of LOCKFILE_A and LOCKFILE_B (paths or URLs): each client
of one hub appears on the other as a proxy client with the same name,
metadata and subscriptions; messages to a proxy reach the real client, and
replies come back.  Runs until Ctrl-C or until a hub stops.

Each side needs a callback endpoint its hub can reach (--listen-a/-b, default
a free loopback port).  Use --map to rewrite URLs that differ between the two
sides; bridge proxies are marked with the metadata key x-samptwist.bridge and
are never bridged again (loop protection)."""
EPILOG = """examples:
  samptwist bridge ~/.samp /tmp/other-hub.samp

through SSH, to the hub of a remote machine 'far' (lockfile copied to
./far.samp; the hub there listens on port 45678, see its lockfile):
  ssh -N -L 45678:127.0.0.1:45678 -R 45679:127.0.0.1:45679 far &
  scp far:.samp far.samp
  samptwist bridge ~/.samp far.samp --listen-b tcp:45679:interface=127.0.0.1 \\
      --map file:///home/me/data/=http://127.0.0.1:8000/
"""

MARKER = "x-samptwist.bridge"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("lockfile_a", metavar="LOCKFILE_A", help="lockfile (path or URL) of hub A")
    parser.add_argument("lockfile_b", metavar="LOCKFILE_B", help="lockfile (path or URL) of hub B")
    parser.add_argument("--listen-a", default="tcp:0:interface=127.0.0.1", metavar="ENDPOINT",
                        help="callback endpoint for hub A (default: a free loopback port)")
    parser.add_argument("--listen-b", default="tcp:0:interface=127.0.0.1", metavar="ENDPOINT",
                        help="callback endpoint for hub B (default: a free loopback port)")
    parser.add_argument("--advertise-a", metavar="URL",
                        help="base URL hub A calls back to (default: from --listen-a)")
    parser.add_argument("--advertise-b", metavar="URL",
                        help="base URL hub B calls back to (default: from --listen-b)")
    parser.add_argument("--map", action="append", default=[], metavar="A_PREFIX=B_PREFIX",
                        help="rewrite strings starting with A_PREFIX on their way to B, and "
                        "back (repeatable)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds a forwarded call may wait for its reply (default 600)")


class Translator:
    """
    Rewrites string prefixes in SAMP values, one direction per call.
    """

    def __init__(self, pairs: List[Tuple[str, str]]) -> None:
        self.pairs = pairs

    def __call__(self, value: Any, to_b: bool) -> Any:
        if isinstance(value, str):
            for a, b in self.pairs:
                old, new = (a, b) if to_b else (b, a)
                if value.startswith(old):
                    return new + value[len(old):]
            return value
        if isinstance(value, list):
            return [self(v, to_b) for v in value]
        if isinstance(value, dict):
            return {k: self(v, to_b) for k, v in value.items()}
        return value


class Side:
    """
    One hub, as the bridge sees it: a manager client that tracks the hub's
    clients, the site serving every callback from this hub, and the proxies
    registered here for the other hub's clients.
    """

    def __init__(self, bridge: Bridge, label: str, lockfile: str, listen: str,
                 advertise: Optional[str]) -> None:
        self.bridge = bridge
        self.label = label
        self.lockfile = lockfile
        self.listen = listen
        self.advertise = advertise
        self.root = Resource()
        self.base = ""
        self.port: Any = None
        self.other: Side = self
        self.manager: Optional[SAMPClient] = None
        #: the other hub's client id -> its proxy here
        self.proxies: Dict[str, SAMPClient] = {}
        self.creating: Dict[str, Deferred] = {}
        #: ids of this bridge's proxies on this hub
        self.proxy_ids: Set[str] = set()
        self._n = 0

    def new_client(self, reactor: Any, **kwargs: Any) -> SAMPClient:
        """
        @return: a client of this side's hub whose callbacks this side's
            site serves.
        """
        self._n += 1
        name = f"c{self._n}".encode()
        client = SAMPClient(reactor, lockfile=self.lockfile, callback_url=f"{self.base}c{self._n}/",
                            **kwargs)
        self.root.putChild(name, client.callback_resource)
        client.disconnected.subscribe(lambda _: self.root.children.pop(name, None))
        return client

    async def start(self, reactor: Any) -> None:
        self.port = await serverFromString(reactor, self.listen).listen(Site(self.root))
        host = self.port.getHost()
        self.base = self.advertise or f"http://127.0.0.1:{host.port}/"
        if not self.base.endswith("/"):
            self.base += "/"
        manager = self.new_client(
            reactor, name=f"samptwist bridge ({self.label})",
            description="bridges this hub's clients to another hub",
            metadata={MARKER: "manager"}, track=True,
        )
        self.manager = manager
        try:
            await manager.connect()
        except SAMPError as e:
            raise CLIError(f"hub {self.label} ({self.lockfile}): {e}") from None


class Bridge:
    """
    The two sides and the forwarding between them.
    """

    def __init__(self, reactor: Any, args: argparse.Namespace, translate: Translator) -> None:
        self.reactor = reactor
        self.args = args
        self.translate = translate
        self.a = Side(self, "A", args.lockfile_a, args.listen_a, args.advertise_a)
        self.b = Side(self, "B", args.lockfile_b, args.listen_b, args.advertise_b)
        self.a.other, self.b.other = self.b, self.a
        self.done: Deferred = Deferred()

    def to_b(self, side: Side) -> bool:
        """
        Whether values from C{side} travel towards hub B.
        """
        return side is self.a

    # -- which clients are bridged -------------------------------------------

    def bridgeable(self, side: Side, client_id: str) -> bool:
        manager = side.manager
        if manager is None or manager.tracker is None:
            return False
        info = manager.tracker.clients.get(client_id)
        if info is None or client_id == manager.hub_id or client_id in side.proxy_ids:
            return False
        return MARKER not in info.metadata

    def on_change(self, side: Side, event: TrackerEvent) -> None:
        if event.kind == "reset":
            assert side.manager is not None and side.manager.tracker is not None
            for client_id in list(side.manager.tracker.clients):
                self.update(side, client_id)
        elif event.kind == "unregister":
            self.drop(side, event.client_id)
        elif event.kind in ("metadata", "subscriptions"):
            # Not at "register": a proxy's marker arrives with its metadata.
            self.update(side, event.client_id)

    def update(self, side: Side, client_id: str) -> None:
        if not self.bridgeable(side, client_id):
            return
        proxy = side.other.proxies.get(client_id)
        if proxy is None:
            # Created with what is known now; whatever changes meanwhile is
            # applied once it exists.
            d = self.ensure_proxy(side, client_id)
            d.addCallback(lambda p: self._refresh(side, client_id, p))
            d.addErrback(self._warn, side, client_id)
            return
        self._refresh(side, client_id, proxy).addErrback(self._warn, side, client_id)

    def _refresh(self, side: Side, client_id: str, proxy: SAMPClient) -> Deferred:
        if not self.bridgeable(side, client_id):
            return succeed(None)
        self.configure(side, client_id, proxy)
        return proxy.declare_metadata(proxy.metadata)

    def _warn(self, f: Any, side: Side, client_id: str) -> None:
        if f.check(_Gone) or not self.args.verbose:
            return
        sys.stderr.write(f"samptwist bridge: {side.label}: cannot bridge {client_id}: "
                         f"{f.getErrorMessage()}\n")

    def configure(self, side: Side, client_id: str, proxy: SAMPClient) -> None:
        """
        Give C{proxy} the metadata and subscriptions of C{client_id} on C{side}.
        """
        assert side.manager is not None and side.manager.tracker is not None
        info = side.manager.tracker.clients[client_id]
        metadata = self.translate(dict(info.metadata), self.to_b(side))
        metadata[MARKER] = f"proxy of {client_id} on hub {side.label}"
        proxy.metadata = metadata
        wanted = {p: a for p, a in info.subscriptions.items() if not p.startswith("samp.hub.")}
        for pattern in list(proxy.handlers):
            if pattern not in wanted:
                proxy.remove_handler(pattern)
        for pattern, annotation in wanted.items():
            proxy.add_handler(pattern, self.forwarder(side, client_id),
                              annotation if isinstance(annotation, dict) else {})

    def ensure_proxy(self, side: Side, client_id: str) -> Deferred:
        """
        @return: a L{Deferred} firing with the proxy, on the other side, of
            C{client_id} on C{side} (created if need be).
        """
        there = side.other
        if client_id in there.proxies:
            d: Deferred = Deferred()
            d.callback(there.proxies[client_id])
            return d
        if client_id not in there.creating:
            there.creating[client_id] = Deferred.fromCoroutine(self._create(side, client_id))
        waiter: Deferred = Deferred()
        there.creating[client_id].addBoth(_pass_to, waiter)
        return waiter

    async def _create(self, side: Side, client_id: str) -> SAMPClient:
        there = side.other
        proxy = there.new_client(self.reactor, track=False)
        self.configure(side, client_id, proxy)
        try:
            await proxy.connect()
        finally:
            there.creating.pop(client_id, None)
        assert proxy.self_id is not None
        there.proxy_ids.add(proxy.self_id)
        if not self.bridgeable(side, client_id):  # it left meanwhile
            await proxy.disconnect()
            raise _Gone(client_id)
        there.proxies[client_id] = proxy
        name = proxy.metadata.get("samp.name", client_id)
        print(f"{name} ({client_id}) on hub {side.label} is {proxy.self_id} on hub {there.label}",
              flush=True)
        return proxy

    def drop(self, side: Side, client_id: str) -> None:
        proxy = side.other.proxies.pop(client_id, None)
        if proxy is not None:
            print(f"{client_id} left hub {side.label}; its proxy {proxy.self_id} "
                  f"left hub {side.other.label}", flush=True)
            proxy.disconnect()

    # -- forwarding ----------------------------------------------------------

    def forwarder(self, side: Side, target: str) -> Any:
        """
        @return: the handler of the proxy (on the other side) of C{target}
            (on C{side}): it forwards each message to C{target}.
        """

        def handle(message: Message) -> Any:
            return Deferred.fromCoroutine(self.forward(side, target, message))

        return handle

    async def forward(self, side: Side, target: str, message: Message) -> Any:
        there = side.other  # where the message was sent
        assert there.manager is not None
        sender = message.sender_id
        if sender == there.manager.hub_id or sender in there.proxy_ids:
            return error("not forwarded: the bridge only forwards messages between clients")
        if not self.bridgeable(there, sender):
            return error(f"the bridge cannot forward messages from {sender}")
        try:
            sender_proxy = await self.ensure_proxy(there, sender)
        except Exception as e:
            return error(f"the bridge could not reach hub {side.label}: {e}")
        towards_side = self.to_b(there)
        body = self.translate(dict(message.message), towards_side)
        if not message.is_call:
            await sender_proxy.notify(target, body)
            return None
        try:
            response = await sender_proxy.call(target, body, timeout=self.args.timeout)
        except SAMPCallError as e:
            response = e.response
        except TimeoutError:
            return error(f"no reply through the bridge within {self.args.timeout:g}s")
        return self.translate(response, not towards_side)


class _Gone(Exception):
    """
    The client left while its proxy was being made.
    """


def _pass_to(result: Any, d: Deferred) -> Any:
    if isinstance(result, Failure):
        d.errback(result)
        return None  # handled by the waiter
    d.callback(result)
    return result


def parse_maps(items: List[str]) -> Translator:
    pairs = []
    for item in items:
        a, sep, b = item.partition("=")
        if not sep or not a or not b:
            raise CLIError(f"--map {item!r}: expected A_PREFIX=B_PREFIX", code=2)
        pairs.append((a, b))
    return Translator(pairs)


async def run(reactor: Any, args: argparse.Namespace) -> int:
    translate = parse_maps(args.map)
    if args.timeout <= 0:
        raise CLIError("--timeout must be positive", code=2)
    bridge = Bridge(reactor, args, translate)
    try:
        for side in (bridge.a, bridge.b):
            await side.start(reactor)
    except BaseException:
        for side in (bridge.a, bridge.b):
            if side.manager is not None:
                await side.manager.disconnect()
        raise
    for side in (bridge.a, bridge.b):
        manager = side.manager
        assert manager is not None and manager.tracker is not None
        if manager.hub_info is not None and side.other.manager is not None and \
                side.other.manager.hub_info is not None and \
                manager.hub_info.url == side.other.manager.hub_info.url:
            raise CLIError("LOCKFILE_A and LOCKFILE_B name the same hub")
        manager.tracker.changes.subscribe(functools.partial(bridge.on_change, side))
        manager.disconnected.subscribe(functools.partial(_lost, bridge, side))
        for client_id in list(manager.tracker.clients):
            bridge.update(side, client_id)
    print(f"bridge ready: hub A ({args.lockfile_a}) <-> hub B ({args.lockfile_b})", flush=True)
    code: int = await bridge.done
    for side in (bridge.a, bridge.b):
        for proxy in list(side.proxies.values()):
            await proxy.disconnect()
        if side.manager is not None:
            await side.manager.disconnect()
    return code


def _lost(bridge: Bridge, side: Side, reason: str) -> None:
    if reason == "closed" or bridge.done.called:
        return
    if reason == "shutdown":
        sys.stderr.write(f"samptwist bridge: hub {side.label} stopped\n")
        bridge.done.callback(0)
    else:
        sys.stderr.write(f"samptwist bridge: lost hub {side.label} ({reason})\n")
        bridge.done.callback(1)
