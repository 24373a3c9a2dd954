"""
The data-product helpers (send_table_to and friends), Deferred and blocking:
the right MType and params reach the right recipients, a Table travels as a
real VOTable that is deleted after the replies, and the outcome per
recipient says who accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import peers
import pytest
import pytest_twisted

from samptwist.client import ResponseError
from samptwist.client.helpers import (
    find_client_id,
    send_image_to,
    send_product_to,
    send_spectrum_to,
    send_table_to,
)
from samptwist.errors import SAMPCallError

ROOT = Path(__file__).resolve().parents[2]


@pytest_twisted.ensureDeferred
async def test_send_table_to_all_and_by_name(our_hub, make_client):
    table_mod = peers.require_samp_module("astropy.table")
    votable = peers.require_samp_module("astropy.io.votable")
    seen = {}

    async def viewer(name, accept=True):
        c = await make_client(name)

        def load(message):
            path = urlparse(message.params["url"]).path
            parsed = votable.parse_single_table(path).to_table()
            seen[name] = (message.params["name"], list(parsed["ra"]), path)
            if not accept:
                raise ResponseError("I only take FITS")
            return {}

        c.add_handler("table.load.votable", load)
        await c.declare_subscriptions()
        return c

    topcat = await viewer("topcat")
    picky = await viewer("picky", accept=False)
    sender = await make_client("sender")
    await sender.tracker.when(lambda t: len(t.subscribed("table.load.votable")) == 2)
    table = table_mod.Table({"ra": [10.5, 20.25], "dec": [-1.0, 2.0]})

    outcome = await send_table_to(sender, table, name="my table")
    assert outcome[topcat.self_id]["samp.status"] == "samp.ok"
    assert isinstance(outcome[picky.self_id], SAMPCallError)
    assert outcome[picky.self_id].errortxt == "I only take FITS"
    assert seen["topcat"][:2] == ("my table", [10.5, 20.25])
    assert not Path(seen["topcat"][2]).exists(), "temporary VOTable not deleted"

    seen.clear()
    outcome = await send_table_to(sender, table, client_name="topcat")
    assert list(outcome) == [topcat.self_id] and list(seen) == ["topcat"]
    assert await find_client_id(sender, "picky") == picky.self_id
    with pytest.raises(KeyError):
        await find_client_id(sender, "nobody")


@pytest_twisted.ensureDeferred
async def test_image_spectrum_product(our_hub, make_client, tmp_path):
    got = []
    viewer = await make_client("ds9")
    viewer.add_handler("image.load.fits", lambda m: got.append((m.mtype, m.params)) or {})
    viewer.add_handler("spectrum.load.*", lambda m: got.append((m.mtype, m.params)) or {})
    viewer.add_handler("coverage.load.moc.fits", lambda m: got.append((m.mtype, m.params)) or {})
    await viewer.declare_subscriptions()
    sender = await make_client("sender")
    await sender.tracker.when(lambda t: viewer.self_id in t.subscribed("image.load.fits"))
    image = tmp_path / "m31.fits"
    await send_image_to(sender, image, client_name="ds9", name="M31")
    await send_spectrum_to(sender, "http://127.0.0.1/spec.fits", client_name="ds9")
    await send_product_to(sender, image, "coverage.load.moc.fits")
    assert got == [
        ("image.load.fits", {"url": image.as_uri(), "name": "M31"}),
        ("spectrum.load.ssa-generic",
         {"url": "http://127.0.0.1/spec.fits", "name": "data", "meta": {}}),
        ("coverage.load.moc.fits", {"url": image.as_uri(), "name": "data"}),
    ]


BLOCKING_SCRIPT = """
import sys
from astropy.table import Table
from samptwist.samp import SAMPHubServer, SAMPIntegratedClient, send_table_to, connection

with SAMPHubServer(web_profile=False, lockfile=sys.argv[1]) as hub:
    viewer = SAMPIntegratedClient(name="viewer")
    viewer.connect(hub=hub)
    def load(private_key, sender_id, msg_id, mtype, params, extra):
        viewer.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    viewer.bind_receive_call("table.load.votable", load)
    with connection(client_name="script", hub=hub) as conn:
        outcome = send_table_to(conn, Table({"a": [1, 2]}), client_name="viewer")
        print("accepted", [r["samp.status"] for r in outcome.values()])
    viewer.disconnect()
"""


def test_blocking_send_table_to(tmp_path, isolated_home):
    peers.require_samp_module("astropy.table")
    script = tmp_path / "s.py"
    script.write_text(BLOCKING_SCRIPT)
    env = dict(os.environ, HOME=str(isolated_home), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "lock")], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepted ['samp.ok']" in done.stdout
