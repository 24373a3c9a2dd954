"""
The blocking facade's XML-RPC side (samptwist.client.serverproxy): SAMP
encoding of Python values, DTD refusal, the proxy pool, fault mapping.
"""

from __future__ import annotations

import warnings
import xmlrpc.client

import pytest

from samptwist.client import serverproxy
from samptwist.client.serverproxy import ServerProxyPool, safe_xmlrpc_loads, samp_value
from samptwist.errors import SAMPProxyError, SAMPProxyTimeoutError, SAMPValueError, SAMPWarning
from samptwist.samp.utils import get_safe_parser

DTD = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
       b"<methodResponse><params><param><value>&a;</value></param></params></methodResponse>")


@pytest.fixture(autouse=True)
def fresh_reports():
    serverproxy._reported.clear()
    yield
    serverproxy._reported.clear()


def test_samp_values_pass_unchanged_without_warning():
    value = {"a": ["b", {"c": "d"}], "e": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert samp_value(value) == value


def test_python_values_encoded_the_samp_way():
    with pytest.warns(SAMPWarning) as caught:
        got = samp_value({"i": -3, "f": 1e-05, "t": True, "n": False, "tu": ("x", 2)})
    assert got == {"i": "-3", "f": "1e-05", "t": "1", "n": "0", "tu": ["x", "2"]}
    assert len(caught) == 4
    assert "once per type" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second int is not reported again
        assert samp_value(7) == "7"


@pytest.mark.parametrize("bad", [None, b"x", float("inf"), float("nan"), {1: "a"}, object()])
def test_unencodable_values_name_the_place(bad):
    with pytest.raises(SAMPValueError, match="where"):
        samp_value({"k": bad}, "where")


def test_doctype_refused():
    with pytest.raises(ValueError, match="document type"):
        safe_xmlrpc_loads(DTD)
    parser, _ = get_safe_parser()
    with pytest.raises(ValueError, match="document type"):
        parser.feed(DTD)
    plain = xmlrpc.client.dumps(("ok",), methodresponse=True)
    assert safe_xmlrpc_loads(plain) == (("ok",), None)


class FakeProxy:
    made = 0

    def __init__(self, url):
        FakeProxy.made += 1
        self.url = url
        self.closed = False

    class samp:  # noqa: N801 - stands for proxy.samp.hub.<method>
        class hub:  # noqa: N801
            @staticmethod
            def ping(*args):
                return ("pong",) + args

    def __call__(self, attr):
        assert attr == "close"
        return lambda: setattr(self, "closed", True)


def test_pool_borrows_and_shuts_down():
    FakeProxy.made = 0
    pool = ServerProxyPool(3, FakeProxy, "http://h/")
    assert FakeProxy.made == 3
    assert pool.samp.hub.ping("x") == ("pong", "x")
    pool.shutdown()
    assert all(p.closed for p in pool._all)
    with pytest.raises(AttributeError):
        pool._private  # noqa: B018


def test_faults_become_proxy_errors(monkeypatch):
    def fault(self, methodname, params):
        raise xmlrpc.client.Fault(1, "callAndWait timed out after 1s waiting for c2")

    monkeypatch.setattr(xmlrpc.client.ServerProxy, "_ServerProxy__request", fault)
    proxy = serverproxy.SAMPXXEServerProxy("http://127.0.0.1:9/")
    with pytest.raises(SAMPProxyTimeoutError) as caught:
        proxy.samp.hub.callAndWait("k", "c2", {}, "1")
    assert isinstance(caught.value, xmlrpc.client.Fault) and caught.value.faultCode == 1
    with pytest.raises(SAMPProxyError) as other:
        proxy.samp.hub.notify("k", "c2", {})
    assert type(other.value) is SAMPProxyError
    assert str(other.value) == "callAndWait timed out after 1s waiting for c2"
