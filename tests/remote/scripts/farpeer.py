"""
A pyvo.samp client for the remote-session tests, run on either side: it
registers as NAME with the hub found the usual way (SAMP_HUB, else ~/.samp),
answers calls (table.load.votable and image.load.fits by fetching the URL and
reporting what it found, test.echo by echoing), records notifications, and
obeys JSON commands on standard input, reporting JSON events on standard
output.
"""

import io
import itertools
import json
import sys
import threading
import urllib.request

from astropy.utils.data import conf

conf.use_internet = False
from pyvo.samp import SAMPIntegratedClient  # noqa: E402

NAME = sys.argv[1]
lock = threading.Lock()


def emit(**event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


client = SAMPIntegratedClient(name=NAME, addr="127.0.0.1",
                              metadata={"samp.description.text": f"{NAME} test peer"})


def hub_params():
    """SAMP_HUB's lockfile (the desktop side's private hub), else pyvo's own default (~/.samp)."""
    import os
    from urllib.parse import unquote, urlsplit

    where = os.environ.get("SAMP_HUB", "")
    if not where.startswith("std-lockurl:file:"):
        return None
    path = unquote(urlsplit(where[len("std-lockurl:"):]).path)
    params = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                params[key] = value
    return params


client.connect(hub_params=hub_params())


def fetch(url):
    with urllib.request.urlopen(url, timeout=120) as answer:
        return answer.read()


def describe(mtype, params):
    if mtype == "table.load.votable":
        from astropy.io.votable import parse_single_table

        data = fetch(params["url"])
        table = parse_single_table(io.BytesIO(data)).to_table()
        return {"rows": str(len(table)), "bytes": str(len(data))}
    if mtype == "image.load.fits":
        from astropy.io import fits

        data = fetch(params["url"])
        with fits.open(io.BytesIO(data)) as hdus:
            return {"shape": "x".join(str(n) for n in hdus[0].data.shape),
                    "bytes": str(len(data))}
    if mtype == "bench.fetch":
        import time

        start = time.monotonic()
        size = 0
        with urllib.request.urlopen(params["url"], timeout=600) as answer:
            while True:
                chunk = answer.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
        return {"bytes": str(size), "seconds": repr(time.monotonic() - start)}
    return {"echo": str(params.get("x", ""))}


def on_call(key, sender, msg_id, mtype, params, extra):
    try:
        result = describe(mtype, params)
    except Exception as e:  # reported to the caller as samp.error
        emit(event="call", mtype=mtype, params=params, sender=sender, error=str(e))
        client.reply(msg_id, {"samp.status": "samp.error", "samp.error": {"samp.errortxt": str(e)}})
        return
    emit(event="call", mtype=mtype, params=params, sender=sender, result=result)
    client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": result})


def on_note(key, sender, mtype, params, extra):
    emit(event="note", mtype=mtype, params=params, sender=sender)


for mtype in ("table.load.votable", "image.load.fits", "test.echo", "bench.fetch"):
    client.bind_receive_call(mtype, on_call)
client.bind_receive_notification("test.note", on_note)
hub_events = itertools.count(1)


def on_hub_event(key, sender, mtype, params, extra):
    # Numbered, so that a wait can ask for one newer than it has seen.
    emit(event="hub-event", n=next(hub_events), mtype=mtype)


for mtype in ("samp.hub.event.register", "samp.hub.event.unregister",
              "samp.hub.event.metadata", "samp.hub.event.subscriptions"):
    client.bind_receive_notification(mtype, on_hub_event)


def clients():
    found = {}
    for client_id in client.get_registered_clients():
        try:
            found[client_id] = client.get_metadata(client_id)
        except Exception:
            continue
    return found


def find(name):
    for client_id, metadata in clients().items():
        if metadata.get("samp.name") == name:
            return client_id
    raise KeyError(f"no client called {name}")


def on_response(key, responder, tag, response):
    emit(event="response", tag=tag, response=response)


emit(event="ready", id=client.get_public_id())
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    seq = cmd.get("seq")

    def answer(_seq=seq, **event):  # answers carry the command's number
        emit(seq=_seq, **event)

    try:
        if op == "clients":
            known = list(clients().values())
            answer(event="clients", names=sorted(str(m.get("samp.name")) for m in known),
                   metadata=known)
        elif op == "call_and_wait":
            message = {"samp.mtype": cmd["mtype"], "samp.params": cmd.get("params", {})}
            response = client.call_and_wait(find(cmd["to"]), message, str(cmd.get("timeout", 60)))
            answer(event="result", response=response)
        elif op == "call":
            tag = cmd["tag"]
            client.bind_receive_response(tag, on_response)
            message = {"samp.mtype": cmd["mtype"], "samp.params": cmd.get("params", {})}
            client.call(find(cmd["to"]), tag, message)
            answer(event="sent", tag=tag)
        elif op == "notify":
            message = {"samp.mtype": cmd["mtype"], "samp.params": cmd.get("params", {})}
            client.notify(find(cmd["to"]), message)
            answer(event="sent")
        elif op == "bench_calls":
            import time

            recipient = find(cmd["to"])
            message = {"samp.mtype": "test.echo", "samp.params": {"x": "1"}}
            times = []
            for _ in range(int(cmd["count"])):
                start = time.monotonic()
                client.call_and_wait(recipient, message, "30")
                times.append(time.monotonic() - start)
            answer(event="timings", seconds=times)
        elif op == "quit":
            break
    except Exception as e:
        answer(event="error", op=op, text=f"{type(e).__name__}: {e}")
try:
    client.disconnect()
except Exception:
    pass
