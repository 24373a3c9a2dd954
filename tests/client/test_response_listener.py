"""
The low-level call API's listener pair: L{SAMPClient.on_response} sets
the listener of a msg-tag, L{SAMPClient.remove_response_listener} removes
it (later responses to that tag are dropped, not delivered).
"""

from __future__ import annotations

from typing import Any, List

from samptwist.testing import MemoryRig, result_of


def test_on_response_then_remove_response_listener():
    rig = MemoryRig()
    caller = rig.connected("caller")
    echo = rig.connected("echo")
    echo.add_handler("x.echo", lambda message: None)
    rig.settle()
    seen: List[Any] = []
    caller.on_response("tag-1", lambda responder, tag, response: seen.append((responder, tag)))
    result_of(caller.send_call(echo.self_id, "tag-1", {"samp.mtype": "x.echo"}))
    rig.settle()
    assert seen == [(echo.self_id, "tag-1")]

    caller.remove_response_listener("tag-1")
    result_of(caller.send_call(echo.self_id, "tag-1", {"samp.mtype": "x.echo"}))
    rig.settle()
    assert seen == [(echo.self_id, "tag-1")]  # removed: the second response is not delivered
