"""
Callbacks in flight per recipient (issue 16): up to
CallbackCaller.max_in_flight, pipelined on one connection to a callback
server that keeps connections open (only one at a time where they cannot be
pipelined: https, an injected agent), on connections of their own to one
that closes them (pyvo, JSAMP), started in queue order; hub messages
(samp.hub.*) always alone; queue bound, failure accounting and ejection as
before.  Fake HTTP agent and a task.Clock, or the direct client on
StringTransports.
"""

import re
import xmlrpc.client

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from samptwist.hub.callbacks import DeliveryFailed
from samptwist.hub.core import Hub
from samptwist.hub.delivery import CallbackCaller, XmlRpcCallbackTarget

from .test_delivery import FakeAgent, FakeResponse, outcome

HTTP10 = (b"HTTP", 1, 0)


def mtypes(agent):
    """@return: the MTypes of the requests in flight (timed-out ones forgotten)."""
    agent.requests[:] = [r for r in agent.requests if not r[2].called]
    return [xmlrpc.client.loads(body)[0][-1].get("samp.mtype") for _, body, _ in agent.requests]


@pytest.fixture
def rig():
    clock = Clock()
    agent = FakeAgent()
    caller = CallbackCaller(clock, timeout=10, agent=agent)
    return clock, agent, caller


def http10_target(agent, caller, **kwargs):
    """A target whose first callback was answered by an HTTP/1.0 server."""
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K", **kwargs)
    first = outcome(t.receiveNotification("c1", {"samp.mtype": "first"}))
    assert len(agent.requests) == 1  # nothing known yet: one at a time
    agent.answer(0, FakeResponse(version=HTTP10))
    assert first == [None]
    return t


def test_persistent_server_one_at_a_time_without_pipelining(rig):
    """HUB-ORDER-1: where callbacks cannot be pipelined (here an injected
    agent), a server that keeps connections open gets one at a time, even
    with max_in_flight above 1."""
    clock, agent, caller = rig
    assert caller.max_in_flight > 1
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/", "K")
    for i in range(5):
        t.receiveNotification("c1", {"samp.mtype": f"m{i}"})
    for i in range(5):
        assert mtypes(agent) == [f"m{i}"]
        agent.answer()
    assert t.in_flight == 0


def test_closing_server_gets_a_window_in_order(rig):
    clock, agent, caller = rig
    t = http10_target(agent, caller)
    window = caller.max_in_flight
    got = [outcome(t.receiveNotification("c1", {"samp.mtype": f"m{i}"}))
           for i in range(window + 2)]
    assert mtypes(agent) == [f"m{i}" for i in range(window)]  # started in queue order
    assert t.in_flight == window and len(t) == 2
    agent.answer(1, FakeResponse(version=HTTP10))  # answers may come in any order
    assert got[1] == [None] and got[0] == []
    assert mtypes(agent)[-1] == f"m{window}"  # one finished: the next starts
    while agent.requests:
        agent.answer(0, FakeResponse(version=HTTP10))
    assert all(g == [None] for g in got)
    assert t.in_flight == 0 and len(t) == 0


def test_max_in_flight_one_is_serial(rig):
    clock, agent, caller = rig
    caller.max_in_flight = 1
    t = http10_target(agent, caller)
    for i in range(3):
        t.receiveNotification("c1", {"samp.mtype": f"m{i}"})
    assert mtypes(agent) == ["m0"]


def test_hub_messages_go_alone(rig):
    """samp.hub.* (events, disconnect) wait for what is in flight, and
    nothing overlaps them: a client sees the hub's events in order."""
    clock, agent, caller = rig
    t = http10_target(agent, caller)
    t.receiveNotification("c1", {"samp.mtype": "a"})
    t.receiveNotification("c1", {"samp.mtype": "b"})
    t.receiveNotification("hub", {"samp.mtype": "samp.hub.event.register"})
    t.receiveNotification("hub", {"samp.mtype": "samp.hub.event.metadata"})
    t.receiveNotification("c1", {"samp.mtype": "c"})
    assert mtypes(agent) == ["a", "b"]
    agent.answer(0, FakeResponse(version=HTTP10))
    assert mtypes(agent) == ["b"]  # the event waits for b too
    agent.answer(0, FakeResponse(version=HTTP10))
    assert mtypes(agent) == ["samp.hub.event.register"]
    agent.answer(0, FakeResponse(version=HTTP10))
    assert mtypes(agent) == ["samp.hub.event.metadata"]
    agent.answer(0, FakeResponse(version=HTTP10))
    assert mtypes(agent) == ["c"]


