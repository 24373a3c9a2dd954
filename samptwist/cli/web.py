"""
C{samptwist web}: the Web Profile consent requests waiting on the hub's
status page, answered from a terminal; and the always-allowed page origins.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, TextIO, Tuple

import treq
from twisted.web.http_headers import Headers

from ..client.discovery import find_hub
from ..errors import LockfileError
from ..hub.web.remembered import RememberedOrigins, describe_entries
from ..statuspage import TOKEN_HEADER, status_key
from ._common import CLIError, add_hub_options, table

HELP = "list and answer web pages asking to use the hub; list/forget always-allowed origins"
DESCRIPTION = """\
Web pages that ask to register with the hub's Web Profile wait on the hub's
status page when the hub asks there (--web-consent page, or auto without a
terminal).  This command shows and answers them from a terminal.
"""
EPILOG = """examples:
  samptwist web                       # the same as: samptwist web pending
  samptwist web allow 3               # allow request 3 once
  samptwist web allow 3 --always      # and always allow its origin from now on
  samptwist web deny 3
  samptwist web origins               # always-allowed origins
  samptwist web forget https://example.org
"""

TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    pending = sub.add_parser("pending", help="list the waiting requests (the default)")
    allow = sub.add_parser("allow", help="allow a waiting request")
    allow.add_argument("id", help="the request's number (see 'samptwist web pending')")
    allow.add_argument("--always", action="store_true",
                       help="also always allow the page's origin from now on")
    deny = sub.add_parser("deny", help="refuse a waiting request")
    deny.add_argument("id", help="the request's number")
    sub.add_parser("origins", help="list the always-allowed origins")
    forget = sub.add_parser("forget", help="stop always allowing an origin (at once)")
    forget.add_argument("origin", help="the origin, e.g. https://example.org")
    origins = sub.choices["origins"]
    for each in (pending, origins):
        each.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                          help="print JSON (for scripts)")


class StatusSite:
    """
    The consent part of a samptwist hub's status site, over HTTP.
    """

    def __init__(self, reactor: Any, hub_url: str, secret: str) -> None:
        self.reactor = reactor
        self.base = hub_url.rsplit("/", 1)[0] + "/status/"
        self.key = status_key(secret)
        self._token = ""

    async def state(self) -> Dict[str, Any]:
        """
        @return: the status page's state (with a fresh page token).
        @raise CLIError: if the hub has no status page.
        """
        response = await treq.get(self.base + "state.json", params={"key": self.key},
                                  timeout=TIMEOUT, reactor=self.reactor)
        body = await response.content()
        if response.code != 200:
            raise CLIError(f"the hub's status page answered HTTP {response.code}: "
                           f"{body.decode('utf-8', 'replace').strip()[:200]}")
        state = json.loads(body)
        self._token = state.get("token", "")
        return dict(state)

    async def post(self, data: Dict[str, str]) -> None:
        """
        Send one consent answer.

        @raise CLIError: with the hub's reason if it refused.
        """
        if not self._token:
            await self.state()
        response = await treq.post(
            self.base + "consent", params={"key": self.key}, data=json.dumps(data).encode(),
            headers=Headers({b"Content-Type": [b"application/json"],
                             TOKEN_HEADER: [self._token.encode()]}),
            timeout=TIMEOUT, reactor=self.reactor)
        body = await response.content()
        if response.code != 200:
            try:
                why = json.loads(body)["error"]
            except (ValueError, KeyError, TypeError):
                why = body.decode("utf-8", "replace").strip()[:200]
            raise CLIError(f"the hub refused: {why}")


async def _site(reactor: Any, args: argparse.Namespace) -> Tuple[Optional[StatusSite], str]:
    """
    @return: the status site of the running samptwist hub, or C{None} and
        why not.
    """
    try:
        info = await find_hub(reactor, lockfile=args.lockfile)
    except LockfileError as e:
        return None, str(e)
    impl = info.extra.get("hub.impl", "")
    if not impl.startswith("samptwist"):
        return None, f"the hub at {info.url} is {impl or 'not samptwist'}: it has no status page"
    return StatusSite(reactor, info.url, info.secret), ""


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    out = out or sys.stdout
    action = args.action or "pending"
    site, why = await _site(reactor, args)
    if action in ("origins", "forget") and site is None:
        return _offline(action, args, why, out)
    if site is None:
        raise CLIError(why)
    try:
        state = await site.state()
    except CLIError:
        raise
    except Exception as e:
        if action in ("origins", "forget"):
            return _offline(action, args, f"the hub does not answer ({e})", out)
        raise CLIError(f"the hub does not answer ({e}); is it still running?") from None
    consent = state.get("consent", {})
    if action in ("pending", "allow", "deny") and not consent.get("asks"):
        raise CLIError(
            "this hub does not ask on its status page (web consent: "
            f"{consent.get('mode', 'unknown')}); start it with --web-consent page or auto"
        )
    if action == "pending":
        _print_pending(consent.get("pending", []), args.json, out)
    elif action == "origins":
        _print_origins(consent.get("origins", []), args.json, out)
    elif action == "allow":
        always = bool(args.always)
        await site.post({"action": "always" if always else "allow", "id": args.id})
        out.write(f"allowed request {args.id}" + (" (origin always allowed)" if always else "")
                  + "\n")
    elif action == "deny":
        await site.post({"action": "deny", "id": args.id})
        out.write(f"denied request {args.id}\n")
    elif action == "forget":
        await site.post({"action": "forget", "origin": args.origin})
        out.write(f"{args.origin} is no longer always allowed\n")
    return 0


def _offline(action: str, args: argparse.Namespace, why: str, out: TextIO) -> int:
    """
    C{origins} and C{forget} with no samptwist hub running: use the file.
    """
    store = RememberedOrigins()
    if action == "origins":
        _print_origins(store.entries(), args.json, out)
        return 0
    if not store.remove(args.origin):
        raise CLIError(f"{args.origin} is not always allowed (in {store.path})")
    out.write(f"{args.origin} is no longer always allowed ({why}; edited {store.path})\n")
    return 0


def _print_pending(pending: List[Dict[str, Any]], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(pending, indent=2) + "\n")
        return
    if not pending:
        out.write("no web page is waiting for an answer\n")
        return
    rows = []
    for p in pending:
        origin = p.get("origin") or "(none)"
        if not p.get("origin_known"):
            origin += " (UNKNOWN ORIGIN)"
        rows.append((str(p["id"]), origin, ascii(p.get("name", ""))[1:-1],
                     p.get("referer") or "(none)", f"{p.get('time_left', 0):.0f}s"))
    out.write(table(rows, ("ID", "ORIGIN", "NAME (CLAIMED)", "REFERER", "REFUSED IN")) + "\n")
    out.write("answer with: samptwist web allow ID [--always] | samptwist web deny ID\n")


def _print_origins(origins: List[Dict[str, Any]], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(origins, indent=2) + "\n")
    elif not origins:
        out.write("no origin is always allowed\n")
    else:
        out.write("\n".join(describe_entries(origins)) + "\n")
