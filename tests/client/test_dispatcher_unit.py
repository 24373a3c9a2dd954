"""
Unit tests of incoming-message dispatch (samptwist.client.dispatch) on its
own: the Dispatcher needs only a DispatchHost (hub id, request, lost), here a
recording stub, and a task.Clock.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from samptwist.client.dispatch import BUILTIN_MTYPES, Dispatcher, DispatchHost, builtin_mtypes
from samptwist.client.errors import NotConnected
from samptwist.client.handlers import HandlerTable
from samptwist.client.tracker import EVENTS, ClientTracker


class StubHost:
    """A DispatchHost that records the requests and the losses."""

    def __init__(self, hub_id: Optional[str] = "hub", refuse: bool = False) -> None:
        self._hub_id = hub_id
        self.refuse = refuse
        self.requests: List[Tuple[Any, ...]] = []
        self.losses: List[str] = []

    @property
    def hub_id(self) -> Optional[str]:
        return self._hub_id

    def request(self, method: str, *args: Any) -> Deferred:
        self.requests.append((method,) + args)
        return fail(NotConnected("gone")) if self.refuse else succeed("")

    def lost(self, reason: str) -> None:
        self.losses.append(reason)


def message(mtype: str, **params: Any) -> dict:
    return {"samp.mtype": mtype, "samp.params": params}


@pytest.fixture
def clock():
    return Clock()


def make(clock: Clock, host: DispatchHost, tracker: Optional[ClientTracker] = None
         ) -> Tuple[Dispatcher, HandlerTable]:
    handlers = HandlerTable()
    return Dispatcher(clock, host, handlers, tracker), handlers


def test_call_is_answered_with_the_handler_result(clock):
    host = StubHost()
    dispatcher, handlers = make(clock, host)
    handlers.add("test.*", lambda m: {"got": m.params["x"]}, None, True)
    dispatcher.dispatch("c1", "m1", message("test.echo", x="1"))
    assert host.requests == [
        ("reply", "m1", {"samp.status": "samp.ok", "samp.result": {"got": "1"}})
    ]


def test_notification_is_never_answered(clock):
    host = StubHost()
    dispatcher, handlers = make(clock, host)
    seen: List[str] = []
    handlers.add("test.x", lambda m: seen.append(m.sender_id), None, True)
    dispatcher.dispatch("c1", None, message("test.x"))
    dispatcher.dispatch("c1", None, message("test.unhandled"))
    dispatcher.dispatch("c1", None, {"samp.mtype": "bad mtype!"})
    assert seen == ["c1"] and host.requests == []


def test_unhandled_and_malformed_calls_get_error_responses(clock):
    host = StubHost()
    dispatcher, _ = make(clock, host)
    dispatcher.dispatch("c1", "m1", message("test.nobody"))
    dispatcher.dispatch("c1", "m2", {"samp.mtype": "test.x", "samp.params": []})
    statuses = [(r[1], r[2]["samp.status"]) for r in host.requests]
    assert statuses == [("m1", "samp.error"), ("m2", "samp.error")]
    assert "no handler" in host.requests[0][2]["samp.error"]["samp.errortxt"]


@pytest.mark.parametrize("mtype, reason", [("samp.hub.event.shutdown", "shutdown"),
                                           ("samp.hub.disconnect", "disconnect")])
def test_hub_ending_the_connection_is_answered_first(clock, mtype, reason):
    host = StubHost()
    dispatcher, _ = make(clock, host)
    dispatcher.dispatch("hub", "m1", message(mtype))
    assert host.requests == [("reply", "m1", {"samp.status": "samp.ok", "samp.result": {}})]
    assert host.losses == []  # only after the reply went out
    clock.advance(0)
    assert host.losses == [reason]


def test_only_the_hub_may_end_the_connection(clock):
    host = StubHost()
    dispatcher, _ = make(clock, host)
    dispatcher.dispatch("c1", None, message("samp.hub.event.shutdown"))
    clock.advance(0)
    assert host.losses == []


def test_a_wildcard_handler_does_not_see_builtin_mtypes(clock):
    """The library's exact subscriptions are more specific (CLI-CB-6)."""
    host = StubHost()
    dispatcher, handlers = make(clock, host)
    seen: List[str] = []
    handlers.add("samp.*", lambda m: seen.append(m.mtype), None, True)
    dispatcher.dispatch("c1", "m1", message("samp.app.ping"))
    assert seen == []
    assert host.requests[0][2]["samp.status"] == "samp.ok"


def test_builtin_mtypes_include_tracker_events_only_when_tracking():
    assert builtin_mtypes(None) == BUILTIN_MTYPES
    tracked = builtin_mtypes(object())  # type: ignore[arg-type]
    assert set(tracked) == set(BUILTIN_MTYPES) | set(EVENTS)


def test_failed_reply_is_logged_not_raised(clock):
    host = StubHost(refuse=True)
    dispatcher, _ = make(clock, host)
    dispatcher.dispatch("c1", "m1", message("test.nobody"))  # must not raise
    assert len(host.requests) == 1
