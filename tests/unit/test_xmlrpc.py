"""
samptwist._xmlrpc: the XML-RPC codec and the method-table dispatch shared
by the hub's resources and the client's callback server.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, List

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.web import xmlrpc as txmlrpc
from twisted.web.test.requesthelper import DummyRequest

from samptwist._xmlrpc import (
    FAILURE,
    NOT_FOUND,
    CallEncoder,
    MethodTable,
    NotXmlRpc,
    Procedure,
    encode_call,
    fault_answer,
    ok_answer,
    parse_answer,
    parse_params,
    write_fault,
)
from samptwist.errors import SAMPHubError


def test_encode_and_parse_round_trip():
    body = encode_call("samp.hub.notify", ("k", "c1", {"samp.mtype": "x", "é": ["1"]}))
    args, method = xmlrpc.client.loads(body)
    assert method == "samp.hub.notify" and args == ("k", "c1", {"samp.mtype": "x", "é": ["1"]})
    assert parse_answer(ok_answer({"a": "b"})) == {"a": "b"}
    with pytest.raises(TypeError):
        encode_call("m", (None,))


def test_parse_answer_errors():
    with pytest.raises(xmlrpc.client.Fault) as e:
        parse_answer(fault_answer(7, "refused"))
    assert (e.value.faultCode, e.value.faultString) == (7, "refused")
    for garbage in (b"", b"<html/>", b"<?xml version='1.0'?><methodResponse><params>"):
        with pytest.raises(NotXmlRpc):
            parse_answer(garbage)
    empty = b"<?xml version='1.0'?><methodResponse><params></params></methodResponse>"
    assert parse_params(empty) == ()
    with pytest.raises(NotXmlRpc, match="0 values"):
        parse_answer(empty)


def test_call_encoder_reuses_the_encoding_and_is_bounded():
    encoder = CallEncoder(max_entries=2)
    message = {"samp.mtype": "x", "samp.params": {"a": "b"}}
    args = ("sender", message)
    one = encoder.encode("samp.client.receiveNotification", "key1", args)
    two = encoder.encode("samp.client.receiveNotification", "key<2>", args)
    assert xmlrpc.client.loads(one) == (("key1", "sender", message),
                                        "samp.client.receiveNotification")
    assert xmlrpc.client.loads(two)[0][0] == "key<2>"  # escaped
    assert len(encoder._encoded) == 1
    for i in range(5):
        encoder.encode("m", "k", (str(i),))
    assert len(encoder._encoded) == 2


class Request(DummyRequest):
    def __init__(self) -> None:
        super().__init__([b""])
        self.method = b"POST"


def test_write_fault():
    request = Request()
    write_fault(request, FAILURE, "no DTDs")
    assert request.finished
    body = b"".join(request.written)
    with pytest.raises(xmlrpc.client.Fault) as e:
        xmlrpc.client.loads(body)
    assert (e.value.faultCode, e.value.faultString) == (FAILURE, "no DTDs")
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/xml; charset=utf-8"]
    assert request.responseHeaders.getRawHeaders(b"content-length") == [b"%d" % len(body)]


class Refusal(Exception):
    code = 42


def table(**procedures: Procedure) -> MethodTable:
    return MethodTable("x.", procedures, "the test endpoint", refusals=(SAMPHubError, Refusal))


def result(value: Any) -> List[Any]:
    out: List[Any] = []
    if isinstance(value, Deferred):
        value.addBoth(out.append)
    else:
        out.append(value)
    return out


def test_unknown_method():
    t = table(m=Procedure(lambda: "", 0, 0))
    for name in ("x.n", "m", "y.m"):
        with pytest.raises(txmlrpc.NoSuchFunction) as e:
            t.lookup(name)
        assert e.value.faultCode == NOT_FOUND and "the test endpoint" in e.value.faultString


@pytest.mark.parametrize("args, want", [((), "takes 1 to 2 argument(s), got 0"),
                                        (("a", "b", "c"), "takes 1 to 2 argument(s), got 3")])
def test_argument_count(args, want):
    t = table(m=Procedure(lambda *a: "", 1, 2))
    fault = t.lookup("x.m")(Request(), *args)
    assert isinstance(fault, xmlrpc.client.Fault)
    assert fault.faultCode == FAILURE and fault.faultString == "x.m " + want


def test_refusals_become_faults_with_their_code():
    def refuse(kind: str) -> Any:
        if kind == "hub":
            raise SAMPHubError("bad key", code=5)
        if kind == "other":
            raise Refusal("nope")
        if kind == "deferred":
            return fail(SAMPHubError("late", code=6))
        raise RuntimeError("a bug")

    t = table(m=Procedure(refuse, 1, 1))
    dispatch = t.lookup("x.m")
    assert dispatch.withRequest
    hub = dispatch(Request(), "hub")
    assert (hub.faultCode, hub.faultString) == (5, "bad key")
    other = dispatch(Request(), "other")
    assert (other.faultCode, other.faultString) == (42, "nope")
    (late,) = result(dispatch(Request(), "deferred"))
    assert (late.faultCode, late.faultString) == (6, "late")
    with pytest.raises(RuntimeError):  # left to twisted.web (logged, generic fault)
        dispatch(Request(), "bug")


def test_with_request_and_results():
    seen = []
    t = table(
        plain=Procedure(lambda a: a.upper(), 1, 1),
        req=Procedure(lambda request, a: seen.append(request) or a, 1, 1, with_request=True),
        later=Procedure(lambda: succeed("done"), 0, 0),
    )
    request = Request()
    assert t.lookup("x.plain")(request, "a") == "A"
    assert t.lookup("x.req")(request, "b") == "b" and seen == [request]
    assert result(t.lookup("x.later")(request)) == ["done"]


@pytest.mark.parametrize("cancel", [True, False])
def test_hangup_cancels_the_wait(cancel):
    waiting: Deferred = Deferred()
    t = table(wait=Procedure(lambda: waiting, 0, 0, cancel_on_hangup=cancel))
    request = Request()
    t.lookup("x.wait")(request)
    request.processingFailed(Exception("the caller hung up"))  # fails notifyFinish()
    assert waiting.called is cancel
    if cancel:
        waiting.addErrback(lambda f: None)
