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
from typing import Any, Dict, List, Optional, TextIO, Tuple

from twisted.internet.defer import Deferred

from ..client import SAMPClient
from ..client.handlers import Message
from ..client.tracker import ClientInfo
from ..constants import DEFAULT_LISTEN
from ..errors import SAMPError
from ..mirror import MARKER, Gone, HubSide, ProxySet
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("lockfile_a", metavar="LOCKFILE_A", help="lockfile (path or URL) of hub A")
    parser.add_argument("lockfile_b", metavar="LOCKFILE_B", help="lockfile (path or URL) of hub B")
    parser.add_argument("--listen-a", default=DEFAULT_LISTEN, metavar="ENDPOINT",
                        help="callback endpoint for hub A (default: a free loopback port)")
    parser.add_argument("--listen-b", default=DEFAULT_LISTEN, metavar="ENDPOINT",
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


class Bridge:
    """
    The two hubs and the forwarding between them: C{into[side]} holds, on
    C{side}, the proxies of the other hub's clients.
    """

    def __init__(self, reactor: Any, args: argparse.Namespace, translate: Translator,
                 out: TextIO, err: Optional[TextIO] = None) -> None:
        self.reactor = reactor
        self.out = out
        self.err = sys.stderr if err is None else err
        self.args = args
        self.translate = translate
        self.a = HubSide(reactor, "A", args.lockfile_a, args.listen_a, args.advertise_a)
        self.b = HubSide(reactor, "B", args.lockfile_b, args.listen_b, args.advertise_b)
        self.other = {self.a: self.b, self.b: self.a}
        self.into = {
            side: ProxySet(side, functools.partial(self.forward, side),
                           announce=functools.partial(self._announce, side),
                           timeout=args.timeout)
            for side in (self.a, self.b)
        }
        self.done: Deferred = Deferred()

    def to_b(self, side: HubSide) -> bool:
        """
        Whether values from C{side} travel towards hub B.
        """
        return side is self.a

    def update(self, side: HubSide, client_id: str, info: ClientInfo) -> None:
        """
        Mirror C{client_id} of C{side} on the other hub.
        """
        metadata = self.translate(dict(info.metadata), self.to_b(side))
        metadata[MARKER] = f"proxy of {client_id} on hub {side.label}"
        d = self.into[self.other[side]].update(client_id, metadata, info.subscriptions)
        d.addErrback(self._warn, side, client_id)

    def drop(self, side: HubSide, client_id: str) -> None:
        there = self.other[side]
        proxy = self.into[there].drop(client_id)
        if proxy is not None:
            print(f"{client_id} left hub {side.label}; its proxy {proxy.self_id} "
                  f"left hub {there.label}", file=self.out, flush=True)

    def _announce(self, there: HubSide, client_id: str, proxy: SAMPClient) -> None:
        name = proxy.metadata.get("samp.name", client_id)
        print(f"{name} ({client_id}) on hub {self.other[there].label} is {proxy.self_id} "
              f"on hub {there.label}", file=self.out, flush=True)

    def _warn(self, f: Any, side: HubSide, client_id: str) -> None:
        if f.check(Gone) or not self.args.verbose:
            return
        self.err.write(f"samptwist bridge: {side.label}: cannot bridge {client_id}: "
                       f"{f.getErrorMessage()}\n")

    async def forward(self, there: HubSide, target: str,
                      message: Message) -> Optional[Dict[str, Any]]:
        """
        Forward C{message}, sent on C{there} to the proxy of C{target}, to
        C{target} on the other hub.
        """
        side = self.other[there]
        sender = message.sender_id
        back = self.into[side]
        if sender not in back.wanted:  # e.g. a client that declared no metadata
            info = there.foreign(sender)
            if info is not None:
                self.update(there, sender, info)
        towards_side = self.to_b(there)
        body = self.translate(dict(message.message), towards_side)
        try:
            response = await back.deliver(sender, target, body, message.is_call)
        except Exception as e:
            raise SAMPError(f"the bridge could not reach hub {side.label}: {e}") from None
        return None if response is None else self.translate(response, not towards_side)


def parse_maps(items: List[str]) -> Translator:
    pairs = []
    for item in items:
        a, sep, b = item.partition("=")
        if not sep or not a or not b:
            raise CLIError(f"--map {item!r}: expected A_PREFIX=B_PREFIX", code=2)
        pairs.append((a, b))
    return Translator(pairs)


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None,
              err: Optional[TextIO] = None) -> int:
    """
    @param out: where the command reports what it bridges (C{sys.stdout}
        when run by the C{samptwist} command).
    @param err: where warnings and lost hubs are reported (C{sys.stderr}
        by default).
    @return: 0 when a hub shut down, 1 when one was lost.
    @raise CLIError: for bad options or a hub that cannot be reached.
    """
    out = sys.stdout if out is None else out
    translate = parse_maps(args.map)
    if args.timeout <= 0:
        raise CLIError("--timeout must be positive", code=2)
    bridge = Bridge(reactor, args, translate, out, err)
    try:
        for side in (bridge.a, bridge.b):
            lockfile = args.lockfile_a if side is bridge.a else args.lockfile_b
            try:
                await side.start(f"samptwist bridge ({side.label})",
                                 "bridges this hub's clients to another hub")
            except SAMPError as e:
                raise CLIError(f"hub {side.label} ({lockfile}): {e}") from None
    except BaseException:
        for side in (bridge.a, bridge.b):
            await side.stop()
        raise
    a, b = bridge.a.manager, bridge.b.manager
    assert a is not None and b is not None
    if a.hub_info is not None and b.hub_info is not None and a.hub_info.url == b.hub_info.url:
        for side in (bridge.a, bridge.b):
            await side.stop()
        raise CLIError("LOCKFILE_A and LOCKFILE_B name the same hub")
    for side in (bridge.a, bridge.b):
        assert side.manager is not None
        side.manager.disconnected.subscribe(functools.partial(_lost, bridge, side))
        side.watch(functools.partial(bridge.update, side), functools.partial(bridge.drop, side))
    print(f"bridge ready: hub A ({args.lockfile_a}) <-> hub B ({args.lockfile_b})", file=out,
          flush=True)
    code: int = await bridge.done
    for side in (bridge.a, bridge.b):
        await bridge.into[side].clear()
        await side.stop()
    return code


def _lost(bridge: Bridge, side: HubSide, reason: str) -> None:
    if reason == "closed" or bridge.done.called:
        return
    if reason == "shutdown":
        bridge.err.write(f"samptwist bridge: hub {side.label} stopped\n")
        bridge.done.callback(0)
    else:
        bridge.err.write(f"samptwist bridge: lost hub {side.label} ({reason})\n")
        bridge.done.callback(1)
