"""
HTTP details shared by the hub's sites and the client's callback server.
"""

from __future__ import annotations

from twisted.web import http


class TolerantHTTPChannel(http.HTTPChannel):
    """
    An HTTP channel that also accepts request lines and headers ended by a
    bare LF, as RFC 9112 allows a server to: SAOImage DS9's SAMP code sends
    such requests, and Twisted's channel (CRLF only) would wait forever for
    the end of their header.
    """

    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        super().lineReceived(line)
