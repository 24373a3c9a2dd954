"""
C{samptwist load FILE_OR_URL ...}: send data files to the clients that can
load them, choosing the MType from the file's content (L{sniff}).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO, Tuple
from urllib.parse import unquote, urlparse

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.protocol import Protocol
from twisted.web.http_headers import Headers

from ..client.errors import BroadcastTimeout
from ..errors import SAMPCallError
from . import sniff
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

HELP = "send VOTable/FITS files or URLs to the clients that load them"
DESCRIPTION = """Send each FILE_OR_URL to every client that can load it (or to --to), and
report who accepted.  The MType comes from the content: a VOTable is sent with
table.load.votable, a FITS file with image.load.fits or table.load.fits as its
first HDU with data says, and a spectrum (FITS or VOTable, when recognisable)
with spectrum.load.ssa-generic.  Paths become file: URLs; for http(s) URLs the
first 64 KB are fetched to tell.  Exit status 1 if a file has no taker or a
recipient refuses it or does not answer within --timeout."""
EPILOG = """examples:
  samptwist load catalogue.vot
  samptwist load m31.fits spectrum.fits --to Aladin
  samptwist load https://example.org/data/table.fits --mtype table.load.fits
"""

#: bytes fetched from an http(s) URL to guess its type
URL_HEAD = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("files", metavar="FILE_OR_URL", nargs="+", help="files or URLs to send")
    parser.add_argument("--to", metavar="NAME|ID", help="the recipient (default: all that can)")
    parser.add_argument(
        "--mtype",
        choices=[sniff.VOTABLE, sniff.FITS_TABLE, sniff.FITS_IMAGE, sniff.SPECTRUM],
        help="send with this MType instead of guessing",
    )
    parser.add_argument("--name", help="the name recipients show (default: the file name)")
    parser.add_argument(
        "--timeout", type=float, default=60.0,
        help="seconds to wait for each file's recipients to answer (default 60)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _to_url(item: str) -> Tuple[str, Optional[str]]:
    """
    @return: C{(url, local path or None)}.
    """
    parsed = urlparse(item)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
        return Path(path).as_uri(), path
    if parsed.scheme in ("http", "https", "ftp"):
        return item, None
    resolved = Path(item).expanduser().resolve()
    return resolved.as_uri(), str(resolved)


async def _guess(reactor: Any, item: str, url: str, path: Optional[str]) -> sniff.Guess:
    try:
        if path is not None:
            if not Path(path).is_file():
                raise CLIError(f"{item}: no such file")
            return sniff.guess_file(path)
        if urlparse(url).scheme in ("http", "https"):
            head = await fetch_head(reactor, url, URL_HEAD)
            return sniff.guess_bytes(head)
    except sniff.UnknownFormat as e:
        raise CLIError(f"{item}: cannot tell what it is ({e}); give --mtype") from None
    except OSError as e:
        raise CLIError(f"{item}: {e.strerror or e}") from None
    raise CLIError(f"{item}: cannot look inside {urlparse(url).scheme}: URLs; give --mtype")


class _Head(Protocol):
    def __init__(self, limit: int, done: Deferred) -> None:
        self.limit = limit
        self.done = done
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= self.limit and not self.done.called:
            self.done.callback(self.data[: self.limit])
            self.transport.stopProducing()  # type: ignore[union-attr,attr-defined]

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(self.data)


async def fetch_head(reactor: Any, url: str, limit: int, timeout: float = 30.0) -> bytes:
    """
    @return: the first C{limit} bytes at C{url} (fewer if it is shorter).
    @raise CLIError: if the server answers with an HTTP error.
    """
    import treq

    response = await treq.get(
        url, headers=Headers({b"Range": [f"bytes=0-{limit - 1}".encode()]}), reactor=reactor,
        timeout=timeout, persistent=False,
    )
    if response.code >= 400:
        raise CLIError(f"{url}: HTTP {response.code}")
    done: Deferred = Deferred()
    response.deliverBody(_Head(limit, done))
    data: bytes = await done
    return data


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """
    @param out: where the command prints its results (C{sys.stdout} when
        run by the C{samptwist} command; tests pass a L{io.StringIO}).
    @return: the exit status.
    """
    out = sys.stdout if out is None else out
    if not args.timeout > 0:
        raise CLIError("--timeout must be positive", code=2)
    jobs: List[Tuple[str, str, sniff.Guess]] = []
    for item in args.files:
        url, path = _to_url(item)
        if args.mtype is not None:
            if path is not None and not Path(path).is_file():
                raise CLIError(f"{item}: no such file")
            fmt = "votable" if args.mtype == sniff.VOTABLE else "fits"
            guess = sniff.Guess(args.mtype, fmt, "as requested")
        else:
            guess = await _guess(reactor, item, url, path)
        jobs.append((item, url, guess))
    client = make_client(reactor, args, "samptwist load", callable=True)
    await client.connect()
    outcomes: List[Dict[str, Any]] = []
    progress = Progress()
    try:
        clients = await list_clients(client)
        target = resolve(clients, args.to) if args.to is not None else None
        for n, (item, url, guess) in enumerate(jobs, 1):
            progress.update(f"sending {n}/{len(jobs)}: {item}")
            name = args.name or Path(urlparse(url).path).name or item
            responses = await _send(client, clients, target, guess, url, name, args, progress)
            outcomes.append({"file": item, "url": url, "mtype": guess.mtype,
                             "detail": guess.detail, "responses": responses})
    finally:
        progress.done()
        await client.disconnect()
    return _report(outcomes, clients, args, out)


async def _send(client: Any, clients: Dict[str, Any], target: Optional[str], guess: sniff.Guess,
                url: str, name: str, args: argparse.Namespace, progress: Progress
                ) -> Dict[str, Any]:
    params = guess.params(url, name)
    subscribed = await client.get_subscribed_clients(guess.mtype)
    if target is not None:
        if target not in subscribed:
            return {target: CLIError(f"not subscribed to {guess.mtype}")}
        try:
            return {target: await client.call(target, guess.mtype, params, timeout=args.timeout)}
        except SAMPCallError as e:
            return {target: e}
        except TimeoutError:
            return {target: TimeoutError(f"no answer within {args.timeout:g}s")}
    if not subscribed:
        return {}
    got: List[str] = []

    def on_response(responder: str, response: Dict[str, Any]) -> None:
        got.append(responder)
        progress.update(f"{name}: {len(got)} of {len(subscribed)} answered")

    try:
        return dict(await client.call_all(guess.mtype, params, timeout=args.timeout,
                                          on_response=on_response))
    except BroadcastTimeout as e:
        responses: Dict[str, Any] = dict(e.responses)
        for missing in e.missing:
            responses[missing] = TimeoutError(f"no answer within {args.timeout:g}s")
        return responses


def _report(outcomes: List[Dict[str, Any]], clients: Dict[str, Any],
            args: argparse.Namespace, out: TextIO) -> int:
    problems: List[str] = []
    for outcome in outcomes:
        responses = outcome["responses"]
        if not responses:
            problems.append(f"{outcome['file']}: no client loads {outcome['mtype']}")
        for recipient, response in responses.items():
            if is_error(response):
                name = client_name(clients.get(recipient, {}), recipient)
                problems.append(f"{outcome['file']}: {name} {_verdict(response)}")
    if args.json:
        print(json.dumps([
            {**o, "responses": {r: _jsonable(v) for r, v in o["responses"].items()}}
            for o in outcomes
        ], indent=2, sort_keys=True), file=out)
    else:
        for outcome in outcomes:
            print(f"{outcome['file']}: {outcome['detail']} -> {outcome['mtype']}", file=out)
            if not outcome["responses"]:
                print("  nobody is subscribed to it", file=out)
            for recipient in sorted(outcome["responses"]):
                name = client_name(clients.get(recipient, {}), recipient)
                print(f"  {name} ({recipient}): {_verdict(outcome['responses'][recipient])}",
                      file=out)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CLIError(problems[0] + more)
    return 0


def _verdict(response: Any) -> str:
    if isinstance(response, CLIError):
        return str(response)
    if is_error(response):
        return "refused: " + response_line(response).removeprefix("error: ") \
            if not isinstance(response, TimeoutError) else str(response)
    line = response_line(response)
    return "accepted" + (line[2:] if line.startswith("ok") else f" ({line})")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    if isinstance(value, SAMPCallError):
        return value.response
    return {"error": str(value)}
