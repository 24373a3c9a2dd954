"""
C{samptwist clients}: who is registered with the hub, with their key
metadata and subscriptions.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, TextIO

from ..client.discovery import find_hub
from ..statuspage import status_url
from ._common import CLIError, add_hub_options, client_name, list_clients, make_client, table

HELP = "list the registered clients: name, id, key metadata, subscriptions"
EPILOG = """examples:
  samptwist clients
  samptwist clients --json | jq '.[] | .metadata["samp.name"]'
"""

#: metadata shown in the table besides samp.name
KEY_METADATA = (
    "samp.description.text",
    "author.name",
    "x-samp.release.version",
    "hub.impl",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {id, name, metadata, subscriptions} (for scripts)",
    )
    parser.add_argument(
        "--status-url",
        action="store_true",
        help="print the URL of the hub's live status page (samptwist hubs) and exit",
    )
    parser.add_argument(
        "--all-metadata",
        action="store_true",
        help="show every metadata key in the table, not only the usual ones",
    )


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """
    @param out: where the command prints its results (C{sys.stdout} when
        run by the C{samptwist} command; tests pass a L{io.StringIO}).
    @return: the exit status.
    """
    out = sys.stdout if out is None else out
    if args.status_url:
        info = await find_hub(reactor, lockfile=args.lockfile)
        if not info.extra.get("hub.impl", "").startswith("samptwist"):
            impl = info.extra.get("hub.impl", "an unknown implementation")
            raise CLIError(f"the hub at {info.url} is {impl}, not samptwist: no status page")
        print(status_url(info.url, info.secret), file=out)
        return 0
    client = make_client(reactor, args, "samptwist clients", callable=False)
    await client.connect()
    try:
        found = await list_clients(client)
    finally:
        await client.disconnect()
    records: List[Dict[str, Any]] = [
        {
            "id": client_id,
            "name": client_name(info, client_id),
            "metadata": info["metadata"],
            "subscriptions": info["subscriptions"],
        }
        for client_id, info in found.items()
    ]
    if args.json:
        print(json.dumps(records, indent=2, sort_keys=True), file=out)
        return 0
    rows = []
    for record in records:
        metadata = record["metadata"]
        keys = sorted(metadata) if args.all_metadata else KEY_METADATA
        shown = [
            f"{key}={_short(metadata[key])}"
            for key in keys
            if key in metadata and key != "samp.name"
        ]
        subs = sorted(record["subscriptions"])
        rows.append(
            (
                record["name"],
                record["id"],
                "; ".join(shown) or "-",
                f"{len(subs)}: {', '.join(subs)}" if subs else "none",
            )
        )
    print(table(rows, ("NAME", "ID", "METADATA", "SUBSCRIPTIONS")), file=out)
    return 0


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
