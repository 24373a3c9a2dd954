"""
samptwist._xmlrpc's quick reader (C{loads}) and writer (C{marshal_params})
give exactly what xmlrpc.client gives, values and errors alike (issue 16:
they replace it on the hub's hot path).
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samptwist import _xmlrpc
from samptwist._xmlrpc import Fault, loads, marshal_params, result_answer

# SAMP values: strings (any XML character), lists and maps of them
xml_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\ufffe\uffff")
    .filter(lambda c: c in "\t\n" or ord(c) >= 0x20),
    max_size=12,
)
samp_values = st.recursive(
    xml_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(xml_text, inner, max_size=4),
    max_leaves=12,
)


def reference(body: bytes) -> Tuple[str, Any]:
    """What xmlrpc.client makes of C{body}: a value or an exception type."""
    try:
        return "value", xmlrpc.client.loads(body, use_builtin_types=False)
    except Exception as e:
        return "error", type(e)


def ours(body: bytes) -> Tuple[str, Any]:
    try:
        return "value", loads(body)
    except Exception as e:
        return "error", type(e)


@settings(max_examples=300, deadline=None)
@given(st.lists(samp_values, max_size=4), st.sampled_from(["samp.hub.notify", "a", "x.y_z"]))
def test_requests_read_as_xmlrpc_client_reads_them_and_quickly(params, method):
    body = xmlrpc.client.dumps(tuple(params), method).encode("utf-8")
    assert _xmlrpc._quick_loads(body) is not None  # this is the quick path's ground
    assert loads(body) == xmlrpc.client.loads(body)


@settings(max_examples=200, deadline=None)
@given(samp_values)
def test_responses_read_as_xmlrpc_client_reads_them(value):
    body = xmlrpc.client.dumps((value,), methodresponse=True).encode("utf-8")
    assert loads(body) == xmlrpc.client.loads(body)


@settings(max_examples=300, deadline=None)
@given(samp_values, st.integers(0, 400), st.sampled_from(
    ["", "<", ">", "/", "&", "&amp;", "&#0;", "&#x41;", "<value>", "</value>", "<string/>",
     "<!-- c -->", "<![CDATA[x]]>", "\r", "\x01", " ", "<int>1</int>", "<?pi?>", "\xe9"]
))
def test_damaged_documents_get_the_same_value_or_error(value, at, insert):
    body = xmlrpc.client.dumps(("key", value), "samp.hub.notify")
    at = min(at, len(body))
    damaged = (body[:at] + insert + body[at:]).encode("utf-8")
    assert ours(damaged) == reference(damaged)


@pytest.mark.parametrize("body", [
    # layouts other writers use: untyped and empty values, spacing, entities
    b"<?xml version='1.0'?><methodCall><methodName>m</methodName><params><param><value>"
    b"plain &amp; simple</value></param><param><value/></param><param><value><string/>"
    b"</value></param></params></methodCall>",
    b'<?xml version="1.0" encoding="UTF-8"?>\n<methodCall>\n  <methodName>m</methodName>\n'
    b"  <params>\n    <param>\n      <value>\n        <struct>\n          <member>\n"
    b"            <name>k</name>\n            <value><string>&#x263A;&#9731;&lt;</string>"
    b"</value>\n          </member>\n        </struct>\n      </value>\n    </param>\n"
    b"  </params>\n</methodCall>\n",
    b"<methodCall><methodName>m</methodName></methodCall>",
    b"<methodCall><methodName>m</methodName><params/></methodCall>",
    b"<methodResponse><params><param><value><array><data/></array></value></param></params>"
    b"</methodResponse>",
    # left to xmlrpc.client, same outcome
    b"<methodResponse><params><param><value><int>7</int></value></param></params>"
    b"</methodResponse>",
    b"<methodCall><methodName>m</methodName><params><param><value><string><![CDATA[<x>]]>"
    b"</string></value></param></params></methodCall>",
    b"<?xml version='1.0' encoding='iso-8859-1'?><methodCall><methodName>\xe9</methodName>"
    b"</methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value><string>a</string><string>"
    b"b</string></value></param></params></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value><struct><member><name>a"
    b"</name></member></struct></value></param></params></methodCall>",
    b"",
    b"not xml",
    b"<methodCall><methodName>m</methodName><params><param><value>x</value></param>",
    b"<methodResponse><params/></methodResponse> trailing",
    b"<methodCall><methodName>m</methodName><params><param><value><string>&bogus;</string>"
    b"</value></param></params></methodCall>",
])
def test_other_layouts_and_errors(body):
    assert ours(body) == reference(body)


def test_faults_are_raised():
    body = _xmlrpc.fault_answer(3, "no")
    with pytest.raises(Fault) as e:
        loads(body)
    assert (e.value.faultCode, e.value.faultString) == (3, "no")


def test_deep_values_are_left_to_xmlrpc_client():
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    body = xmlrpc.client.dumps((deep,), "m").encode()
    assert _xmlrpc._quick_loads(body) is None
    assert loads(body) == xmlrpc.client.loads(body)


def test_string_answers_are_remembered_and_bounded(monkeypatch):
    monkeypatch.setattr(_xmlrpc, "_REMEMBERED", {})
    body = _xmlrpc.ok_answer("")
    first = loads(body)
    assert loads(body) is first  # read once
    mutable = _xmlrpc.ok_answer(["a"])
    assert loads(mutable) is not loads(mutable)  # a list could be changed by its taker
    for i in range(_xmlrpc._REMEMBER_COUNT + 10):
        loads(_xmlrpc.ok_answer(str(i)))
    assert len(_xmlrpc._REMEMBERED) == _xmlrpc._REMEMBER_COUNT
    big = _xmlrpc.ok_answer("x" * _xmlrpc._REMEMBER_SIZE)
    loads(big)
    assert big not in _xmlrpc._REMEMBERED


@settings(max_examples=300, deadline=None)
@given(st.lists(samp_values, max_size=4))
def test_marshal_writes_what_the_marshaller_writes(params):
    want = xmlrpc.client.Marshaller("utf-8", allow_none=False).dumps(tuple(params))
    assert marshal_params(params) == want


@pytest.mark.parametrize("params", [(1, "a"), (True,), ({"k": 2.5},), (b"bytes",), ("a", [None])])
def test_marshal_leaves_other_types_to_the_marshaller(params):
    marshaller = xmlrpc.client.Marshaller("utf-8", allow_none=False)
    try:
        want: Any = marshaller.dumps(params)
    except TypeError:
        with pytest.raises(TypeError):
            marshal_params(params)
        return
    assert marshal_params(params) == want


def test_marshal_refuses_recursive_values():
    loop: list = []
    loop.append(loop)
    with pytest.raises(TypeError):
        marshal_params((loop,))


@settings(max_examples=200, deadline=None)
@given(samp_values)
def test_answers_are_written_as_xmlrpc_client_writes_them(value):
    want = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False).encode()
    assert result_answer(value) == want


@pytest.mark.parametrize("value", [None, 1.5, object()])
def test_answers_that_cannot_be_encoded_are_faults(value):
    body = result_answer(value)
    if isinstance(value, float):
        assert loads(body) == ((1.5,), None)
    else:
        with pytest.raises(Fault) as e:
            loads(body)
        assert "Can't serialize output" in e.value.faultString
