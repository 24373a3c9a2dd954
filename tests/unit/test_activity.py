"""
Inactivity time-outs (HUB-ACT-1) with a task.Clock.
"""

from twisted.internet.task import Clock

from samptwist.hub.activity import ActivityMonitor
from samptwist.hub.core import Hub
from samptwist.testing import RecordingTarget


def test_client_timeout_ejects_silent_clients():
    clock = Clock()
    hub = Hub(clock)
    quiet = hub.register("standard")
    quiet_target = RecordingTarget()
    hub.set_callback(quiet.private_key, quiet_target)
    hub.declare_subscriptions(quiet.private_key, {"samp.hub.disconnect": {}})
    busy = hub.register("standard")
    monitor = ActivityMonitor(hub, client_timeout=10)
    monitor.startService()
    for _ in range(12):
        clock.advance(1)
        hub.get_registered_clients(busy.private_key)
    assert not quiet.registered and busy.registered
    assert quiet_target.of("receiveNotification")[-1][1]["samp.params"] == {
        "reason": "Timeout expired!"
    }
    monitor.stopService()


def test_hub_timeout_calls_back_once():
    clock = Clock()
    hub = Hub(clock)
    stopped = []
    monitor = ActivityMonitor(hub, hub_timeout=5, on_hub_timeout=lambda: stopped.append(1))
    monitor.startService()
    c = hub.register("standard")
    clock.advance(4)
    hub.get_registered_clients(c.private_key)
    clock.advance(4)
    assert stopped == []
    clock.advance(2)
    assert stopped == [1]
    clock.advance(20)
    assert stopped == [1]
    monitor.stopService()


def test_off_by_default():
    clock = Clock()
    monitor = ActivityMonitor(Hub(clock))
    monitor.startService()
    assert clock.getDelayedCalls() == []


def test_client_timeout_checks_cost_expiring_clients_not_all_clients():
    """Issue 16: a check looks only at clients whose deadline has come. With
    1,000 active clients and a tick every second, a whole time-out period
    looks at each client about once (not 1,000 per tick); ticks with no
    deadline due look at none; the silent clients are ejected."""
    clock = Clock()
    hub = Hub(clock)
    crowd = [hub.register("standard") for _ in range(1000)]
    quiet = crowd[::250]  # 4 of them never call again
    monitor = ActivityMonitor(hub, client_timeout=10)
    monitor.startService()
    ticks = 0
    for second in range(1, 31):
        for i, client in enumerate(crowd):
            # the active ones call now and then, spread over the period
            if client not in quiet and (i + second) % 5 == 0:
                hub.client_for_key(client.private_key)
        before = monitor.examined
        clock.advance(1)
        ticks += 1
        if second < 10:
            assert monitor.examined == before  # no deadline due yet
    assert [c.registered for c in quiet] == [False] * 4
    assert all(c.registered for c in crowd if c not in quiet)
    # 30 s is three time-out periods: about three looks per client, where a
    # scan of every client on every tick would have made 30,000.
    assert monitor.examined <= 3 * len(crowd) + len(quiet), monitor.examined
    assert ticks == 30
    monitor.stopService()


def test_client_timeout_watches_clients_registered_later():
    clock = Clock()
    hub = Hub(clock)
    monitor = ActivityMonitor(hub, client_timeout=5)
    monitor.startService()
    late = hub.register("standard")
    clock.advance(0)  # the registration event arrives on a later turn
    for _ in range(7):
        clock.advance(1)
    assert not late.registered
    monitor.stopService()
