"""
C{samptwist remote [USER@]HOST}: the SAMP clients of another machine and
those of this desktop see and message each other, through the system's
C{ssh} (or any command given with C{--via}) running C{samptwist
remote-agent} on the far side.  See docs/remote.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from typing import Any, Callable, List, Optional, TextIO

from twisted.internet.defer import CancelledError, Deferred

from .._backoff import Backoff
from ..errors import SAMPError
from ..mirror import HubSide
from ..remote.agent import Agent, Limits
from ..remote.link import Connector
from ._common import CLIError, add_hub_options

HELP = "link this desktop's hub to the hub of a remote machine (ssh, docker, kubectl...)"
DESCRIPTION = """Link the hub of this desktop (whichever it is: TOPCAT's, ours, pyvo's) with
the hub of another machine: each side's clients appear on the other with
their own names (metadata and subscriptions mirrored; where they live is in
their description and in the key x-samptwist.remote.location), and notify,
call, callAll, callAndWait and replies work both ways.  file:// and
http://localhost URLs in messages are served to the other side through the
link, on loopback, behind unguessable paths (only files named in messages,
and only from the temporary directory, HOME outside its hidden files, or a
directory given with --share / --remote-share).

The far side needs samptwist installed (pip install samptwist); a hub is
started there if none is running, writing the usual ~/.samp.  The link uses
the system's ssh, so ~/.ssh/config, agents and jump hosts just work; with
--via, any command whose standard input and output reach the far side.
Runs until Ctrl-C, reconnecting with backoff when the link breaks, and
waiting for this desktop's hub to come back when it stops."""
EPILOG = """examples:
  samptwist remote me@cluster.example.org
  samptwist remote hpc --remote-python /opt/venv/bin/python
  samptwist remote --via 'docker exec -i notebook'
  samptwist remote --via 'kubectl exec -i jupyter-0 --'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("host", nargs="?", metavar="[USER@]HOST",
                        help="the machine to link with, as ssh knows it")
    parser.add_argument("--via", metavar="COMMAND",
                        help="instead of ssh: a command whose stdin/stdout reach the far side "
                        "(the agent command is appended)")
    parser.add_argument("--ssh", default="ssh", metavar="COMMAND",
                        help="the ssh command, with options (default: ssh)")
    parser.add_argument("--remote-python", default="python3", metavar="PYTHON",
                        help="Python on the far side with samptwist installed (default python3)")
    parser.add_argument("--remote-lockfile", metavar="PATH",
                        help="lockfile of the far side's hub (default: its SAMP_HUB or ~/.samp)")
    parser.add_argument("--no-start-hub", action="store_true",
                        help="do not start a hub on the far side if none is running")
    parser.add_argument("--mark-names", action="store_true",
                        help="append where a client lives to its samp.name (default: names "
                        "unchanged, so that scripts find clients by name)")
    parser.add_argument("--share", action="append", default=[], metavar="DIR",
                        help="also let files under DIR cross to the far side (default: only "
                        "HOME outside hidden files, and the temporary directory); repeatable")
    parser.add_argument("--remote-share", action="append", default=[], metavar="DIR",
                        help="the same, for files of the far side")
    parser.add_argument("--max-file-size", type=int, default=8 * 1024 ** 3, metavar="BYTES",
                        help="largest file served to the other side (default 8 GiB)")
    parser.add_argument("--file-lifetime", type=float, default=3600.0, metavar="SECONDS",
                        help="how long a file named in a message stays fetchable (default 3600)")
    parser.add_argument("--max-rate", type=int, default=Limits.max_rate, metavar="N",
                        help="commands a second the far side may send before it is cut off "
                        f"(default {Limits.max_rate})")
    parser.add_argument("--reconnect-delay", type=float, default=1.0, metavar="SECONDS",
                        help="first wait before reconnecting; doubles up to 30 s (default 1)")
    parser.add_argument("--once", action="store_true",
                        help="end when the link ends instead of reconnecting")


def agent_argv(args: argparse.Namespace) -> List[str]:
    """
    @return: the far side's command: C{PYTHON -m samptwist remote-agent ...}.
    """
    argv = [args.remote_python, "-m", "samptwist", "remote-agent",
            "--max-file-size", str(args.max_file_size),
            "--file-lifetime", f"{args.file_lifetime:g}", "--max-rate", str(args.max_rate)]
    if args.remote_lockfile:
        argv += ["--lockfile", args.remote_lockfile]
    for place in args.remote_share:
        argv += ["--share", place]
    if args.no_start_hub:
        argv.append("--no-start-hub")
    if args.mark_names:
        argv.append("--mark-names")
    return argv


def command(args: argparse.Namespace) -> List[str]:
    """
    @return: the command to run on this side.
    @raise CLIError: for a missing or doubled destination.
    """
    if bool(args.host) == bool(args.via):
        raise CLIError("give either [USER@]HOST or --via COMMAND", code=2)
    if args.host and args.host.startswith("-"):
        raise CLIError(f"{args.host!r} is not a host name", code=2)
    remote = agent_argv(args)
    try:
        if args.via:
            via = shlex.split(args.via)
            if not via:
                raise CLIError("--via: empty command", code=2)
            return via + remote
        ssh = shlex.split(args.ssh)
    except ValueError as e:
        raise CLIError(f"cannot parse the command: {e}", code=2) from None
    if not ssh:
        raise CLIError("--ssh: empty command", code=2)
    # ssh hands the far side's shell one command line.
    return ssh + ["-T", args.host, " ".join(shlex.quote(a) for a in remote)]


def _executable(argv: List[str]) -> List[str]:
    import shutil

    found = shutil.which(argv[0])
    if found is None:
        raise CLIError(f"{argv[0]}: command not found")
    return [found] + argv[1:]


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None,
              err: Optional[TextIO] = None) -> int:
    """
    @param out: where the command reports the link's progress (C{sys.stdout}
        when run by the C{samptwist} command).
    @param err: where problems are reported (C{sys.stderr} by default).
    @return: the exit status: 0 when the link ended normally.
    @raise CLIError: for bad options or this desktop's hub unreachable.
    """
    stream = sys.stdout if out is None else out
    errors = sys.stderr if err is None else err
    if args.max_file_size < 0 or args.file_lifetime <= 0 or args.max_rate <= 0 \
            or args.reconnect_delay <= 0:
        raise CLIError("sizes, lifetimes, rates and delays must be positive", code=2)
    argv = _executable(command(args))
    description = args.host or os.path.basename(shlex.split(args.via)[0])

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    def complain(text: str) -> None:
        stream.flush()
        errors.write(f"samptwist remote: {text}\n")
        errors.flush()

    side = HubSide(reactor, "desktop", args.lockfile)
    agent = Agent(reactor, side, role="desktop", place=f"desktop {socket.gethostname()}",
                  limits=Limits(max_rate=args.max_rate), mark_names=args.mark_names,
                  file_lifetime=args.file_lifetime, max_file_size=args.max_file_size,
                  share=args.share, say=say, complain=complain)
    try:
        await agent.start()
    except SAMPError as e:
        await agent.stop()
        raise CLIError(f"this desktop's hub: {e}") from None
    link = _Relinker(reactor, args, agent, argv, description, say, complain)
    shutdown = reactor.addSystemEventTrigger("before", "shutdown", link.stop)
    say(f"linking this desktop's hub with {description}: {' '.join(argv)}")
    try:
        return await link.run()
    finally:
        reactor.removeSystemEventTrigger(shutdown)
        await agent.stop()


class _Relinker:
    """
    Keeps the link up while this desktop's hub runs; when the hub goes away
    (TOPCAT closed with its hub), ends the link and waits for a hub to come
    back (on a L{Backoff}), then links again; with C{--once}, ends instead.
    """

    def __init__(self, reactor: Any, args: argparse.Namespace, agent: Agent, argv: List[str],
                 description: str, say: Callable[[str], None],
                 complain: Callable[[str], None]) -> None:
        self.reactor = reactor
        self.args = args
        self.agent = agent
        self.argv = argv
        self.description = description
        self.say = say
        self.complain = complain
        self.stopping = False
        self.connector: Optional[Connector] = None
        self.waiting: Optional[Deferred] = None
        self.backoff = Backoff(reactor, first=args.reconnect_delay,
                               maximum=max(30.0, args.reconnect_delay))

    def stop(self) -> None:
        """
        End the link, or the wait for the hub, for good.
        """
        self.stopping = True
        if self.connector is not None:
            self.connector.stop()
        if self.waiting is not None and not self.waiting.called:
            self.waiting.cancel()

    async def run(self) -> int:
        """
        @return: the exit status: 0 after L{stop}; 1 if the far side could
            not be started, or (with C{--once}) the link or the hub was lost.
        """
        while True:
            connector = Connector(self.reactor, self.agent, self.argv,
                                  description=self.description, say=self.say,
                                  complain=self.complain, retry=not self.args.once,
                                  first_delay=self.args.reconnect_delay,
                                  max_delay=max(30.0, self.args.reconnect_delay))
            self.connector = connector
            lost: List[str] = []

            def hub_lost(reason: str, lost: List[str] = lost,
                         connector: Connector = connector) -> None:
                if reason != "closed" and not lost:
                    lost.append(reason)
                    self.complain(f"lost this desktop's hub ({reason})")
                    connector.stop()

            manager = self.agent.side.manager
            assert manager is not None
            manager.disconnected.subscribe(hub_lost)
            if self.stopping:
                return 0
            code = await connector.run()
            if not lost:
                return code
            if self.args.once or self.stopping:
                return 1 if self.args.once else 0
            if not await self._hub_back():
                return 0

    async def _hub_back(self) -> bool:
        """
        Wait until this desktop's hub answers again and register with it.

        @return: C{False} if stopped meanwhile.
        """
        await self.agent.stop()
        self.say("waiting for this desktop's hub to come back")
        self.backoff.reset()
        while not self.stopping:
            self.waiting = self.backoff.wait()
            try:
                await self.waiting
            except CancelledError:
                return False
            try:
                await self.agent.start()
            except SAMPError:
                await self.agent.stop()
                continue
            self.say("this desktop's hub is back")
            return True
        return False
