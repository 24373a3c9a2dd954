"""
Call churn leaves nothing behind, and what one client may hold is bounded
(samptwist.hub.limits): deterministic, on a task.Clock.
"""

import json
import xmlrpc.client

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from samptwist.errors import SAMPHubError
from samptwist.hub import events
from samptwist.hub.callbacks import DeliveryFailed
from samptwist.hub.core import Hub
from samptwist.hub.delivery import CallbackCaller, XmlRpcCallbackTarget
from samptwist.hub.limits import Limits
from samptwist.hub.status import StatusMonitor
from samptwist.hub.web.queue import WebCallbackQueue
from samptwist.testing import RecordingTarget
from samptwist.types import samp_size

EMPTY = {"clients": 1, "keys": 1, "pending": 0, "pending_senders": 0}


class HungAgent:
    """An HTTP agent whose requests are never answered (a hung client)."""

    def __init__(self):
        self.requests = []

    def request(self, method, uri, headers=None, bodyProducer=None):
        d = Deferred()
        self.requests.append(d)
        return d


class Churn:
    def __init__(self, **limits):
        self.clock = Clock()
        self.hub = Hub(self.clock, limits=Limits(**limits))
        self.status = StatusMonitor(self.hub, self.clock)
        self.caller = CallbackCaller(self.clock, timeout=60, agent=HungAgent())

    def hung_client(self, subs, **target_options):
        c = self.hub.register("standard")
        c.t = XmlRpcCallbackTarget(self.caller, "http://127.0.0.1:1/", c.private_key,
                                   **target_options)
        self.hub.set_callback(c.private_key, c.t)
        self.hub.declare_subscriptions(c.private_key, subs)
        return c

    def client(self, subs=None):
        c = self.hub.register("standard")
        c.t = RecordingTarget()
        self.hub.set_callback(c.private_key, c.t)
        if subs:
            self.hub.declare_subscriptions(c.private_key, subs)
        return c

    def counts(self):
        return self.hub.record_counts()


def msg(mtype="a.b", **params):
    return {"samp.mtype": mtype, "samp.params": params}


def swallow(d):
    out = []
    d.addBoth(out.append)
    return out


def test_timed_out_and_cancelled_calls_leave_nothing():
    """1,000 ended callAndWaits: no record in the core, queue or status page."""
    w = Churn()
    r = w.hung_client({"a.b": {}})
    s = w.client()
    big = "x" * 10_000
    ends = []
    for i in range(1000):
        d = w.hub.call_and_wait(s.private_key, r.public_id, msg(data=big), "1")
        ends.append(swallow(d))
        if i % 2:
            d.cancel()  # the caller hung up
    assert w.hub.pending_calls == 500
    w.clock.advance(2)
    assert all(len(e) == 1 and e[0].check(SAMPHubError) for e in ends)
    assert len(r.t) == 0 and r.t.queued_bytes == 0
    assert w.status.stats()["pending_calls"] == 0
    w.hub.unregister(r.private_key)
    w.hub.unregister(s.private_key)
    assert w.counts() == EMPTY


class Stream:
    """Just enough of a twisted.web request for the status page's live feed."""

    def __init__(self):
        self.written = []
        self.finished = Deferred()

    def write(self, data):
        self.written.append(data)

    def notifyFinish(self):
        return self.finished

    def last(self, kind):
        """The data of the last C{kind} event pushed, decoded."""
        for chunk in reversed(self.written):
            head, _, data = chunk.decode().partition("\n")
            if head == f"event: {kind}":
                return json.loads(data[len("data: "):])
        raise AssertionError(f"no {kind} event pushed")


def test_timed_out_calls_bring_the_live_page_back_to_zero():
    """1,000 callAndWait time-outs: the core's count and the status page's
    pushed live counters both return to zero (events.CallEnded)."""
    w = Churn()
    w.status.startService()
    page = Stream()
    assert w.status.add_stream(page)
    r = w.hung_client({"a.b": {}})
    s = w.client()
    ends = [swallow(w.hub.call_and_wait(s.private_key, r.public_id, msg(), "1"))
            for _ in range(1000)]
    w.clock.advance(0)  # the events of the calls reach the page
    assert w.hub.pending_calls == 1000
    assert page.last("log")["stats"]["pending_calls"] == 1000
    w.clock.advance(1)  # all time out; nothing else happens that logs
    w.clock.advance(0)
    assert all(len(e) == 1 and e[0].check(SAMPHubError) for e in ends)
    assert w.hub.pending_calls == 0
    assert page.last("stats")["pending_calls"] == 0
    assert w.status.state()["stats"]["pending_calls"] == 0
    w.status.stopService()


