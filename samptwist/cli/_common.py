"""
What the subcommands share: connecting to the hub, finding clients by name,
parsing C{key=value} parameters, one-line errors, tables and a progress line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, TextIO

from twisted.internet.defer import TimeoutError

from ..client import SAMPClient
from ..client.errors import HubUnreachable
from ..client.naming import matches_by_name
from ..constants import STATUS_OK, STATUS_WARNING
from ..errors import LockfileError, SAMPCallError, SAMPHubError, SAMPValueError
from ..types import from_native


class CLIError(Exception):
    """
    Ends a subcommand with one line on standard error and exit status C{code}.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_hub_options(parser: argparse.ArgumentParser) -> None:
    """
    The options every client subcommand takes.
    """
    parser.add_argument(
        "--lockfile",
        metavar="PATH_OR_URL",
        help="lockfile of the hub to use (default: SAMP_HUB, else ~/.samp)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log the client library's warnings (-vv: everything) to standard error",
    )


def error_line(failure_value: BaseException) -> str:
    """
    @return: a one-line description of an error met by a subcommand.
    """
    e = failure_value
    if isinstance(e, CLIError):
        text = str(e)
    elif isinstance(e, LockfileError):
        text = str(e)
    elif isinstance(e, HubUnreachable):
        text = f"the hub does not answer ({e}); is it still running?"
    elif isinstance(e, SAMPValueError):
        text = f"invalid value: {e}"
    elif isinstance(e, SAMPHubError):
        text = f"the hub refused: {e}"
    elif isinstance(e, SAMPCallError):
        text = f"{e.responder or 'the recipient'} answered with an error: {e.errortxt}"
    elif isinstance(e, TimeoutError):
        text = f"timed out: {e}" if str(e) else "timed out"
    elif isinstance(e, OSError):
        text = e.strerror or str(e) or type(e).__name__
        if getattr(e, "filename", None):
            text = f"{e.filename}: {text}"
    else:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return " ".join(text.split())


def make_client(
    reactor: Any,
    args: argparse.Namespace,
    name: str,
    *,
    callable: bool = True,
    track: bool = False,
    **kwargs: Any,
) -> SAMPClient:
    """
    @return: an unconnected L{SAMPClient} for a subcommand, finding the hub
        as the client library does (C{--lockfile}, C{SAMP_HUB}, C{~/.samp}).
    """
    return SAMPClient(
        reactor,
        name=name,
        description="samptwist command-line tool",
        callable=callable,
        track=track,
        lockfile=getattr(args, "lockfile", None),
        hub_timeout=10.0,
        unregister_on_shutdown=True,
        **kwargs,
    )


async def list_clients(client: SAMPClient) -> Dict[str, Dict[str, Any]]:
    """
    @return: every other client's id to C{{"metadata": ..., "subscriptions":
        ...}}, the hub included; clients leaving meanwhile are left out.
    """
    found: Dict[str, Dict[str, Any]] = {}
    for client_id in await client.get_registered_clients():
        try:
            metadata = await client.get_metadata(client_id)
            subscriptions = await client.get_subscriptions(client_id)
        except SAMPHubError:
            continue  # it left meanwhile (HUB-RACE-1)
        found[str(client_id)] = {
            "metadata": metadata if isinstance(metadata, dict) else {},
            "subscriptions": subscriptions if isinstance(subscriptions, dict) else {},
        }
    return found


def client_name(info: Mapping[str, Any], client_id: str) -> str:
    """
    @return: the C{samp.name} in C{info}'s metadata, else the id.
    """
    name = info.get("metadata", {}).get("samp.name")
    return name if isinstance(name, str) and name else client_id


def resolve(clients: Mapping[str, Mapping[str, Any]], wanted: str) -> str:
    """
    Find a client by id or C{samp.name} (exact, then case-insensitive:
    L{samptwist.client.naming.matches_by_name}).

    @return: its id.
    @raise CLIError: if no client, or several, fit.
    """
    if wanted in clients:
        return wanted
    ids = matches_by_name(((i, client_name(info, "")) for i, info in clients.items()), wanted)
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 1:
        raise CLIError(
            f"several clients are called {wanted!r} ({', '.join(ids)}); give an id instead"
        )
    names = sorted({client_name(info, i) for i, info in clients.items()})
    raise CLIError(
        f"no client called {wanted!r} is registered (known: {', '.join(names) or 'none'})"
    )


def parse_params(items: Sequence[str]) -> Dict[str, Any]:
    """
    Parse C{key=value} arguments.  A value starting with C{[}, C{E{lb}} or
    C{"} is read as JSON (numbers and booleans in it become SAMP strings);
    anything else is a plain string.

    @raise CLIError: for an argument without C{=} or bad JSON.
    """
    params: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"parameter {item!r} is not of the form key=value", code=2)
        if value[:1] in ("[", "{", '"'):
            try:
                decoded = json.loads(value)
            except ValueError as e:
                raise CLIError(f"parameter {key}: invalid JSON: {e}", code=2) from None
            try:
                params[key] = from_native(decoded)
            except SAMPValueError as e:
                raise CLIError(f"parameter {key}: {e}", code=2) from None
        else:
            params[key] = value
    return params


def summarize(value: Any, width: int = 70) -> str:
    """
    @return: C{value} as compact one-line JSON, cut to C{width} characters.
    """
    text = json.dumps(value, separators=(", ", ": "), sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def response_line(response: Any) -> str:
    """
    @return: a short description of a response map: C{ok}, C{ok {...}},
        C{warning: ...} or C{error: ...}.
    """
    if isinstance(response, SAMPCallError):
        return f"error: {response.errortxt}"
    if isinstance(response, BaseException):
        return f"no answer ({error_line(response)})"
    if not isinstance(response, dict):
        return f"odd response {summarize(response)}"
    status = response.get("samp.status")
    result = response.get("samp.result") or {}
    emap = response.get("samp.error") or {}
    errortxt = emap.get("samp.errortxt", "") if isinstance(emap, dict) else ""
    if status == STATUS_OK:
        return "ok" + (f" {summarize(result)}" if result else "")
    if status == STATUS_WARNING:
        return f"warning: {errortxt}" + (f" {summarize(result)}" if result else "")
    return f"error: {errortxt or summarize(response)}"


def is_error(response: Any) -> bool:
    """
    @return: whether C{response} is a failure (an exception or anything but
        C{samp.ok}/C{samp.warning}).
    """
    if isinstance(response, BaseException) or not isinstance(response, dict):
        return True
    return response.get("samp.status") not in (STATUS_OK, STATUS_WARNING)


def table(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> str:
    """
    @return: a plain-text table with aligned columns (the last one unpadded).
    """
    lines: List[Sequence[str]] = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    out = []
    for n, line in enumerate(lines):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])] + [line[-1]]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


class Progress:
    """
    A one-line progress display on standard error, only when it is a
    terminal (scripts and pipes see nothing).
    """

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = 0
        self._start = time.monotonic()

    def update(self, text: str) -> None:
        """
        Replace the progress line with C{text}.
        """
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._start
        line = f"{text} [{elapsed:.1f}s]"
        self.stream.write("\r" + line.ljust(self._shown))
        self.stream.flush()
        self._shown = len(line)

    def done(self) -> None:
        """
        Erase the progress line.
        """
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0
