"""
The hub's per-call cost does not grow with the number of registered clients
(issue 16).  Pinned without timing: by counting the Python function calls a
complete client life cycle makes through the whole hub stack (Standard
Profile methods, core, status monitor, Web Profile and activity observers),
by counting the client records the status monitor builds, and by counting
which clients routing looks at.  Timings belong in benchmarks/, never here.
"""

from __future__ import annotations

import functools
import gc
import itertools
import sys
from typing import Any, Callable, List

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from samptwist.hub import core, status, subscriptions
from samptwist.hub.core import Hub
from samptwist.hub.service import HubService
from samptwist.testing import RecordingTarget

SECRET = "s3cret"
MTYPE = "x.y.z"
#: callback URLs never repeat, so urllib's parse cache always misses alike
_URL_NUMBERS = itertools.count()


class FakeStream:
    """Just enough of a twisted.web request for a server-sent-events feed."""

    def __init__(self) -> None:
        self.written: List[bytes] = []
        self.finished: Deferred = Deferred()

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def notifyFinish(self) -> Deferred:
        return self.finished


class Stack:
    """
    A complete hub service (Standard and Web Profiles, status monitor,
    activity monitor) on a MemoryReactorClock, never started: its Standard
    Profile methods are called as the XML-RPC resource would call them.
    """

    def __init__(self, tmp_path: Any, clients: int, page_open: bool) -> None:
        self.reactor = MemoryReactorClock()
        self.service = HubService(
            self.reactor,
            lockfile=tmp_path / f"lock-{clients}-{page_open}",
            secret=SECRET,
            web_listen="tcp:0:interface=127.0.0.1",
            client_timeout=3600,
        )
        self.hub = self.service.hub
        self.stream = FakeStream()
        if page_open:
            self.service.status.startService()
            assert self.service.status.add_stream(self.stream)
        # Two watchers of every hub event and one receiver of MTYPE: the
        # subscribers, whose number is the same in every stack.
        self.watchers = [self._core_client({"samp.hub.event.*": {}}) for _ in range(2)]
        self.receiver = self._core_client({MTYPE: {}})
        # The crowd: registered, callable, subscribed to something else.
        for i in range(clients):
            key = self.call("register", SECRET)["samp.private-key"]
            self.call("declareMetadata", key, {"samp.name": f"crowd {i}"})
            self.call("setXmlrpcCallback", key, f"http://127.0.0.1:9/c{i}")
            self.call("declareSubscriptions", key, {"crowd.only": {}, "crowd.a.*": {}})
        self.reactor.advance(0)  # the observers catch up

    def _core_client(self, subscriptions: dict) -> core.Client:
        client = self.hub.register("standard")
        client.t = RecordingTarget()  # type: ignore[attr-defined]
        self.hub.set_callback(client.private_key, client.t)  # type: ignore[attr-defined]
        self.hub.declare_subscriptions(client.private_key, subscriptions)
        return client

    def call(self, method: str, *args: Any) -> Any:
        dispatch = self.service.standard.lookupProcedure("samp.hub." + method)
        result = dispatch(None, *args)
        assert not hasattr(result, "faultString"), result
        return result

    def life_cycle(self, n: int) -> None:
        """One new client: everything but the calls whose answer is O(N)."""
        key = self.call("register", SECRET)["samp.private-key"]
        self.call("declareMetadata", key, {"samp.name": f"newcomer {n}"})
        self.call("setXmlrpcCallback", key, f"http://127.0.0.1:9/new{next(_URL_NUMBERS)}")
        self.call("declareSubscriptions", key, {"other.thing": {}})
        self.call("getMetadata", key, self.receiver.public_id)
        self.call("getSubscriptions", key, self.receiver.public_id)
        assert list(self.call("getSubscribedClients", key, MTYPE)) == [self.receiver.public_id]
        message = {"samp.mtype": MTYPE, "samp.params": {"n": str(n)}}
        self.call("notify", key, self.receiver.public_id, message)
        assert self.call("notifyAll", key, message) == [self.receiver.public_id]
        self.call("unregister", key)
        self.reactor.advance(0)  # the hub's observers hear of it all