def test_queue_bound_counts_waiting_callbacks(rig):
    clock, agent, caller = rig
    t = http10_target(agent, caller, max_queue=2)
    results = [outcome(t.receiveNotification("c1", {"samp.mtype": "x"}))
               for _ in range(caller.max_in_flight + 3)]
    assert len(agent.requests) == caller.max_in_flight
    full = results[-1][0]
    assert full.check(DeliveryFailed) and "queue is full" in full.value.reason
    assert len(t) == 2


def test_each_failure_counts_and_ejects(rig):
    """Failure accounting: every callback that times out counts; the client
    is ejected after max_failures in a row, its backlog dropped, and
    samp.hub.disconnect goes once those in flight are over."""
    clock, agent, caller = rig
    hub = Hub(clock)
    hub.max_failures = 3
    c = hub.register("standard")
    target = http10_target(agent, caller)
    target.private_key = c.private_key
    hub.set_callback(c.private_key, target)
    hub.declare_subscriptions(c.private_key, {"a.b": {}, "samp.hub.disconnect": {}})
    sender = hub.register("standard")
    for _ in range(caller.max_in_flight + 6):
        hub.notify(sender.private_key, c.public_id, {"samp.mtype": "a.b"})
    assert len(agent.requests) == caller.max_in_flight
    before = hub.stats.delivery_failures
    clock.advance(11)  # every callback in flight times out at once
    assert hub.stats.delivery_failures - before == caller.max_in_flight
    assert not c.registered  # ejected at the third failure
    # The first two failures each let a waiting callback start; the third
    # ejected the client: the rest of the backlog was dropped, and the
    # farewell waits for the two still in flight, then goes alone.
    assert mtypes(agent) == ["a.b", "a.b"] and len(target) == 1
    clock.advance(10)
    assert mtypes(agent) == ["samp.hub.disconnect"]
    agent.answer(0, FakeResponse(version=HTTP10))
    assert not agent.requests and target._closed


def test_cancel_in_flight_frees_its_place(rig):
    clock, agent, caller = rig
    t = http10_target(agent, caller)
    ds = [t.receiveCall("c1", f"m-{i}", {"samp.mtype": "x"})
          for i in range(caller.max_in_flight + 1)]
    ds[0].cancel()  # in flight: answered anyway, the answer ignored
    ds[0].addErrback(lambda f: None)
    assert len(agent.requests) == caller.max_in_flight
    agent.answer(0, FakeResponse(version=HTTP10))
    assert len(agent.requests) == caller.max_in_flight  # the waiting one started
    assert isinstance(ds[-1], Deferred)


def test_persistent_server_gets_callbacks_pipelined_in_order():
    """HUB-ORDER-1 with pipelining: after the first answer, up to
    max_in_flight callbacks written one behind the other on one connection."""
    from twisted.internet.testing import MemoryReactorClock, StringTransport

    from samptwist._xmlrpc import ok_answer

    reactor = MemoryReactorClock()
    caller = CallbackCaller(reactor, timeout=10)
    t = XmlRpcCallbackTarget(caller, "http://127.0.0.1:1/cb", "K")
    done = [outcome(t.receiveNotification("c1", {"samp.mtype": f"m{i}"})) for i in range(12)]
    factory = reactor.tcpClients[0][2]
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)

    def sent():
        found = re.findall(rb"<name>samp.mtype</name>\n<value><string>(m\d+)<", transport.value())
        return [m.decode() for m in found]

    body = ok_answer("")
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert sent() == ["m0"]  # nothing known yet: one at a time
    proto.dataReceived(answer)
    assert sent() == [f"m{i}" for i in range(1 + caller.max_in_flight)]
    assert t.in_flight == caller.max_in_flight
    proto.dataReceived(answer * 11)
    assert sent() == [f"m{i}" for i in range(12)] and all(d == [None] for d in done)
    assert len(reactor.tcpClients) == 1 and t.in_flight == 0
