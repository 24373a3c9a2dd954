"""
C{samptwist hub}: the same hub, with the same options, as C{twistd -n
samphub}, for people who do not use twistd.  It logs to standard output and
stops cleanly (shutdown event sent, lockfile removed, exit status 0) on
SIGTERM or SIGINT (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, NoReturn, Optional, TextIO

from twisted.python import usage

HELP = "run a SAMP hub (the options of 'twistd -n samphub')"
DESCRIPTION = HELP
ADD_HELP = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """
    Only for the listing in C{samptwist --help}: C{samptwist hub ...} is
    parsed by L{samptwist.tap.Options} (see L{main}).
    """
    parser.add_argument("options", nargs="*", help="run 'samptwist hub --help' for the options")


def options(argv: List[str], err: Optional[TextIO] = None) -> Any:
    """
    @param err: where a usage error is written (default C{sys.stderr}).
    @return: parsed L{samptwist.tap.Options}.
    @raise SystemExit: with status 2 and one line for bad options, 0 after
        C{--help}.
    """
    from ..tap import Options

    class HubOptions(Options):
        def getSynopsis(self) -> str:
            return "Usage: samptwist hub [options]"

    opts = HubOptions()
    try:
        opts.parseOptions(argv)
    except usage.UsageError as e:
        (sys.stderr if err is None else err).write(
            f"samptwist hub: error: {e} (see samptwist hub --help)\n"
        )
        raise SystemExit(2) from None
    return opts


def main(argv: List[str], out: Optional[TextIO] = None) -> NoReturn:
    """
    Parse C{argv}, then run the hub until it is stopped.

    @param out: where the hub logs (C{sys.stdout} when run by the
        C{samptwist} command).
    """
    out = sys.stdout if out is None else out
    opts = options(argv)
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(out)], discardBuffer=True, redirectStandardIO=False
    )
    from twisted.internet.task import react

    from ..tap import reactor_for

    reactor_for(opts)  # before react: a plain-TCP hub without the TLS stack, as under twistd
    react(_serve, (opts,))
    raise SystemExit(0)  # pragma: no cover (react exits)


async def _serve(reactor: Any, opts: Any) -> None:
    from ..tap import makeService

    service = makeService(opts, reactor)
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    await service.stopped


async def run(reactor: Any, args: argparse.Namespace,
              out: Optional[TextIO] = None) -> int:  # pragma: no cover
    raise AssertionError("samptwist hub is run by main()")
