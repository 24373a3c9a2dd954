"""
A notebook-style session with the blocking API, as in pyvo.samp: run a
private hub (beside any desktop hub), connect, send an astropy Table to every
client that loads VOTables, and clean up.

    python examples/notebook_session.py

In a real session the receiver would be TOPCAT; here a second client plays
its part so the example is self-contained.
"""

import tempfile
import threading
from pathlib import Path

from astropy.table import Table

from samptwist.samp import SAMPHubServer, SAMPIntegratedClient, send_table_to


def main() -> None:
    lockfile = Path(tempfile.mkdtemp()) / "notebook.samp"
    with SAMPHubServer(web_profile=False, lockfile=str(lockfile)) as hub:
        print("private hub at", hub.params["samp.hub.xmlrpc.url"])

        # stands in for TOPCAT: loads VOTables and says how many rows it got
        viewer = SAMPIntegratedClient(name="viewer")
        viewer.connect(hub=hub)
        got = threading.Event()

        def load(private_key, sender_id, msg_id, mtype, params, extra):
            rows = len(Table.read(params["url"], format="votable"))
            print(f"viewer loaded {params['name']!r}: {rows} rows")
            viewer.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"rows": str(rows)}})
            got.set()

        viewer.bind_receive_call("table.load.votable", load)

        me = SAMPIntegratedClient(name="notebook")
        me.connect(hub=hub)
        stars = Table({"ra": [10.68, 83.63, 201.37], "dec": [41.27, 22.01, -43.02]})
        outcome = send_table_to(me, stars, name="my stars")
        for client_id, response in outcome.items():
            print(f"{me.get_metadata(client_id)['samp.name']}: {response['samp.status']}")
        assert got.wait(10)
        me.disconnect()
        viewer.disconnect()
    print("hub stopped; lockfile removed:", not lockfile.exists())


if __name__ == "__main__":
    main()
