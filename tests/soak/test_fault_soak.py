"""
Fault-injection soak (marker `slow`): well-behaved samptwist and pyvo clients
exchange notifications and calls through a hub subprocess while other clients
misbehave: hang up mid-call, let callAndWait time out, vanish without
unregistering, send over-size and malformed requests, use over-long MTypes
and hold idle connections.  Afterwards every well-behaved message has arrived
exactly once, every caller got an answer, the hub holds no pending call and
its resident memory is back near its baseline.

Bounded: SAMPTWIST_FAULT_SOAK_ROUNDS (default 3) rounds of
SAMPTWIST_FAULT_SOAK_MESSAGES (default 120) well-behaved messages each.
"""

import json
import os
import random
import xmlrpc.client

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, protocol, reactor, threads
from twisted.web.xmlrpc import Fault

from samptwist.statuspage import status_key
from tests.integration.hubtools import Participant, deferLater
from tests.peers import running_hub
from tests.soak.test_soak import bounded, rss_kib

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("SAMPTWIST_FAULT_SOAK_ROUNDS", "3"))
MESSAGES = int(os.environ.get("SAMPTWIST_FAULT_SOAK_MESSAGES", "120"))
GOOD = 6  # well-behaved samptwist clients
PYVO = 2  # well-behaved pyvo clients
SUBS = {"soak.note": {}, "soak.call": {}}


def note(token):
    return {"samp.mtype": "soak.note", "samp.params": {"t": token}}


def call_msg(token):
    return {"samp.mtype": "soak.call", "samp.params": {"t": token}}


class PyvoPeer:
    """A pyvo SAMPIntegratedClient, driven from the reactor through threads."""

    def __init__(self, hub, name):
        from pyvo.samp import SAMPIntegratedClient

        self.client = SAMPIntegratedClient(name=name)
        self.client.connect(hub_params=hub.hub_params)
        self.id = self.client.get_public_id()
        self.notes = []

        def on_note(private_key, sender_id, mtype, params, extra):
            self.notes.append(params["t"])

        def on_call(private_key, sender_id, msg_id, mtype, params, extra):
            self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": params})

        self.client.bind_receive_notification("soak.note", on_note)
        self.client.bind_receive_call("soak.call", on_call)

    def send(self, method, *args):
        return threads.deferToThread(getattr(self.client, method), *args)


class Idle(protocol.Protocol):
    pass


async def misbehave(hub, hung):
    """One round of hostile and broken clients; each gets a clear answer or nothing."""
    url = hub.url
    # idle connections, held for the round
    idle = [await protocol.ClientCreator(reactor, Idle).connectTCP(
        "127.0.0.1", int(url.split(":")[2].split("/")[0])) for _ in range(40)]
    bad = await Participant(url).register(hub.secret, callable=False)
    # callAndWait that times out
    async def times_out():
        with pytest.raises(Fault, match="timed out"):
            await bad.call("callAndWait", hung.id, {"samp.mtype": "soak.hang"}, "1")

    await defer.gatherResults([defer.ensureDeferred(times_out()) for _ in range(5)])
    # callers that hang up mid-call (the HTTP client gives up after 0.2 s)
    body = xmlrpc.client.dumps(
        (bad.key, hung.id, {"samp.mtype": "soak.hang", "samp.params": {"x": "y" * 50_000}},
         "0"), "samp.hub.callAndWait").encode()
    for _ in range(20):
        try:
            await treq.post(url, body, headers={"Content-Type": "text/xml"}, timeout=0.2)
        except Exception:
            pass
    # over-size and malformed requests, over-long MTypes
    r = await treq.post(url, b"<x>" + b"y" * (2 << 20), headers={"Content-Type": "text/xml"})
    assert r.code == 413
    await r.content()
    r = await treq.post(url, b"<methodCall><methodName>samp.hub.ping</method",
                        headers={"Content-Type": "text/xml"})
    with pytest.raises(xmlrpc.client.Fault):
        xmlrpc.client.loads(await r.content())
    with pytest.raises(Fault, match="max-mtype-length"):
        await bad.call("notifyAll", {"samp.mtype": "a" * 5000, "samp.params": {}})
    # clients that vanish without unregistering
    for _ in range(3):
        ghost = await Participant(url).register(
            hub.secret, subs={"samp.hub.event.register": {}, "soak.hang": {}})
        await ghost.close()  # its callback server is gone; it never unregisters
    await bad.call("unregister")
    for conn in idle:
        conn.transport.loseConnection()


