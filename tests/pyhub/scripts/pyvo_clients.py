# pyvo.samp clients against a hub started with samptwist's SAMPHubServer.
import threading

from pyvo.samp import SAMPIntegratedClient

from samptwist.samp import SAMPHubServer

hub = SAMPHubServer(web_profile=False)
hub.start()
a = SAMPIntegratedClient(name="A")
a.connect(hub_params=hub.params)
b = SAMPIntegratedClient(name="B")
b.connect(hub_params=hub.params)
got = threading.Event()
a.bind_receive_notification("x.y", lambda *args: got.set())
ids = b.notify_all({"samp.mtype": "x.y", "samp.params": {}})
assert got.wait(10)
print("delivered to", len(ids))
a.disconnect()
b.disconnect()
hub.stop()
