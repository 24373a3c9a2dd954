"""
TOPCAT on the desktop (under Xvfb, on our hub) and Python on the simulated
remote machine, linked by ``samptwist remote`` over ssh: a VOTable that
exists only remotely is loaded by TOPCAT (its row count checked with
table.highlight.row, which TOPCAT answers with an error past the last row),
and the notebook helper send_table_to works unchanged from the remote Python.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

import pytest

from tests.apps.test_desktop_apps import START, display, hub, topcat  # noqa: F401
from tests.remote.peerproc import remote_peer
from tests.remote.test_remote_ssh import (  # noqa: F401
    LINK_TIMEOUT,
    _Link,
    machine,
    ssh_link_args,
    votable_remote,
)

pytestmark = pytest.mark.interop

NOTEBOOK = """
import json
from astropy.table import Table
from samptwist.client.helpers import connection, send_table_to

table = Table({"ra": [1.0, 2.0, 3.0, 4.0, 5.0], "dec": [0.5, 0.25, 0.125, 0.0, -0.5]})
with connection("notebook-helper") as conn:
    outcome = send_table_to(conn, table, "TOPCAT", name="from the notebook", timeout=90)
print(json.dumps({k: v if isinstance(v, dict) else repr(v) for k, v in outcome.items()}))
"""


def test_topcat_loads_a_remote_table_and_the_notebook_helper(hub, topcat, machine,  # noqa: F811
                                                             tmp_path):
    with contextlib.closing(_Link(hub, ssh_link_args(machine))) as link:
        link.running.wait_line("linked to", LINK_TIMEOUT)
        with contextlib.closing(remote_peer(machine, "notebook")) as far:
            far.wait_names(lambda n: "topcat" in n, START, "TOPCAT mirrored on the remote side")
            rows = 4321
            table = votable_remote(machine, rows)
            loaded = far.ask("result", op="call_and_wait", to="topcat", mtype="table.load.votable",
                             params={"url": table.as_uri(), "table-id": "stars",
                                     "name": "stars"}, timeout=120)
            assert loaded["response"]["samp.status"] == "samp.ok", loaded

            def highlight(row: int) -> dict:
                # TOPCAT answers the load before the table joins its list: ask
                # again as each answer comes back (paced by the round trips,
                # bounded in count and time), never on a timer.
                deadline = time.monotonic() + 60
                for _ in range(200):
                    answer = far.ask("result", op="call_and_wait", to="topcat",
                                     mtype="table.highlight.row",
                                     params={"table-id": "stars", "row": str(row)}, timeout=60)
                    if "No table with" not in json.dumps(answer["response"]) or \
                            time.monotonic() > deadline:
                        break
                return answer

            last = highlight(rows - 1)
            assert last["response"]["samp.status"] == "samp.ok", last
            past = highlight(rows)
            assert past["response"]["samp.status"] == "samp.error", past
            assert "out of range" in past["response"]["samp.error"]["samp.errortxt"]

            # The notebook helper, unchanged, from the remote Python (a
            # temporary VOTable there, fetched by TOPCAT through the link).
            done = machine.run([sys.executable, "-c", NOTEBOOK], timeout=180)
            assert done.returncode == 0, done.stdout + done.stderr
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
            assert len(outcome) == 1, outcome
            (response,) = outcome.values()
            assert isinstance(response, dict) and response["samp.status"] == "samp.ok", outcome
        assert link.stop() == 0
