"""
Send a VOTable to every client subscribed to table.load.votable and wait
for their replies.

    python examples/send_votable.py TABLE.vot [--timeout 30]

The hub is found as usual (SAMP_HUB or ~/.samp).  Exit status 0 if at least
one client accepted the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from samptwist.client import SAMPClient


async def main(reactor, argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("table", type=Path)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    client = SAMPClient(reactor, name="samptwist-send-votable", track=False)
    await client.connect()
    try:
        message = {"url": args.table.absolute().as_uri(), "name": args.table.name}
        responses = await client.call_all("table.load.votable", message, timeout=args.timeout)
        accepted = 0
        for recipient, response in sorted(responses.items()):
            name = (await client.get_metadata(recipient)).get("samp.name", "?")
            status = response["samp.status"]
            accepted += status != "samp.error"
            print(f"{recipient} ({name}): {status}")
        if not responses:
            print("no client is subscribed to table.load.votable")
    finally:
        await client.disconnect()
    if not accepted:
        raise SystemExit(1)


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor, sys.argv[1:])))
