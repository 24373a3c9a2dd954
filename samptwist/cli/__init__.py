"""
The C{samptwist} command (also C{python -m samptwist}): a hub and SAMP
command-line tools built on L{samptwist.client.SAMPClient}.

Each subcommand is one module of this package with C{NAME}, C{HELP},
C{add_arguments(parser)} and C{run(reactor, args, out)} (a coroutine
returning the exit status, writing its output on the text stream C{out}:
standard output, or standard error for a command with C{OUT_IS_STDERR}
whose standard output is a protocol).  Errors end the command with one line on standard error
and a non-zero status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Any, List, NoReturn, Optional, Sequence

SUBCOMMANDS = ("hub", "clients", "send", "load", "ping", "snoop", "bridge", "remote",
               "remote-agent", "web", "doctor")

PROG = "samptwist"


class _Parser(argparse.ArgumentParser):
    """
    An argument parser whose errors are one line and exit status 2.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """
    @return: the parser of the whole command, one sub-parser per subcommand.
    """
    parser = _Parser(
        prog=PROG,
        description="SAMP hub and command-line tools (samptwist).",
        epilog="Run 'samptwist COMMAND --help' for a command's options. "
        "Clients find the hub like every SAMP client: --lockfile, else "
        "SAMP_HUB=std-lockurl:URL, else ~/.samp.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=getattr(module, "ADD_HELP", True),
        )
        module.add_arguments(sub)
        sub.set_defaults(module=module)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """
    Run the command line C{argv} (default: C{sys.argv[1:]}) and exit.
    """
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["hub"]:
        # The hub takes twistd samphub's options, parsed by samptwist.tap.
        from . import hub

        hub.main(args_list[1:], out=sys.stdout)
    parser = build_parser()
    args = parser.parse_args(args_list)
    module = args.module
    _setup_logging(getattr(args, "verbose", 0))
    _stop_on_sigint()
    from twisted.internet.task import react

    react(_run, (module, args))
    raise SystemExit(0)  # pragma: no cover (react exits)


def _stop_on_sigint() -> None:
    # Started in the background by a script (`samptwist remote HOST &`), a
    # command inherits SIGINT ignored, and Twisted then ignores it too: such
    # a link could not be stopped with `kill -INT`.  Every command stops on
    # SIGINT, as on SIGTERM, however it was started (so does the hub).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


async def _run(reactor: Any, module: Any, args: argparse.Namespace) -> None:
    # Imported here, not at the top: `samptwist hub` (a hub process) must not
    # load the client library, which _common uses.
    from ._common import CLIError, error_line

    prog = f"{PROG} {args.command}"
    out = sys.stderr if getattr(module, "OUT_IS_STDERR", False) else sys.stdout
    try:
        code = await module.run(reactor, args, out=out)
    except CLIError as e:
        _say(f"{prog}: {error_line(e)}")
        raise SystemExit(e.code) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        if getattr(args, "verbose", 0) >= 2:
            import traceback

            traceback.print_exc()
        _say(f"{prog}: {error_line(e)}")
        raise SystemExit(1) from None
    raise SystemExit(code or 0)


def _say(line: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _setup_logging(verbosity: int) -> None:
    """
    Log the library's events to standard error at C{-v} (warnings) or
    C{-vv} (everything); otherwise stay silent (errors are reported by the
    command itself).
    """
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from .._log import set_level

    level = {0: LogLevel.critical, 1: LogLevel.warn}.get(verbosity, LogLevel.debug)
    set_level(level)
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    observers: List[Any] = []
    if verbosity > 0:
        observers.append(FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate]))
    globalLogBeginner.beginLoggingTo(observers, discardBuffer=True, redirectStandardIO=False)
