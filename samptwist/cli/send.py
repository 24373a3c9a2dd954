"""
C{samptwist send MTYPE key=value ...}: notify or call one client or every
subscriber, and print the replies.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Optional, TextIO

from twisted.internet.defer import TimeoutError
from twisted.internet.task import deferLater

from ..client.errors import BroadcastTimeout
from ..client.handlers import make_message
from ..errors import SAMPCallError, SAMPValueError
from ._common import (
    CLIError,
    Progress,
    add_hub_options,
    client_name,
    is_error,
    list_clients,
    make_client,
    parse_params,
    resolve,
    response_line,
)

#: seconds a notification's sender stays registered after the hub took it:
#: astropy's and pyvo's hubs deliver it from a thread of their own that drops
#: it, without a word, if its sender has unregistered meanwhile
NOTIFY_LINGER = 0.5

HELP = "send a message (notify, or call and wait for replies)"
DESCRIPTION = """Send MTYPE with the given parameters to one client (--to) or to every
client subscribed to it.  Without --wait the message is a notification; with
--wait SECONDS it is a call, and each recipient's reply is printed.  A value
starting with [ { or " is JSON (for lists and maps); anything else is a string.
Exit status 1 if nobody is subscribed or a recipient answers with an error or
not at all.  After a notification the command stays registered for half a
second (astropy's and pyvo's hubs drop one whose sender has already left)."""
EPILOG = """examples:
  samptwist send samp.app.ping --to TOPCAT --wait 5
  samptwist send coord.pointAt.sky ra=83.63 dec=22.01
  samptwist send table.select.rowList table-id=t1 'row-list=["0","3","7"]' --wait 10
  samptwist send script.aladin.send 'script=get DSS2 m1' --to Aladin --json --wait 30
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("mtype", metavar="MTYPE", help="the message type, e.g. coord.pointAt.sky")
    parser.add_argument("params", metavar="KEY=VALUE", nargs="*", help="message parameters")
    parser.add_argument("--to", metavar="NAME|ID", help="the recipient (default: all subscribers)")
    parser.add_argument(
        "--wait",
        metavar="SECONDS",
        type=_seconds,
        help="send a call and wait this long for the replies (default: a notification)",
    )
    parser.add_argument("--json", action="store_true", help="print the replies as JSON")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """
    @param out: where the command prints its results (C{sys.stdout} when
        run by the C{samptwist} command; tests pass a L{io.StringIO}).
    @return: the exit status.
    """
    out = sys.stdout if out is None else out
    params = parse_params(args.params)
    try:
        message = make_message(args.mtype, params)
    except SAMPValueError as e:
        raise CLIError(str(e), code=2) from None
    # A call to all subscribers needs a callback for the responses; a
    # notification or a callAndWait does not.
    callable = args.wait is not None and args.to is None
    client = make_client(reactor, args, "samptwist send", callable=callable)
    await client.connect()
    try:
        clients = await list_clients(client)
        if args.to is not None:
            recipient = resolve(clients, args.to)
            subscribed = await client.get_subscribed_clients(args.mtype)
            if recipient not in subscribed:
                raise CLIError(
                    f"{client_name(clients.get(recipient, {}), recipient)} ({recipient}) "
                    f"is not subscribed to {args.mtype}"
                )
            code = await _to_one(client, clients, recipient, message, args, out)
        else:
            code = await _to_all(reactor, client, clients, message, args, out)
        if args.wait is None:
            await deferLater(reactor, NOTIFY_LINGER, lambda: None)
        return code
    finally:
        await client.disconnect()


async def _to_one(
    client: Any, clients: Dict[str, Any], recipient: str, message: Dict[str, Any],
    args: argparse.Namespace, out: TextIO,
) -> int:
    label = f"{client_name(clients.get(recipient, {}), recipient)} ({recipient})"
    if args.wait is None:
        await client.notify(recipient, message)
        if args.json:
            print(json.dumps({"notified": [recipient]}), file=out)
        else:
            print(f"notified {label}", file=out)
        return 0
    response: Any
    try:
        response = await client.call_and_wait(recipient, message, timeout=args.wait)
    except SAMPCallError as e:
        response = e.response
    except TimeoutError:
        raise CLIError(f"{label} did not answer within {args.wait:g}s") from None
    return _report({recipient: response}, clients, args, out)


async def _to_all(
    reactor: Any, client: Any, clients: Dict[str, Any], message: Dict[str, Any],
    args: argparse.Namespace, out: TextIO,
) -> int:
    mtype = message["samp.mtype"]
    if args.wait is None:
        notified = await client.notify_all(message)
        if not notified:
            raise CLIError(f"no client is subscribed to {mtype}")
        if args.json:
            print(json.dumps({"notified": notified}), file=out)
        else:
            for recipient in notified:
                print(f"notified {client_name(clients.get(recipient, {}), recipient)} "
                      f"({recipient})", file=out)
        return 0
    subscribed = await client.get_subscribed_clients(mtype)
    if not subscribed:
        raise CLIError(f"no client is subscribed to {mtype}")
    progress = Progress()
    got: Dict[str, Any] = {}

    def on_response(responder: str, response: Dict[str, Any]) -> None:
        got[responder] = response
        progress.update(f"{mtype}: {len(got)} of {len(subscribed)} replied")

    progress.update(f"{mtype}: waiting for {len(subscribed)} replies")
    try:
        responses: Dict[str, Any] = await client.call_all(
            message, timeout=args.wait, on_response=on_response
        )
    except BroadcastTimeout as e:
        responses = dict(e.responses)
        for missing in e.missing:
            responses[missing] = TimeoutError(f"no reply within {args.wait:g}s")
    finally:
        progress.done()
    return _report(responses, clients, args, out)


def _report(responses: Dict[str, Any], clients: Dict[str, Any], args: argparse.Namespace,
            out: TextIO) -> int:
    failed = [r for r, response in responses.items() if is_error(response)]
    if args.json:
        print(json.dumps(
            {
                r: (response if isinstance(response, dict) else {"timeout": str(response)})
                for r, response in responses.items()
            },
            indent=2,
            sort_keys=True,
        ), file=out)
    else:
        for recipient in sorted(responses):
            name = client_name(clients.get(recipient, {}), recipient)
            print(f"{name} ({recipient}): {response_line(responses[recipient])}", file=out)
    if failed:
        names = ", ".join(client_name(clients.get(r, {}), r) for r in sorted(failed))
        raise CLIError(f"{len(failed)} of {len(responses)} recipients failed: {names}")
    return 0