def python_calls(action: Callable[[], None]) -> int:
    """@return: how many Python functions C{action} called (no timing)."""
    count = 0

    def profiler(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    gc.collect()
    gc.disable()
    try:
        sys.setprofile(profiler)
        try:
            action()
        finally:
            sys.setprofile(None)
    finally:
        gc.enable()
    return count


@pytest.mark.parametrize("page_open", [False, True], ids=["no-status-page", "status-page-open"])
def test_client_life_cycle_costs_the_same_at_10_and_2000_clients(tmp_path, page_open):
    """register, metadata, callback, subscriptions, get*, notify, notifyAll
    and unregister make exactly as many Python calls with 2,000 registered
    clients as with 10: no step walks the registry."""
    counts = {}
    for clients in (10, 2000):
        stack = Stack(tmp_path, clients, page_open)
        stack.life_cycle(0)  # warm every cache and lazy import
        counts[clients] = python_calls(functools.partial(stack.life_cycle, 1))
        # Delivered to the receiver and to both watchers, both cycles.
        assert [m for m, _ in stack.receiver.t.received] == ["receiveNotification"] * 4
        hub_events = [a[1]["samp.mtype"] for _, a in stack.watchers[0].t.received]
        assert hub_events.count("samp.hub.event.register") == clients + 4
    assert counts[10] == counts[2000], counts


def test_status_monitor_builds_no_client_records_without_a_page(tmp_path, monkeypatch):
    built = []
    real = status._client_record
    monkeypatch.setattr(status, "_client_record", lambda c, now: built.append(c) or real(c, now))
    stack = Stack(tmp_path, 50, page_open=False)
    stack.life_cycle(0)
    assert built == []
    assert stack.service.status.stats()["clients"] == 54  # hub, 3 core clients, crowd
    assert len(stack.service.status.entries) > 0  # the log is still kept


def test_status_page_gets_one_record_per_client_event(tmp_path, monkeypatch):
    """With a page open, a client event sends that client's record only."""
    stack = Stack(tmp_path, 200, page_open=True)
    built = []
    real = status._client_record
    monkeypatch.setattr(status, "_client_record", lambda c, now: built.append(c) or real(c, now))
    del stack.stream.written[:]
    key = stack.call("register", SECRET)["samp.private-key"]
    stack.call("declareMetadata", key, {"samp.name": "newcomer"})
    stack.call("declareSubscriptions", key, {"a.b": {}})
    client = stack.hub.client_for_key(key)
    assert built == []  # the status monitor hears of it on a later turn
    stack.reactor.advance(0)
    assert built == [client] * 3
    stack.call("unregister", key)
    stack.reactor.advance(0)
    assert len(built) == 3  # a departure sends the id alone
    events = [w for w in stack.stream.written if w.startswith(b"event: client\n")]
    assert len(events) == 4
    assert b'"samp.name":"newcomer"' in events[1]
    assert events[3] == (
        b'event: client\ndata: {"id":"%s","record":null}\n\n' % client.public_id.encode()
    )


def counting_subscription_for(monkeypatch) -> List[core.Client]:
    looked_at: List[Any] = []
    real = subscriptions.subscription_for

    def counting(subs: Any, mtype: str) -> Any:
        looked_at.append(subs)
        return real(subs, mtype)

    monkeypatch.setattr(subscriptions, "subscription_for", counting)
    return looked_at


def test_routing_looks_only_at_subscribers(monkeypatch):
    """notifyAll and getSubscribedClients touch the subscribers of the MType
    (exact, "a.*" and "*" subscriptions), not the other 3,000 clients, and
    answer in registration order."""
    hub = Hub(MemoryReactorClock())

    def client(subs: dict) -> core.Client:
        c = hub.register("standard")
        c.t = RecordingTarget()  # type: ignore[attr-defined]
        hub.set_callback(c.private_key, c.t)  # type: ignore[attr-defined]
        hub.declare_subscriptions(c.private_key, subs)
        return c

    sender = client({})
    wild = client({"*": {"w": "1"}})
    for _ in range(1500):
        client({"x.y.other": {}, "x.y.z.*": {}, "x.yz": {}})
    prefix = client({"x.*": {"p": "1"}, "x.y.z": {"exact": "1"}})
    for _ in range(1500):
        client({"q.*": {}})
    exact = client({"x.y.z": {}})
    deeper = client({"x.y.*": {}})
    uncallable = client({"x.y.z": {}})
    hub.set_callback(uncallable.private_key, None)

    looked_at = counting_subscription_for(monkeypatch)
    answer = hub.get_subscribed_clients(sender.private_key, MTYPE)
    assert answer == {
        wild.public_id: {"w": "1"},
        prefix.public_id: {"exact": "1"},  # its most specific subscription
        exact.public_id: {},
        deeper.public_id: {},
    }
    assert list(answer) == [wild.public_id, prefix.public_id, exact.public_id, deeper.public_id]
    assert len(looked_at) <= 5  # four subscribers and the uncallable one
    recipients = hub.notify_all(sender.private_key, {"samp.mtype": MTYPE, "samp.params": {}})
    assert recipients == list(answer)
    assert len(looked_at) <= 5  # answered from the routing cache

    # Changing one client's subscriptions re-routes without scanning.
    hub.declare_subscriptions(exact.private_key, {"other.mtype": {}})
    del looked_at[:]
    assert exact.public_id not in hub.get_subscribed_clients(sender.private_key, MTYPE)
    assert len(looked_at) <= 4
    # So does leaving.
    hub.unregister(wild.private_key)
    del looked_at[:]
    assert set(hub.get_subscribed_clients(sender.private_key, MTYPE)) == {
        prefix.public_id, deeper.public_id,
    }
    assert len(looked_at) <= 3
    # A client that becomes callable again is routed to again.
    hub.set_callback(uncallable.private_key, RecordingTarget())
    assert uncallable.public_id in hub.get_subscribed_clients(sender.private_key, MTYPE)


@pytest.mark.parametrize(
    "mtype, keys",
    [
        ("a", ["a", "*"]),
        ("a.b", ["a.b", "*", "a.*"]),
        ("x.y.z", ["x.y.z", "*", "x.*", "x.y.*"]),
    ],
)
def test_keys_matching(mtype, keys):
    """The subscription keys that can match an MType (MT-SUB-*)."""
    assert subscriptions.keys_matching(mtype) == keys
    from samptwist.mtype import matches

    for key in keys:
        assert matches(key, mtype)
    assert not matches(mtype + ".*", mtype)


def python_lines(action: Callable[[], None]) -> int:
    """@return: how many lines of Python C{action} ran (loops included)."""
    count = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    gc.collect()
    gc.disable()
    try:
        sys.settrace(tracer)
        try:
            action()
        finally:
            sys.settrace(None)
    finally:
        gc.enable()
    return count


def test_unregister_costs_o_its_own_pending_calls():
    """Unregistering a client touches its own pending calls (as sender and
    as recipient), not the other clients' (issue 16): the same number of
    lines of Python run with 10 and with 2,000 other calls pending."""
    counts = {}
    for n in (10, 2000):
        hub = Hub(MemoryReactorClock())

        def client(subs: dict, hub: Hub = hub) -> core.Client:
            c = hub.register("standard")
            hub.set_callback(c.private_key, RecordingTarget())
            hub.declare_subscriptions(c.private_key, subs)
            return c

        busy = client({MTYPE: {}})
        for _ in range(n):
            hub.call(client({}).private_key, busy.public_id, "t", {"samp.mtype": MTYPE})
        leaving = client({MTYPE: {}})
        hub.call(leaving.private_key, busy.public_id, "mine", {"samp.mtype": MTYPE})
        hub.call(busy.private_key, leaving.public_id, "yours", {"samp.mtype": MTYPE})
        assert hub.pending_calls == n + 2
        counts[n] = python_lines(functools.partial(hub.unregister, leaving.private_key))
        assert hub.pending_calls == n
    assert counts[10] == counts[2000], counts
