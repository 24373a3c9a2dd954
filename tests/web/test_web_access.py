"""
CORS / Private Network Access headers, Host checks (DNS rebinding),
loopback peers and the static paths of the Web Profile site.
"""

import xmlrpc.client

import pytest
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from samptwist._net import web_host_is_allowed as host_is_allowed

from .harness import ORIGIN, Web

PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


@pytest.fixture
def web():
    return Web()


def header(response, name):
    values = response.headers.getRawHeaders(name.encode())
    return values[0].decode() if values else None


def test_preflight(web):
    """WEB-CORS-2, notes 1 and 5: 200, echoed origin, POST, Content-Type, no credentials."""
    response, body = web.request("OPTIONS", "", headers=PREFLIGHT).result
    assert response.code == 200 and body == b""
    assert header(response, "access-control-allow-origin") == ORIGIN
    assert "POST" in header(response, "access-control-allow-methods")
    assert header(response, "access-control-allow-headers").lower() == "content-type"
    assert header(response, "access-control-allow-credentials") is None
    assert header(response, "access-control-allow-private-network") is None


@pytest.mark.parametrize("kind", ["private", "local"])
def test_private_and_local_network_preflight(web, kind):
    """WEB-CORS-3, notes 4: PNA/LNA request headers are answered with allow: true."""
    headers = dict(PREFLIGHT, **{f"Access-Control-Request-{kind.title()}-Network": "true"})
    response, _ = web.request("OPTIONS", "", headers=headers).result
    assert header(response, f"access-control-allow-{kind}-network") == "true"


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://localhost:9",
                                    "https://127.0.0.1:8443", "https://example.org", "null"])
def test_post_echoes_origin(web, origin):
    """WEB-CORS-1, notes 2 and 6: XML-RPC responses carry the request's Origin, never *."""
    body = xmlrpc.client.dumps((), "samp.webhub.ping").encode()
    response, data = web.request("POST", "", body, {"Origin": origin,
                                                    "Content-Type": "text/xml"}).result
    assert response.code == 200
    assert header(response, "access-control-allow-origin") == origin
    assert header(response, "content-type").startswith("text/xml")
    assert xmlrpc.client.loads(data)[0] == ("",)


@pytest.mark.parametrize("origin", ["*", "javascript:alert(1)", "http://a.b/path", "ftp://x"])
def test_malformed_origin_not_echoed(web, origin):
    """WEB-CORS-4: malformed Origin values are not echoed."""
    body = xmlrpc.client.dumps((), "samp.webhub.ping").encode()
    response, _ = web.request("POST", "", body, {"Origin": origin}).result
    assert header(response, "access-control-allow-origin") is None


@pytest.mark.parametrize("host", ["127.0.0.1:21012", "localhost:21012", "LOCALHOST:21012",
                                  "[::1]:21012"])
def test_loopback_hosts_accepted(web, host):
    """Notes 7 and 10: Host 127.0.0.1, localhost and [::1] work."""
    web.root.port = 21012
    assert web.call("ping", headers={"Host": host}) == ""


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "GET"])
@pytest.mark.parametrize("host", ["evil.example:21012", "127.0.0.1.evil.example:21012",
                                  "localhost", "127.0.0.1:21013", ""])
def test_rebinding_host_refused(method, host):
    """Notes 10, DNS rebinding: any other Host gets 403 and no CORS headers (also on
    OPTIONS and translator GET)."""
    web = Web()
    web.root.port = 21012
    path = "translator/t-x?ref=http%3A%2F%2Fa.b%2F" if method == "GET" else ""
    response, body = web.request(method, path, b"<x/>" if method == "POST" else b"",
                                 headers=dict(PREFLIGHT, Host=host)).result
    assert response.code == 403
    assert header(response, "access-control-allow-origin") is None
    assert b"127.0.0.1" in body


def test_host_check_function():
    """Notes 10: no Host header counts as bad; the port must match when known."""
    assert not host_is_allowed(None, 21012)
    assert host_is_allowed(b"127.0.0.1:21012", 21012)
    assert host_is_allowed(b"[::1]:5", None)
    assert not host_is_allowed(b"[::1]:5", 6)
    assert not host_is_allowed(b"127.0.0.2:21012", 21012)


def test_non_loopback_peer_refused(web):
    """WEB-HTTP-2: a request from another machine gets 403, no CORS headers."""
    request = DummyRequest([b""])
    request.client = IPv4Address("TCP", "192.168.1.20", 5000)
    request.requestHeaders.setRawHeaders(b"host", [b"127.0.0.1:21012"])
    request.requestHeaders.setRawHeaders(b"origin", [ORIGIN.encode()])
    child = web.root.getChildWithDefault(b"", request)
    assert child.render(request).startswith(b"Forbidden")
    assert request.responseCode == 403
    assert request.responseHeaders.getRawHeaders(b"access-control-allow-origin") is None


def test_legacy_policy_files_not_served_by_default(web):
    """Notes 21 (WEB-XDOM-1 overridden): no allow-all Flash/Silverlight policies."""
    for path in ("crossdomain.xml", "clientaccesspolicy.xml"):
        response, _ = web.request("GET", path).result
        assert response.code == 404


def test_legacy_policy_files_on_request():
    """WEB-XDOM-1: served only when configured (legacy_policies=True)."""
    web = Web(legacy_policies=True)
    response, body = web.request("GET", "crossdomain.xml").result
    assert response.code == 200 and b"cross-domain-policy" in body
    assert header(response, "content-type") == "text/x-cross-domain-policy"
    response, body = web.request("GET", "clientaccesspolicy.xml").result
    assert response.code == 200 and b"access-policy" in body


def test_javascript_client_served(web):
    """The shipped JS client is served at /samptwist-web.js."""
    response, body = web.request("GET", "samptwist-web.js").result
    assert response.code == 200
    assert header(response, "content-type").startswith("text/javascript")
    assert b"samp.webhub." in body and b"SampTwist" in body


def test_get_root_and_unknown_path(web):
    """WEB-XDOM-2: GET / explains itself; unknown paths are 404."""
    response, body = web.request("GET", "").result
    assert response.code == 200 and b"Web Profile" in body
    response, _ = web.request("GET", "nothing-here").result
    assert response.code == 404


def test_rpc2_is_the_endpoint_too(web):
    """Python's xmlrpc.client posts to /RPC2 when given http://127.0.0.1:21012 (pyvo's own
    Web Profile test client does): it reaches the same endpoint, with the same checks."""
    body = xmlrpc.client.dumps((), "samp.webhub.ping").encode()
    response, data = web.request("POST", "RPC2", body, {"Content-Type": "text/xml"}).result
    assert response.code == 200 and xmlrpc.client.loads(data)[0] == ("",)
    response, _ = web.request("POST", "RPC2", body, {"Host": "evil.example"}).result
    assert response.code == 403
