"""
C{samptwist ping [NAME]}: C{samp.app.ping} round-trip times (ADM-PING-1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, TextIO

from twisted.internet.defer import Deferred, DeferredList

from ..constants import PING
from ..errors import SAMPCallError
from ._common import (
    CLIError,
    Progress,
    add_hub_options,
    client_name,
    is_error,
    list_clients,
    make_client,
    resolve,
    response_line,
)

HELP = "ping clients with samp.app.ping and print round-trip times"
DESCRIPTION = """Send samp.app.ping to the client NAME (a samp.name or id), or to every
client subscribed to it (the hub included), and print each round-trip time.
Exit status 1 if a client answers with an error or not within --timeout."""
EPILOG = """examples:
  samptwist ping
  samptwist ping TOPCAT --count 5
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("name", metavar="NAME", nargs="?", help="the client to ping (default: all)")
    parser.add_argument("--count", "-c", type=int, default=1, help="pings per client (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the times as JSON")


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """
    @param out: where the command prints its results (C{sys.stdout} when
        run by the C{samptwist} command; tests pass a L{io.StringIO}).
    @return: the exit status.
    """
    out = sys.stdout if out is None else out
    if args.count < 1:
        raise CLIError("--count must be at least 1", code=2)
    if not args.timeout > 0:
        raise CLIError("--timeout must be positive", code=2)
    client = make_client(reactor, args, "samptwist ping", callable=True)
    await client.connect()
    try:
        clients = await list_clients(client)
        subscribed = await client.get_subscribed_clients(PING)
        if args.name is not None:
            target = resolve(clients, args.name)
            if target not in subscribed:
                raise CLIError(
                    f"{client_name(clients[target], target)} ({target}) is not subscribed "
                    f"to {PING}"
                )
            targets = [target]
        else:
            targets = sorted(subscribed)
            if not targets:
                raise CLIError(f"no client is subscribed to {PING}")
        progress = Progress()
        results: Dict[str, List[Any]] = {t: [] for t in targets}
        for n in range(args.count):
            progress.update(f"ping {n + 1}/{args.count} to {len(targets)} clients")
            round_ = await DeferredList(
                [_ping_one(client, t, args.timeout) for t in targets], consumeErrors=True
            )
            for target, (_, outcome) in zip(targets, round_):
                results[target].append(outcome)
        progress.done()
    finally:
        await client.disconnect()
    return _report(results, clients, args, out)


def _ping_one(client: Any, target: str, timeout: float) -> Deferred:
    start = time.monotonic()

    def done(response: Any) -> Any:
        if isinstance(response, dict):
            return (time.monotonic() - start) * 1000.0
        return response

    def failed(f: Any) -> Any:
        if f.check(SAMPCallError):
            return f.value.response
        return f.value

    d = client.call(target, PING, {}, timeout=timeout)
    d.addCallbacks(done, failed)
    return d


def _report(results: Dict[str, List[Any]], clients: Dict[str, Any],
            args: argparse.Namespace, out: TextIO) -> int:
    failed: List[str] = []
    summary: Dict[str, Any] = {}
    for target, outcomes in results.items():
        name = client_name(clients.get(target, {}), target)
        times = [o for o in outcomes if isinstance(o, float)]
        errors = [o for o in outcomes if not isinstance(o, float)]
        if errors:
            failed.append(name)
        summary[target] = {"name": name, "ms": [round(t, 3) for t in times],
                           "errors": [response_line(e) for e in errors if is_error(e)]}
        if not args.json:
            line = ", ".join(f"{t:.1f} ms" for t in times)
            problem: Optional[str] = response_line(errors[0]) if errors else None
            text = "; ".join(p for p in (line, problem) if p)
            print(f"{name} ({target}): {text}", file=out)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True), file=out)
    if failed:
        raise CLIError(f"no proper answer from {', '.join(failed)}")
    return 0
