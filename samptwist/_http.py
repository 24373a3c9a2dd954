"""
HTTP details shared by the hub's sites and the client's callback server:
the tolerant channel, and whether a request can still be answered.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.python.failure import Failure
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


def watch_answerable(request: Any) -> Callable[[], bool]:
    """
    Watch C{request} for the loss of its connection, through the public
    C{notifyFinish()} rather than Twisted's private C{request._disconnected}.

    Call it while rendering: a C{notifyFinish()} Deferred asked for after
    the connection is gone never fires.

    @return: a function telling whether C{request} can still be answered
        (neither finished nor its connection lost).
    """
    lost = False

    def gone(_: Failure) -> None:
        nonlocal lost
        lost = True

    request.notifyFinish().addErrback(gone)
    return lambda: not lost and not request.finished
