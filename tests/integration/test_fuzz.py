"""
Fuzzing a running hub (issue 8): hypothesis throws generated hostile
XML-RPC requests at a hub subprocess, which must answer each with an HTTP
response carrying XML-RPC (a result or a readable fault), then still serve a
normal round trip.
"""

import http.client
import xmlrpc.client
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.peers import running_hub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("fuzz"), "--log-level", "warn") as hub:
        yield hub


def post(url, body):
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("POST", parsed.path, body, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
methods = st.sampled_from(
    ["samp.hub.register", "samp.hub.notifyAll", "samp.hub.reply", "samp.hub.ping",
     "samp.hub.declareSubscriptions", "samp.hub.callAndWait", "samp.hub.setXmlrpcCallback",
     "samp.hub.getSubscribedClients", "system.multicall", "x.y"]
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=300).map(str.encode),
    st.tuples(methods, st.lists(values, max_size=4)).map(
        lambda t: xmlrpc.client.dumps(tuple(t[1]), t[0], allow_none=True).encode()
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies)
def test_fuzz(fuzz_hub, body):
    code, answer = post(fuzz_hub.url, body)
    assert code == 200
    try:
        xmlrpc.client.loads(answer)
    except xmlrpc.client.Fault as f:
        assert f.faultString and f.faultString != "error"


def test_round_trip_after_fuzz(fuzz_hub):
    hub = xmlrpc.client.ServerProxy(fuzz_hub.url)
    reg = hub.samp.hub.register(fuzz_hub.secret)
    key = reg["samp.private-key"]
    response = hub.samp.hub.callAndWait(key, "hub", {"samp.mtype": "samp.app.ping"}, "5")
    assert response["samp.status"] == "samp.ok"
    hub.samp.hub.unregister(key)
    assert fuzz_hub.proc.poll() is None
