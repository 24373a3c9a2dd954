"""
C{samptwist remote-agent}: the far side of C{samptwist remote}, started by it
(through ssh or C{--via}); speaks the link protocol on its standard input and
output, and ends when they close.  Not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any, Callable, List, Optional, TextIO

from twisted.internet.task import deferLater

from ..client.errors import HubUnreachable
from ..errors import LockfileError, SAMPError
from ..mirror import HubSide
from ..remote import hubstart
from ..remote.agent import Agent, Limits, Link
from ..remote.link import StreamStdIO
from ._common import CLIError, add_hub_options

NAME = "remote-agent"
HELP = "the far side of 'samptwist remote' (started by it; speaks on stdin/stdout)"
DESCRIPTION = """The far side of 'samptwist remote', which starts it through ssh or --via:
it registers with this machine's hub (starting one, writing the usual
lockfile, if none is running) and speaks the link protocol on its standard
input and output until they close.  Messages about what it does go to
standard error."""

HUB_START_TIMEOUT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("--no-start-hub", action="store_true",
                        help="fail instead of starting a hub if none is running")
    parser.add_argument("--mark-names", action="store_true",
                        help="append where a client lives to its samp.name")
    parser.add_argument("--max-file-size", type=int, default=8 * 1024 ** 3, metavar="BYTES")
    parser.add_argument("--file-lifetime", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument("--max-rate", type=int, default=Limits.max_rate, metavar="N")
    parser.add_argument("--share", action="append", default=[], metavar="DIR",
                        help="also let files under DIR cross (see samptwist remote --share)")
    parser.add_argument("--place", default=None,
                        help="how the desktop calls this machine (default: its host name)")


#: the C{samptwist} command gives this command standard error as C{out}:
#: its standard output carries the link protocol
OUT_IS_STDERR = True


def _writer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        out.write(f"{text}\n")
        out.flush()

    return say


async def _connect(reactor: Any, agent: Agent, args: argparse.Namespace,
                   _say: Callable[[str], None]) -> None:
    """
    Start the agent, starting a hub first if none answers.
    """
    try:
        await agent.start()
        return
    except (LockfileError, HubUnreachable) as e:
        if args.no_start_hub:
            raise CLIError(f"no hub here: {e}") from None
        first_error = e
    try:
        proc = hubstart.start_hub(args.lockfile)
    except hubstart.HubStartError as e:
        raise CLIError(f"no hub here ({first_error}) and cannot start one: {e}") from None
    waited = 0.0
    while True:
        await deferLater(reactor, 0.25, lambda: None)
        waited += 0.25
        try:
            await agent.start()
        except (LockfileError, HubUnreachable):
            if not hubstart.running(proc) or waited >= HUB_START_TIMEOUT:
                tail = hubstart.log_tail(args.lockfile)
                raise CLIError(f"the hub started here did not come up: {tail}") from None
            continue
        _say(f"started a hub here (pid {proc.pid}; it keeps running after the link ends)")
        return


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None,
              stdio: Optional[Callable[[Link], object]] = None) -> int:
    """
    @param out: where the human-readable messages go (C{sys.stderr} by
        default, as the C{samptwist} command does: standard output is the link).
    @param stdio: connects the link protocol to its peer (default: this
        process's standard input and output, L{StreamStdIO}).
    @return: 0 when the link closed normally, 1 when it was cut or the hub lost.
    @raise CLIError: when no hub answers here and none can be started.
    """
    _say = _writer(sys.stderr if out is None else out)
    place = args.place or socket.gethostname()
    side = HubSide(reactor, "remote", args.lockfile)
    agent = Agent(reactor, side, role="remote", place=place,
                  limits=Limits(max_rate=args.max_rate), mark_names=args.mark_names,
                  file_lifetime=args.file_lifetime, max_file_size=args.max_file_size,
                  share=args.share, say=lambda text: None, complain=_say)
    try:
        await _connect(reactor, agent, args, _say)
    except SAMPError as e:
        await agent.stop()
        raise CLIError(f"this machine's hub: {e}") from None
    except BaseException:
        await agent.stop()
        raise
    link = Link(agent, greet=True)
    agent.attach(link)
    lost: List[Optional[str]] = []

    def hub_lost(reason: str) -> None:
        if reason != "closed" and link.transport is not None:
            lost.append(reason)
            _say(f"lost this machine's hub ({reason})")
            link.transport.loseConnection()

    assert side.manager is not None
    side.manager.disconnected.subscribe(hub_lost)
    if stdio is None:
        StreamStdIO(link, reactor=reactor)
    else:
        stdio(link)
    why = await link.lost
    await agent.stop()
    if link.cut_reason is not None:
        _say(f"link ended: {why}")
        return 1
    return 1 if lost else 0