def test_call_ended_says_why():
    w = Churn()
    seen = []
    w.hub.observe(lambda e: seen.append(e) if isinstance(e, events.CallEnded) else None)
    r = w.client({"a.b": {}})
    h = w.hung_client({"a.b": {}})
    s = w.client()
    w.hub.call_and_wait(s.private_key, h.public_id, msg(), "1").addErrback(lambda _: None)
    d = w.hub.call_and_wait(s.private_key, h.public_id, msg(), "0")
    cancelled = swallow(d)
    d.cancel()
    assert cancelled[0].check(SAMPHubError)
    w.hub.call(s.private_key, r.public_id, "t", msg())
    msg_id = r.t.of("receiveCall")[-1][1]
    w.hub.reply(r.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    w.hub.call_and_wait(s.private_key, h.public_id, msg(), "0").addErrback(lambda _: None)
    w.clock.advance(1)
    w.hub.unregister(h.private_key)
    w.clock.advance(0)
    assert [e.why for e in seen] == [
        events.CANCELLED, events.REPLIED, events.TIMED_OUT, events.RECIPIENT_LEFT,
    ]
    assert [e.answered for e in seen] == [False, True, False, True]


def test_calls_of_departed_senders_and_recipients_leave_nothing():
    w = Churn()
    r = w.hung_client({"a.b": {}})
    for _ in range(100):
        s = w.client()
        w.hub.call(s.private_key, r.public_id, "t", msg())
        w.hub.call_and_wait(s.private_key, r.public_id, msg(), "0").addErrback(lambda _: None)
        w.hub.unregister(s.private_key)  # the caller leaves without a reply
    assert w.hub.pending_calls == 0 and len(r.t) == 0
    s = w.client()
    waits = [swallow(w.hub.call_and_wait(s.private_key, r.public_id, msg(), "0"))
             for _ in range(100)]
    w.hub.unregister(r.private_key)  # the recipient leaves
    assert all(x[0]["samp.status"] == "samp.error" for x in waits)
    assert w.hub.pending_calls == 0 and w.status.stats()["pending_calls"] == 0


def test_shutdown_leaves_nothing():
    w = Churn()
    r = w.hung_client({"a.b": {}})
    s = w.client()
    for _ in range(50):
        w.hub.call(s.private_key, r.public_id, "t", msg())
        swallow(w.hub.call_and_wait(s.private_key, r.public_id, msg(), "0"))
    w.hub.shutdown(grace=1)
    w.clock.advance(1)
    assert w.hub.record_counts() == {"clients": 0, "keys": 0, "pending": 0, "pending_senders": 0}
    assert len(r.t) == 0


def test_replies_leave_nothing_and_the_page_still_times_them():
    w = Churn()
    r = w.client({"a.b": {}})
    s = w.client()
    for _ in range(20):
        msg_id = w.hub.call(s.private_key, r.public_id, "t", msg())
        w.clock.advance(0.5)
        w.hub.reply(r.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    assert w.hub.pending_calls == 0 and w.status.stats()["pending_calls"] == 0
    w.clock.advance(0)  # the status monitor hears of the last reply
    reply = [e for e in w.status.log_entries() if e["kind"] == "reply"][-1]
    assert reply["mtype"] == "a.b" and reply["ms"] == 500.0 and reply["call"] == 20


def test_a_reply_does_not_cancel_its_delivery():
    w = Churn()
    r = w.client({"a.b": {}})
    r.t.hold = True
    s = w.client()
    msg_id = w.hub.call(s.private_key, r.public_id, "t", msg())
    w.hub.reply(r.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    r.t.held[0].callback(None)  # the recipient's HTTP answer comes after its reply
    assert len(s.t.of("receiveResponse")) == 1


# -- the limits -------------------------------------------------------------


def test_mtype_length():
    w = Churn(max_mtype_length=20)
    r = w.client({"a.*": {}})
    s = w.client()
    long = "a." + "b" * 100
    for send in (
        lambda: w.hub.notify(s.private_key, r.public_id, msg(long)),
        lambda: w.hub.call_and_wait(s.private_key, r.public_id, msg(long), "1"),
        lambda: w.hub.get_subscribed_clients(s.private_key, long),
    ):
        with pytest.raises(SAMPHubError, match=r"MType is too large: 102 characters, over the "
                                               r"hub's limit of 20 \(max-mtype-length\)"):
            send()
    w.hub.notify(s.private_key, r.public_id, msg("a." + "b" * 18))


def test_msg_tag_length():
    w = Churn(max_msg_tag_length=8)
    r = w.client({"a.b": {}})
    s = w.client()
    with pytest.raises(SAMPHubError, match=r"msg-tag is too large: 9 characters.*max-msg-tag"):
        w.hub.call(s.private_key, r.public_id, "t" * 9, msg())
    w.hub.call(s.private_key, r.public_id, "t" * 8, msg())


def test_pending_calls_per_client_and_call_all_is_all_or_nothing():
    w = Churn(max_pending_calls=3)
    rs = [w.client({"a.b": {}}) for _ in range(2)]
    s = w.client()
    w.hub.call_all(s.private_key, "t", msg())
    with pytest.raises(SAMPHubError, match=r"2 waiting for replies, limit 3: max-pending-calls"):
        w.hub.call_all(s.private_key, "t", msg())
    assert w.hub.pending_calls == 2 and all(len(r.t.of("receiveCall")) == 1 for r in rs)


def test_metadata_and_subscriptions_size():
    w = Churn(max_metadata_bytes=1000, max_subscriptions_bytes=1000)
    c = w.client()
    with pytest.raises(SAMPHubError, match=r"metadata is too large: \d+ bytes.*"
                                           r"limit of 1000 \(max-metadata-bytes\)"):
        w.hub.declare_metadata(c.private_key, {"samp.name": "x" * 1000})
    with pytest.raises(SAMPHubError, match=r"subscriptions map is too large.*"
                                           r"max-subscriptions-bytes"):
        w.hub.declare_subscriptions(c.private_key, {f"a.b{i}": {} for i in range(200)})
    w.hub.declare_metadata(c.private_key, {"samp.name": "x" * 900})
    assert c.metadata == {"samp.name": "x" * 900}


def test_max_clients():
    w = Churn(max_clients=3)
    clients = [w.hub.register("standard") for _ in range(3)]
    with pytest.raises(SAMPHubError, match=r"already has 3 registered clients.*max-clients"):
        w.hub.register("standard")
    w.hub.unregister(clients[0].private_key)
    w.hub.register("standard")


def test_queue_bytes_for_a_slow_recipient():
    """One sender flooding a slow recipient with large messages: bytes, not count."""
    w = Churn(max_queue_bytes=1_000_000)
    r = w.hung_client({"a.b": {}}, max_queue_bytes=1_000_000)
    s = w.client()
    big = msg(data="x" * 300_000)
    ids = {w.hub.call(s.private_key, r.public_id, "t", big) for _ in range(6)}
    assert len(r.t) == 3 and r.t.queued_bytes <= 1_000_000  # one in flight, three queued
    failed = s.t.of("receiveResponse")
    assert len(failed) == 2
    assert "max-queue-bytes" in failed[0][2]["samp.error"]["samp.errortxt"]
    assert w.hub.pending_calls == 4 and len(ids) == 6
    # a single message larger than the bound still reaches an idle recipient
    q = XmlRpcCallbackTarget(w.caller, "http://127.0.0.1:1/", "K", max_queue_bytes=10)
    q.in_flight = 1  # busy: the next one waits
    assert not q.receiveNotification("c1", big).called
    assert swallow(q.receiveNotification("c1", big))[0].check(DeliveryFailed)


def test_web_queue_bytes():
    q = WebCallbackQueue(Clock(), max_bytes=1000)
    overflows = []
    q.on_overflow = overflows.append
    assert q.receiveNotification("c1", msg(data="x" * 2000)).called  # fits, queue empty
    failed = swallow(q.receiveNotification("c1", msg(data="y")))
    assert "max-queue-bytes" in failed[0].value.reason and overflows == [q]
    q.take()
    assert q.queued_bytes == 0 and swallow(q.receiveNotification("c1", msg())) == [None]


def test_samp_size():
    assert samp_size("abc") == 3
    assert samp_size(["ab", "c"]) == 19
    assert samp_size({"k": "vv"}) == 11


def test_limit_faults_reach_xmlrpc_clients():
    """A fault naming the limit, not a traceback, through the Standard Profile."""
    from samptwist.hub.standard import StandardProfile

    w = Churn(max_mtype_length=10)
    profile = StandardProfile(w.hub, "secret", w.caller)
    s = w.client()
    fault = profile.lookupProcedure("samp.hub.notifyAll")(None, s.private_key, msg("a" * 11))
    assert isinstance(fault, xmlrpc.client.Fault) and "max-mtype-length" in fault.faultString


def test_notify_to_a_full_queue_is_a_fault_logged_once():
    from twisted.logger import globalLogPublisher

    w = Churn()
    r = w.hung_client({"a.b": {}}, max_queue_bytes=100_000)
    s = w.client()
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        for _ in range(3):  # one in flight, two queued
            w.hub.notify(s.private_key, r.public_id, msg(data="x" * 40_000))
        for _ in range(50):
            with pytest.raises(SAMPHubError, match=r"notification not delivered to c\d+ .*"
                                                   r"max-queue-bytes"):
                w.hub.notify(s.private_key, r.public_id, msg(data="x" * 40_000))
            w.hub.notify_all(s.private_key, msg(data="x" * 40_000))  # skipped, no fault
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [e for e in events if "failed" in e.get("log_format", "")
                and e.get("client_id") == r.public_id]
    assert len(warnings) == 1
    assert r.registered  # slow, not dead: not ejected


def test_ended_calls_leave_nothing_in_a_web_pull_queue():
    w = Churn()
    r = w.hub.register("web")
    q = WebCallbackQueue(w.clock)
    w.hub.set_callback(r.private_key, q)
    w.hub.declare_subscriptions(r.private_key, {"a.b": {}})
    s = w.client()
    waits = [swallow(w.hub.call_and_wait(s.private_key, r.public_id, msg(), "1"))
             for _ in range(100)]
    kept = w.hub.call(s.private_key, r.public_id, "t", msg())
    w.clock.advance(2)
    assert all(x and x[0].check(SAMPHubError) for x in waits)
    assert len(q) == 1 and q.queued_bytes == samp_size([s.public_id, kept, msg()])
    assert [item["samp.params"][1] for item in q.take()] == [kept]
