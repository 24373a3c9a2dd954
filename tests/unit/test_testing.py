"""
samptwist.testing, the test doubles shipped for users: the in-memory hub
(MemoryRig) is a real hub core behind an in-memory network, driven by one
clock; docs/testing.md's example runs as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.internet.defer import CancelledError, TimeoutError
from twisted.internet.task import Clock

import samptwist.testing
from samptwist.client import HubUnreachable, SAMPClient
from samptwist.hub.core import Hub
from samptwist.testing import MemoryRig, failure_of, post_to_resource, result_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def test_documented_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/testing.md has no python example"
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "docs_testing"})


def test_public_names():
    assert sorted(samptwist.testing.__all__) == [
        "MemoryHub", "MemoryNetwork", "MemoryRig", "RecordingTarget", "failure_of",
        "post_to_resource", "result_of",
    ]
    for name in samptwist.testing.__all__:
        assert getattr(samptwist.testing, name) is not None


def test_rig_is_a_real_hub_core_and_real_clients():
    rig = MemoryRig()
    assert isinstance(rig.hub.hub, Hub)
    client = rig.connected("alpha")
    assert isinstance(client, SAMPClient)
    assert rig.hub.hub.client_by_id(client.self_id).metadata["samp.name"] == "alpha"
    assert client.hub_id == rig.hub.hub.hub_client.public_id


def test_timeouts_run_on_the_rigs_clock():
    rig = MemoryRig()
    caller = rig.connected("caller")
    mute = rig.connected("mute")
    mute.add_handler("x.hold", lambda message: None, auto_reply=False)
    rig.settle()
    d = caller.call(mute.self_id, "x.hold", timeout=30)
    rig.advance(29)
    assert not d.called
    rig.advance(1)
    assert failure_of(d).check(TimeoutError)


def test_an_injected_clock():
    """Any clock with the reactor interfaces a client uses may be given;
    here the default MemoryReactorClock's parent class is enough for the
    hub, and the rig keeps the one it was given."""
    clock = Clock()
    rig = MemoryRig(clock)  # type: ignore[arg-type]
    assert rig.reactor is clock
    client = rig.connected("alpha")
    assert client.is_connected


def test_two_hubs_on_one_network():
    rig = MemoryRig()
    first = rig.hub
    a = rig.connected("a")
    second = rig.new_hub()
    b = rig.connected("b")
    assert first.url != second.url and first.secret != second.secret
    assert a.self_id in {c.public_id for c in first.hub.clients}
    assert b.self_id in {c.public_id for c in second.hub.clients}
    assert b.hub_info is not None and b.hub_info.url == second.url
    assert a.hub_info is not None and a.hub_info.url == first.url


def test_unknown_url_refuses():
    rig = MemoryRig()
    d = rig.network.post("http://nowhere.invalid/", b"")
    assert failure_of(d).check(HubUnreachable)
    client = rig.client("lost", hub_url="http://nowhere.invalid/", secret="x")
    d = client.connect()
    rig.settle()
    assert failure_of(d).check(HubUnreachable)


def test_hanging_hub_never_answers():
    rig = MemoryRig()
    rig.network.hanging.add(rig.hub.url)
    client = rig.client("patient", hub_timeout=5)
    d = client.connect()
    rig.advance(4)
    assert not d.called
    rig.advance(1)
    assert d.called
    failure_of(d)


def test_post_to_resource_renders_in_memory():
    rig = MemoryRig()
    body = b"<?xml version='1.0'?><methodCall><methodName>samp.hub.ping</methodName>" \
        b"<params></params></methodCall>"
    answer = result_of(post_to_resource(rig.hub.profile, body))
    assert b"<methodResponse>" in answer


def test_result_of_and_failure_of_refuse_pending_deferreds():
    rig = MemoryRig()
    rig.network.hanging.add(rig.hub.url)
    d = rig.network.post(rig.hub.url, b"")
    with pytest.raises(AssertionError):
        result_of(d)
    with pytest.raises(AssertionError):
        failure_of(d)
    d.cancel()
    assert failure_of(d).check(CancelledError)
