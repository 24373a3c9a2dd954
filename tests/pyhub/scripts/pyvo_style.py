# A typical pyvo.samp script: start a hub, connect two clients, exchange a
# notification and a call, stop.  The port test runs it as written (pyvo)
# and with only the import line changed (samptwist).
import threading

from pyvo.samp import SAMPHubServer, SAMPIntegratedClient

hub = SAMPHubServer(web_profile=False)
hub.start()
assert hub.is_running

receiver = SAMPIntegratedClient(name="Receiver")
receiver.connect()
got = threading.Event()
seen = {}


def on_note(private_key, sender_id, mtype, params, extra):
    seen.update(params)
    got.set()


def on_call(private_key, sender_id, msg_id, mtype, params, extra):
    receiver.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"echo": params["x"]}})


receiver.bind_receive_notification("demo.note", on_note)
receiver.bind_receive_call("demo.echo", on_call)

sender = SAMPIntegratedClient(name="Sender")
sender.connect(hub=hub)
rid = [c for c in sender.get_registered_clients()
       if sender.get_metadata(c).get("samp.name") == "Receiver"][0]
sender.notify(rid, {"samp.mtype": "demo.note", "samp.params": {"a": "1"}})
assert got.wait(10)
reply = sender.call_and_wait(rid, {"samp.mtype": "demo.echo", "samp.params": {"x": "42"}}, "10")
print("note", sorted(seen.items()))
print("reply", reply["samp.status"], reply["samp.result"])
print("subscribed", sorted(sender.get_subscribed_clients("demo.note")) == [rid])
sender.disconnect()
receiver.disconnect()
hub.stop()
print("running after stop", hub.is_running)
