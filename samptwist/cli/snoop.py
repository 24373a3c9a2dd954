"""
C{samptwist snoop}: subscribe to every MType and print each message as it
arrives (like JSAMP's snooper).

What it can see: a Standard Profile client only receives messages that are
delivered to it.  Subscribing to C{*} makes every broadcast (C{notifyAll},
C{callAll}) and every hub event reach it, and messages addressed to it
directly.  It cannot see messages one client sends to another by id
(C{notify}, C{call}, C{callAndWait}), nor the replies to other clients'
calls: no SAMP client can.  The samptwist hub's status page
(C{http://127.0.0.1:PORT/status}) shows all traffic, without parameters.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any, Dict, Optional, TextIO

from twisted.internet.defer import Deferred

from ..client.handlers import Message, error, ok
from ..constants import CLIENT_EVENTS, DISCONNECT, PING, SHUTDOWN
from ..mtype import is_pattern
from ._common import CLIError, add_hub_options, make_client, summarize

HELP = "print every message sent to all clients (subscribes to *), like JSAMP's snooper"
DESCRIPTION = """Register as "samptwist snoop", subscribe to * (or the --subscribe
patterns) and print each message that reaches it: time, notify/call, MType,
sender and a summary of the parameters (--json: one JSON object per line with
the whole message).  Calls are answered with samp.error ("only logged"; --reply
ok to accept them instead).  Runs until Ctrl-C, --count messages, or the hub
stops.

A Standard Profile client only sees messages delivered to it: broadcasts
(notifyAll, callAll), hub events, and messages sent to the snooper itself.
Messages sent from one client to another by id, and the replies to other
clients' calls, never reach it; the samptwist hub's status page shows all
traffic (without parameters)."""
EPILOG = """examples:
  samptwist snoop
  samptwist snoop --subscribe 'table.*' --subscribe 'image.*' --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument(
        "--subscribe", metavar="PATTERN", action="append",
        help="MType pattern to subscribe to (repeatable; default: *)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per message")
    parser.add_argument(
        "--reply", choices=("error", "ok"), default="error",
        help="how to answer calls: samp.error 'only logged' (default) or samp.ok",
    )
    parser.add_argument("--count", type=int, help="exit after this many messages")
    parser.add_argument("--no-hub-events", action="store_true",
                        help="do not print samp.hub.event.* notifications")


class Snooper:
    """
    Prints the messages a L{SAMPClient} receives on C{out}.

    @ivar done: fires with the exit status.
    """

    def __init__(self, client: Any, args: argparse.Namespace, out: TextIO) -> None:
        self.client = client
        self.args = args
        self.out = out
        self.seen = 0
        self.done: Deferred = Deferred()

    def name(self, client_id: str) -> str:
        name = None
        if self.client.tracker is not None:
            name = self.client.tracker.name_of(client_id)
        if client_id == self.client.hub_id:
            name = name or "hub"
        return f"{name} ({client_id})" if name else client_id

    def handle(self, message: Message) -> Optional[Dict[str, Any]]:
        hub_event = message.mtype.startswith("samp.hub.")
        if not (hub_event and self.args.no_hub_events):
            self.show(message)
        if message.mtype == PING or hub_event:
            return ok()
        if self.args.reply == "ok":
            return ok()
        return error("samptwist snoop only logs messages; it did not act on this one")

    def show(self, message: Message) -> None:
        now = datetime.datetime.now()
        kind = "call" if message.is_call else "notify"
        if self.args.json:
            record = {
                "time": now.isoformat(timespec="milliseconds"),
                "kind": kind,
                "mtype": message.mtype,
                "sender": message.sender_id,
                "sender_name": self.client.tracker.name_of(message.sender_id)
                if self.client.tracker is not None else None,
                "params": message.params,
                "message": message.message,
            }
            print(json.dumps(record, sort_keys=True), file=self.out, flush=True)
        else:
            print(
                f"{now:%H:%M:%S.%f}"[:-3]
                + f"  {kind:6}  {message.mtype}  from {self.name(message.sender_id)}  "
                + summarize(message.params, 100),
                file=self.out,
                flush=True,
            )
        self.seen += 1
        if self.args.count is not None and self.seen >= self.args.count and not self.done.called:
            self.client.reactor.callLater(0, self._finish, 0)

    def _finish(self, code: int) -> None:
        if not self.done.called:
            self.done.callback(code)

    def lost(self, reason: str) -> None:
        if reason == "closed":
            return
        if reason in ("shutdown", "disconnect"):
            what = "stopped" if reason == "shutdown" else "disconnected us"
            sys.stderr.write(f"samptwist snoop: the hub {what}\n")
            self._finish(0)
        else:
            sys.stderr.write("samptwist snoop: lost the hub (it stopped answering)\n")
            self._finish(1)


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """
    @param out: where the command prints its results (C{sys.stdout} when
        run by the C{samptwist} command; tests pass a L{io.StringIO}).
    @return: the exit status.
    """
    out = sys.stdout if out is None else out
    patterns = args.subscribe or ["*"]
    for pattern in patterns:
        if not is_pattern(pattern):
            raise CLIError(f"--subscribe {pattern!r}: not an MType pattern (a.b, a.* or *)",
                           code=2)
    if args.count is not None and args.count < 1:
        raise CLIError("--count must be at least 1", code=2)
    client = make_client(reactor, args, "samptwist snoop", callable=True, track=True)
    snooper = Snooper(client, args, out)
    for pattern in patterns:
        client.add_handler(pattern, snooper.handle)
    # The library answers these itself unless a handler names them exactly.
    for mtype in (*CLIENT_EVENTS, SHUTDOWN, DISCONNECT, PING):
        client.add_handler(mtype, snooper.handle)
    client.disconnected.subscribe(snooper.lost)
    await client.connect()
    sys.stderr.write(
        f"samptwist snoop: registered as {client.self_id}, subscribed to "
        f"{', '.join(patterns)}; Ctrl-C to stop\n"
    )
    sys.stderr.flush()
    try:
        code: int = await snooper.done
    finally:
        await client.disconnect()
    return code
