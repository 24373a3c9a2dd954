"""
The CORS headers browsers need (WEB-CORS-*, notes 1-6) and the Host name
a checked request used.  Who may talk to the Web Profile at all (loopback
peers only, WEB-HTTP-2; loopback C{Host} headers only, notes 10) is decided
by L{samptwist._net.peer_is_loopback} and
L{samptwist._net.web_host_is_allowed}, which the site calls.
"""

from __future__ import annotations

from typing import Any, Optional

from .consent import normalize_origin


def request_host_name(request: Any) -> str:
    """
    @return: the host name of an (already checked) request's Host header,
        for building URLs the same page can fetch (notes 7).
    """
    host = (request.getHeader(b"host") or b"127.0.0.1").decode("ascii").lower()
    return host.rpartition(":")[0] or "127.0.0.1"


def acceptable_origin(origin: Optional[bytes]) -> Optional[bytes]:
    """
    @return: the Origin header to echo in C{Access-Control-Allow-Origin}, or
        C{None} if there is none or it is malformed (WEB-CORS-4).  C{null}
        (file: pages, sandboxed frames) is echoed: such pages can still do
        nothing without the user's consent, which marks them as unknown.
    """
    if not origin:
        return None
    try:
        text = origin.decode("ascii")
    except UnicodeDecodeError:
        return None
    if text == "null" or (normalize_origin(text) is not None and not text.endswith("/")):
        return origin
    return None


def add_cors(request: Any) -> None:
    """
    Add C{Access-Control-Allow-Origin} (the request's own Origin, never
    C{*}) and C{Vary: Origin} to the response, if the Origin is acceptable.
    No C{Access-Control-Allow-Credentials} (notes 5).
    """
    origin = acceptable_origin(request.getHeader(b"origin"))
    request.setHeader(b"vary", b"Origin")
    if origin is not None:
        request.setHeader(b"access-control-allow-origin", origin)


def answer_preflight(request: Any) -> bytes:
    """
    Answer a CORS preflight (C{OPTIONS}): 200 with an empty body, allowing
    POST and GET with a C{Content-Type} header from the requesting origin,
    and Private/Local Network Access if asked (WEB-CORS-2/3, notes 1 and 4).
    """
    add_cors(request)
    request.setHeader(b"access-control-allow-methods", b"POST, GET")
    request.setHeader(b"access-control-allow-headers", b"Content-Type")
    request.setHeader(b"access-control-max-age", b"600")
    if (request.getHeader(b"access-control-request-private-network") or b"").lower() == b"true":
        request.setHeader(b"access-control-allow-private-network", b"true")
    if (request.getHeader(b"access-control-request-local-network") or b"").lower() == b"true":
        request.setHeader(b"access-control-allow-local-network", b"true")
    request.setHeader(b"content-length", b"0")
    request.setResponseCode(200)
    return b""
