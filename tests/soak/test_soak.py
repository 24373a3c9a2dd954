"""
Soak test (issue 8, marker `slow`): 100 clients exchange notifications and
calls through a hub subprocess.  Every notification reaches its recipient
exactly once, every call is answered exactly once, nothing is lost or
duplicated, and the hub's memory stays flat across rounds and registration
cycles.

Sizes are bounded and set by SAMPTWIST_SOAK_CLIENTS / SAMPTWIST_SOAK_MESSAGES
(defaults 100 and 10000).
"""

import os
import random
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer

from tests.integration.hubtools import Participant
from tests.peers import running_hub

pytestmark = pytest.mark.slow

CLIENTS = int(os.environ.get("SAMPTWIST_SOAK_CLIENTS", "100"))
MESSAGES = int(os.environ.get("SAMPTWIST_SOAK_MESSAGES", "10000"))
CONCURRENCY = 40


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def soak_hub(tmp_path):
    with running_hub(tmp_path, "--log-level", "warn", "--callback-timeout", "20") as hub:
        yield hub


async def bounded(jobs, limit=CONCURRENCY):
    semaphore = defer.DeferredSemaphore(limit)
    await defer.gatherResults([semaphore.run(job) for job in jobs], consumeErrors=True)


async def exchange(clients, count, rng, round_no):
    """Send count/2 notifications and count/2 calls between random pairs."""
    sent_notes, sent_calls = [], []
    jobs = []
    for i in range(count):
        sender, recipient = rng.sample(clients, 2)
        token = f"r{round_no}-{i}"
        if i % 2:
            sent_notes.append((recipient, token))
            jobs.append(lambda s=sender, r=recipient, t=token: s.call(
                "notify", r.id, {"samp.mtype": "soak.note", "samp.params": {"t": t}}))
        else:
            async def do_call(s=sender, r=recipient, t=token):
                msg_id = await s.call("call", r.id, t, {"samp.mtype": "soak.call",
                                                         "samp.params": {"t": t}})
                sent_calls.append((s, r, t, msg_id))
            jobs.append(lambda f=do_call: defer.ensureDeferred(f()))
    await bounded(jobs)
    # wait until every notification and response has arrived (bounded)
    from tests.integration.hubtools import deferLater

    for _ in range(600):
        notes = sum(1 for c in clients for x in c.recorder.calls
                    if x[0] == "receiveNotification" and x[-1]["samp.mtype"] == "soak.note"
                    and x[-1]["samp.params"]["t"].startswith(f"r{round_no}-"))
        responses = sum(1 for c in clients for x in c.recorder.calls
                        if x[0] == "receiveResponse" and x[2].startswith(f"r{round_no}-"))
        if notes >= len(sent_notes) and responses >= len(sent_calls):
            break
        await deferLater(0.1)
    for recipient, token in sent_notes:
        got = [x for x in recipient.recorder.calls if x[0] == "receiveNotification"
               and x[-1]["samp.params"].get("t") == token]
        assert len(got) == 1, f"notification {token} delivered {len(got)} times"
    for sender, recipient, token, _ in sent_calls:
        got = [x for x in sender.recorder.calls if x[0] == "receiveResponse" and x[2] == token]
        assert len(got) == 1, f"response {token} delivered {len(got)} times"
        assert got[0][1] == recipient.id and got[0][3]["samp.status"] == "samp.ok"
        assert got[0][3]["samp.result"] == {"t": token}


@pytest_twisted.ensureDeferred
async def test_soak(soak_hub):
    hub = soak_hub
    rng = random.Random(1234)
    clients = []

    async def join(i):
        c = await Participant(hub.url).register(
            hub.secret, subs={"soak.note": {}, "soak.call": {}}, name=f"soak{i}")

        def answer(sender, msg_id, message, c=c):
            c.call("reply", msg_id, {"samp.status": "samp.ok",
                                     "samp.result": message["samp.params"]})
        c.recorder.on_call = answer
        clients.append(c)

    await bounded([lambda i=i: defer.ensureDeferred(join(i)) for i in range(CLIENTS)])
    try:
        half = MESSAGES // 2
        await exchange(clients, half // 5, rng, 0)  # warm-up
        before = rss_kib(hub.proc.pid)
        await exchange(clients, half, rng, 1)
        middle = rss_kib(hub.proc.pid)
        await exchange(clients, half, rng, 2)
        after = rss_kib(hub.proc.pid)
        # registration cycles must not leak either
        for _ in range(3):
            extra = [await Participant(hub.url).register(hub.secret, subs={"x.y": {}})
                     for _ in range(50)]
            for e in extra:
                await e.call("unregister")
                await e.close()
        cycled = rss_kib(hub.proc.pid)
        print(f"hub RSS KiB: warm {before}, after round 1 {middle}, round 2 {after}, "
              f"after 150 registration cycles {cycled}")
        assert after - middle < 8 * 1024, (before, middle, after)
        assert cycled - after < 8 * 1024, (after, cycled)
        assert sorted(await clients[0].call("getRegisteredClients")) == sorted(
            ["hub"] + [c.id for c in clients[1:]])
    finally:
        for c in clients:
            await c.close()
