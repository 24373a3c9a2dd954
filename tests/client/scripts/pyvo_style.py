"""
A script written for pyvo.samp's SAMPIntegratedClient; the port test runs it
unchanged except for the import (chosen by argv[1]).  It must finish and let
the interpreter exit on its own (the facade's reactor thread must not hang it).
"""

import sys
import threading

if sys.argv[1] == "samptwist":
    from samptwist.client.blocking import SAMPIntegratedClient
else:
    import pyvo.samp
    from pyvo.samp import SAMPIntegratedClient
    pyvo.samp.conf.use_internet = False

received = threading.Event()
results = {}


def on_call(private_key, sender_id, msg_id, mtype, params, extra):
    client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"got": params["x"]}})


def on_note(private_key, sender_id, mtype, params, extra):
    results["note"] = params["x"]
    received.set()


def on_response(private_key, sender_id, msg_tag, response):
    results["response"] = (msg_tag, response["samp.result"]["got"])


client = SAMPIntegratedClient(name="pyvo-style", description="port test", addr="127.0.0.1")
client.connect()
client.bind_receive_call("x-test.echo", on_call)
client.bind_receive_notification("x-test.note", on_note)
client.bind_receive_response("tag-1", on_response)

other = SAMPIntegratedClient(name="pyvo-style-2", addr="127.0.0.1")
other.connect()
other.bind_receive_call("x-test.echo", lambda k, s, m, t, p, e: other.reply(
    m, {"samp.status": "samp.ok", "samp.result": {"got": "other:" + p["x"]}}))

me = client.get_public_id()
ids = other.get_registered_clients()
assert me in ids, ids
assert other.get_metadata(me)["samp.name"] == "pyvo-style"
assert "x-test.echo" in other.get_subscriptions(me)
assert me in other.get_subscribed_clients("x-test.echo")

r = other.call_and_wait(me, {"samp.mtype": "x-test.echo", "samp.params": {"x": "1"}}, "10")
assert r["samp.status"] == "samp.ok" and r["samp.result"]["got"] == "1", r
r = other.ecall_and_wait(me, "x-test.echo", "10", x="2")
assert r["samp.result"]["got"] == "2", r

other.notify(me, {"samp.mtype": "x-test.note", "samp.params": {"x": "3"}})
assert received.wait(10)
assert results["note"] == "3"

done = threading.Event()
client.bind_receive_response("tag-1", lambda k, s, t, r: (results.update(
    response=(t, r["samp.result"]["got"])), done.set()))
msg_id = client.call(other.get_public_id(), "tag-1",
                     {"samp.mtype": "x-test.echo", "samp.params": {"x": "4"}})
assert isinstance(msg_id, str)
assert done.wait(10)
assert results["response"] == ("tag-1", "other:4"), results
client.ping()
other.disconnect()
client.disconnect()
print("PORT-OK", flush=True)
