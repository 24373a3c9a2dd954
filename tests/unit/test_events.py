"""
The hub core's typed events (samptwist.hub.events) and its profile policy
hooks (samptwist.hub.policy), on a task.Clock.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import pytest
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from samptwist.errors import SAMPHubError
from samptwist.hub import events
from samptwist.hub.core import Client, Hub
from samptwist.hub.policy import SendPolicy
from samptwist.testing import RecordingTarget


def msg(mtype: str = "a.b") -> Dict[str, Any]:
    return {"samp.mtype": mtype, "samp.params": {}}


def callable_client(hub: Hub, subs: Optional[dict] = None) -> Client:
    c = hub.register("standard")
    hub.set_callback(c.private_key, RecordingTarget())
    if subs is not None:
        hub.declare_subscriptions(c.private_key, subs)
    return c


def test_events_are_typed_ordered_and_on_a_later_turn():
    clock = Clock()
    hub = Hub(clock)
    seen: List[events.HubEvent] = []
    hub.observe(seen.append)
    a = callable_client(hub, {"a.b": {}})
    b = callable_client(hub)
    hub.declare_metadata(b.private_key, {"samp.name": "bee"})
    hub.notify(b.private_key, a.public_id, msg())
    msg_id = hub.call(b.private_key, a.public_id, "tag", msg())
    hub.reply(a.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    hub.unregister(a.private_key)
    assert seen == []  # nothing inside the hub calls
    clock.advance(0)
    assert [type(e) for e in seen] == [
        events.ClientRegistered, events.SubscriptionsDeclared, events.ClientRegistered,
        events.MetadataDeclared, events.Notified, events.Called, events.CallEnded,
        events.Replied, events.ClientUnregistered,
    ]
    registered, subscribed, _, metadata, notified, called, ended, replied, left = seen
    assert ended.pending is called.pending and ended.why == events.REPLIED
    assert registered == events.ClientRegistered(a)
    assert subscribed.subscriptions == {"a.b": {}}
    assert metadata.metadata == {"samp.name": "bee"}
    assert (notified.sender, notified.recipient) == (b, a)
    assert called.pending is replied.pending and called.pending.msg_id == msg_id
    assert replied.response["samp.status"] == "samp.ok"
    assert left == events.ClientUnregistered(a, "unregistered")
    with pytest.raises(dataclasses.FrozenInstanceError):
        left.reason = "changed"  # type: ignore[misc]


def test_no_observer_no_work_and_unobserve():
    clock = Clock()
    hub = Hub(clock)
    hub.register("standard")
    assert clock.getDelayedCalls() == []  # nobody listens: nothing scheduled
    seen: List[events.HubEvent] = []
    stop = hub.observe(seen.append)
    hub.register("standard")
    stop()
    clock.advance(0)
    assert seen == []


def test_a_failing_observer_is_logged_and_the_others_still_hear():
    clock = Clock()
    hub = Hub(clock)
    logged: List[dict] = []
    globalLogPublisher.addObserver(logged.append)

    def broken(event: events.HubEvent) -> None:
        raise RuntimeError("observer bug")

    seen: List[events.HubEvent] = []
    hub.observe(broken)
    hub.observe(seen.append)
    try:
        c = hub.register("standard")  # the hub call itself is unaffected
        clock.advance(0)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert seen == [events.ClientRegistered(c)]
    assert any("hub observer failed" in e.get("log_format", "") for e in logged)


class OnlySafe(SendPolicy):
    """Clients of the policed profile may send only "safe.*"."""

    def __init__(self) -> None:
        self.left: List[tuple] = []

    def may_send(self, sender: Client, mtype: str, annotation: Any) -> bool:
        return mtype.startswith("safe.") or (annotation or {}).get("ok") == "1"

    def visible_subscriptions(self, viewer: Client, subscriptions: dict) -> dict:
        return {k: v for k, v in subscriptions.items() if k.startswith("safe.")}

    def client_left(self, client: Client, reason: str) -> None:
        self.left.append((client, reason, client.registered))


def test_send_policy_hooks_decide_what_a_profiles_clients_may_send():
    hub = Hub(Clock())
    policy = OnlySafe()
    hub.set_policy("policed", policy)
    open_ = callable_client(hub, {"safe.x": {}, "risky.y": {}})
    marked = callable_client(hub, {"risky.y": {"ok": "1"}})
    sender = hub.register("policed")
    hub.set_callback(sender.private_key, RecordingTarget())
    key = sender.private_key

    # one recipient: refused by the policy (code 8) before "not subscribed"
    with pytest.raises(SAMPHubError) as refused:
        hub.notify(key, open_.public_id, msg("risky.y"))
    assert refused.value.code == 8
    with pytest.raises(SAMPHubError) as refused:
        hub.call(key, open_.public_id, "t", msg("risky.z"))
    assert refused.value.code == 8
    hub.notify(key, marked.public_id, msg("risky.y"))  # its annotation allows it
    # broadcasts reach only the permitted recipients, through the core's own
    assert hub.notify_all(key, msg("risky.y")) == [marked.public_id]
    assert list(hub.call_all(key, "t", msg("risky.y"))) == [marked.public_id]
    assert hub.notify_all(key, msg("safe.x")) == [open_.public_id]
    assert hub.notify_all(key, msg("safe.nobody")) == []
    with pytest.raises(SAMPHubError):
        hub.notify_all(key, msg("risky.nobody"))  # refused MType, no subscriber
    # what it may see
    assert hub.get_subscribed_clients(key, "risky.y") == {marked.public_id: {"ok": "1"}}
    assert hub.get_subscriptions(key, open_.public_id) == {"safe.x": {}}
    # other profiles are not policed
    other = callable_client(hub)
    assert hub.notify_all(other.private_key, msg("risky.y")) == [
        open_.public_id, marked.public_id,
    ]
    assert set(hub.get_subscriptions(other.private_key, open_.public_id)) == {
        "safe.x", "risky.y",
    }
    # leaving is told at once, the client already gone from the hub
    hub.unregister(key)
    assert policy.left == [(sender, "unregistered", False)]
    hub.unregister(other.private_key)
    assert len(policy.left) == 1
