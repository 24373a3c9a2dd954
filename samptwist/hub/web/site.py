"""
The Web Profile's HTTP site: every request passes the loopback-peer and
Host checks first (WEB-HTTP-2, notes 10-11), then CORS preflights are
answered for any path and CORS headers added to every other response.

Paths:

  - C{/}: the XML-RPC endpoint (L{WebProfile}), also at C{/RPC2};
  - C{/translator/TOKEN?ref=URL}: the URL translator;
  - C{/samptwist-web.js}: the JavaScript client shipped with samptwist;
  - C{/crossdomain.xml}, C{/clientaccesspolicy.xml}: 404 unless legacy
    policy files were asked for (notes 21: they only widen access).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Optional

from twisted.logger import LogLevel
from twisted.web.resource import Resource

from ..._log import Logger, get_level
from ..._net import peer_is_loopback, web_host_is_allowed
from ..httpguard import GuardedSite
from .access import add_cors, answer_preflight
from .profile import WebProfile
from .translator import Translator

CROSSDOMAIN = b"""<?xml version="1.0"?>
<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd">
<cross-domain-policy>
  <site-control permitted-cross-domain-policies="master-only"/>
  <allow-access-from domain="*"/>
  <allow-http-request-headers-from domain="*" headers="*"/>
</cross-domain-policy>
"""

CLIENTACCESSPOLICY = b"""<?xml version="1.0" encoding="utf-8"?>
<access-policy>
  <cross-domain-access>
    <policy>
      <allow-from http-request-headers="*"><domain uri="*"/></allow-from>
      <grant-to><resource path="/" include-subpaths="true"/></grant-to>
    </policy>
  </cross-domain-access>
</access-policy>
"""

JS_NAME = "samptwist-web.js"


@functools.lru_cache(maxsize=1)
def javascript_client() -> bytes:
    """
    @return: the source of the shipped JavaScript Web Profile client.
    """
    return resources.files(__package__).joinpath("static", JS_NAME).read_bytes()


class _Fixed(Resource):
    isLeaf = True

    def __init__(self, body: bytes, kind: bytes, cache: bool = True) -> None:
        super().__init__()
        self.body = body
        self.kind = kind
        self.cache = cache

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", self.kind)
        if self.cache:
            request.setHeader(b"cache-control", b"max-age=300")
        return self.body


class _Refusal(Resource):
    isLeaf = True

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, request: Any) -> bytes:
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (self.text + "\n").encode("utf-8")


class _Preflight(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return answer_preflight(request)


class WebRoot(Resource):
    """
    The site's root.  Every request passes its checks first: non-loopback
    peers and non-loopback Host headers get 403 and no CORS headers; then
    preflights are answered for any path and CORS headers added to every
    other response.  C{/} is the XML-RPC endpoint, other paths are children.

    @ivar port: the listening port, for the Host check (C{None}: any).
    """

    log = Logger()

    def __init__(
        self, profile: WebProfile, translator: Translator, legacy_policies: bool = False
    ) -> None:
        super().__init__()
        self.profile = profile
        self.port: Optional[int] = None
        self.putChild(b"translator", translator)
        self.putChild(
            JS_NAME.encode(), _Fixed(javascript_client(), b"text/javascript; charset=utf-8")
        )
        if legacy_policies:
            self.putChild(
                b"crossdomain.xml", _Fixed(CROSSDOMAIN, b"text/x-cross-domain-policy")
            )
            self.putChild(b"clientaccesspolicy.xml", _Fixed(CLIENTACCESSPOLICY, b"text/xml"))

    def getChildWithDefault(self, path: bytes, request: Any) -> Resource:
        if not peer_is_loopback(request.getClientAddress()):
            self.log.warn(
                "Web Profile refused a request from non-local address {peer}",
                peer=getattr(request.getClientAddress(), "host", "?"),
            )
            return _Refusal("Forbidden: the SAMP Web Profile only serves this machine")
        host = request.getHeader(b"host")
        if not web_host_is_allowed(host, self.port):
            self.log.warn(
                "Web Profile refused a request with Host header {host} (possible DNS "
                "rebinding attack)",
                host=ascii((host or b"(none)").decode("latin-1"))[:100],
            )
            return _Refusal(
                "Forbidden: the SAMP Web Profile answers only to 127.0.0.1, localhost or [::1]"
            )
        request.setHeader(b"x-content-type-options", b"nosniff")
        if request.method == b"OPTIONS":
            return _Preflight()
        add_cors(request)
        if path in (b"", b"RPC2"):
            # /RPC2: where Python's xmlrpc.client posts when given the bare
            # http://localhost:21012 address.
            return self.profile
        return super().getChildWithDefault(path, request)

    def render(self, request: Any) -> bytes:
        # Only reached for a request without any path (not sent by browsers).
        return _Refusal("Forbidden").render(request)


class WebProfileSite(GuardedSite):
    """
    The Web Profile's site (its L{WebRoot} does the checks): request lines
    logged only at debug level and without URLs.
    """

    log_ = Logger()

    def log(self, request: Any) -> None:
        if get_level() == LogLevel.debug:
            # No URI: translator paths hold a client's token.
            self.log_.debug(
                "{method} {code}",
                method=request.method.decode("ascii", "replace"),
                code=request.code,
            )