async def exchange(good, pyvo, count, rng, round_no, expected):
    jobs = []
    everyone = good + pyvo
    for i in range(count):
        token = f"r{round_no}-{i}"
        sender = rng.choice(good)
        recipient = rng.choice([c for c in everyone if c is not sender])
        if i % 3 == 0:
            expected["notes"].append((recipient, token))
            jobs.append(lambda s=sender, r=recipient, t=token: s.call("notify", r.id, note(t)))
        elif i % 3 == 1:
            expected["calls"].append((sender, recipient, token))
            jobs.append(lambda s=sender, r=recipient, t=token: s.call(
                "call", r.id, t, call_msg(t)))
        else:  # a pyvo client sends
            peer = rng.choice(pyvo)
            target = rng.choice(good)
            expected["notes"].append((target, token))
            expected["pyvo_calls"] += 1

            async def pyvo_sends(p=peer, r=target, t=token):
                await p.send("notify", r.id, note(t))
                answer = await p.send("call_and_wait", r.id, call_msg(t + "w"), "30")
                expected["waits"].append((t + "w", answer))

            jobs.append(lambda f=pyvo_sends: defer.ensureDeferred(f()))
    await bounded(jobs, limit=20)


def arrived(expected):
    notes = sum(
        1 for r, t in expected["notes"]
        if t in (r.notes if isinstance(r, PyvoPeer) else [
            x[-1]["samp.params"]["t"] for x in r.recorder.calls
            if x[0] == "receiveNotification" and x[-1]["samp.mtype"] == "soak.note"])
    )
    responses = sum(
        1 for s, _, t in expected["calls"]
        if any(x[0] == "receiveResponse" and x[2] == t for x in s.recorder.calls)
    )
    return notes == len(expected["notes"]) and responses == len(expected["calls"])


async def hub_state(hub):
    url = hub.url.rsplit("/", 1)[0] + f"/status/state.json?key={status_key(hub.secret)}"
    r = await treq.get(url)
    return json.loads(await r.content())


@pytest_twisted.ensureDeferred
async def test_fault_injection_soak(tmp_path):
    with running_hub(tmp_path, "--log-level", "warn", "--callback-timeout", "2",
                     "--max-request-size", "1M", "--idle-timeout", "5") as hub:
        rng = random.Random(17)
        good = []
        for i in range(GOOD):
            c = await Participant(hub.url).register(hub.secret, subs=SUBS, name=f"good{i}")

            def answer(sender, msg_id, message, c=c):
                c.call("reply", msg_id, {"samp.status": "samp.ok",
                                         "samp.result": message["samp.params"]})
            c.recorder.on_call = answer
            good.append(c)
        hung = await Participant(hub.url).register(hub.secret, subs={"soak.hang": {}})
        hung.recorder.hang = True  # accepts calls and never replies
        pyvo = [await threads.deferToThread(PyvoPeer, hub, f"pyvo{i}") for i in range(PYVO)]
        expected = {"notes": [], "calls": [], "waits": [], "pyvo_calls": 0}
        try:
            baseline = None
            for round_no in range(ROUNDS + 1):
                await defer.gatherResults([
                    defer.ensureDeferred(exchange(good, pyvo, MESSAGES, rng, round_no, expected)),
                    defer.ensureDeferred(misbehave(hub, hung)),
                ])
                for _ in range(300):
                    if arrived(expected):
                        break
                    await deferLater(0.1)
                if baseline is None:
                    baseline = rss_kib(hub.proc.pid)  # after the warm-up round
            for recipient, token in expected["notes"]:
                got = (recipient.notes if isinstance(recipient, PyvoPeer) else [
                    x[-1]["samp.params"]["t"] for x in recipient.recorder.calls
                    if x[0] == "receiveNotification" and x[-1]["samp.mtype"] == "soak.note"])
                assert got.count(token) == 1, f"note {token} arrived {got.count(token)} times"
            for sender, recipient, token in expected["calls"]:
                got = [x for x in sender.recorder.calls
                       if x[0] == "receiveResponse" and x[2] == token]
                assert len(got) == 1, f"response {token} arrived {len(got)} times"
                assert got[0][1] == recipient.id and got[0][3]["samp.result"] == {"t": token}
            assert len(expected["waits"]) == expected["pyvo_calls"] > 0
            for token, answer in expected["waits"]:
                assert answer["samp.status"] == "samp.ok", (token, answer)
                assert answer["samp.result"] == {"t": token}
            state = await hub_state(hub)
            assert state["stats"]["pending_calls"] == 0, state["stats"]
            after = rss_kib(hub.proc.pid)
            print(f"hub RSS KiB: baseline {baseline}, after {ROUNDS} rounds {after}")
            assert after - baseline < 16 * 1024, (baseline, after)
        finally:
            for p in pyvo:
                await threads.deferToThread(p.client.disconnect)
            for c in good + [hung]:
                await c.close()
