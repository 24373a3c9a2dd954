# A notebook-like session: blocking hub and blocking client in one
# interpreter, several start/stop cycles, with checks for leaks.
import sys
import threading
from pathlib import Path

from samptwist.samp import SAMPHubServer, SAMPIntegratedClient

lockfile = Path(sys.argv[1])
threads = None
for cycle in range(3):
    with SAMPHubServer(web_profile=False, lockfile=str(lockfile)) as hub:
        assert lockfile.exists()
        client = SAMPIntegratedClient(name=f"notebook-{cycle}")
        client.connect(hub=hub)
        assert "hub" in client.get_registered_clients()
        r = client.call_and_wait("hub", {"samp.mtype": "samp.app.ping", "samp.params": {}}, "5")
        assert r["samp.status"] == "samp.ok", r
        client.disconnect()
    assert not hub.is_running
    assert not lockfile.exists(), "lockfile left behind"
    if threads is None:
        threads = threading.active_count()
    assert threading.active_count() <= threads, (threads, threading.enumerate())
hub = SAMPHubServer(web_profile=False, lockfile=str(lockfile))
hub.start()
try:
    SAMPHubServer(web_profile=False, lockfile=str(lockfile)).start()
except Exception as e:
    print("second:", type(e).__name__, e)
# leave the hub running: interpreter exit must still stop it cleanly
print("cycles ok")
