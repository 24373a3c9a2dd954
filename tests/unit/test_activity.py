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
