"""
The plain web pages of the hub's Standard Profile site: a short description
at C{/} and the hub's icon.
"""

from __future__ import annotations

from html import escape
from typing import Any

from twisted.web.resource import Resource

from .core import Hub

ICON = b"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<circle cx="32" cy="32" r="30" fill="#1d3557"/>
<path d="M14 40 Q32 8 50 24" stroke="#f1faee" stroke-width="5" fill="none"/>
<circle cx="14" cy="40" r="6" fill="#e63946"/><circle cx="50" cy="24" r="6" fill="#a8dadc"/>
</svg>"""


class Icon(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"image/svg+xml")
        request.setHeader(b"cache-control", b"max-age=86400")
        return ICON


class HubRoot(Resource):
    """
    C{/}: what this server is (no secrets, no client details).
    """

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.putChild(b"icon.svg", Icon())

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return super().getChild(path, request)

    def render_GET(self, request: Any) -> bytes:
        name = escape(str(self.hub.hub_client.metadata.get("samp.name", "SAMP hub")))
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return (
            f"<!doctype html><title>{name}</title><h1>{name}</h1>"
            "<p>This is a SAMP hub (Simple Application Messaging Protocol 1.3, "
            "Standard Profile). SAMP clients find it through the lockfile; "
            "its XML-RPC endpoint is <code>/xmlrpc</code>.</p>"
            "<p>Its live status page is <code>/status?key=...</code>: the hub logs the "
            "full URL when it starts, and <code>samptwist clients --status-url</code> "
            "prints it.</p>"
        ).encode()
