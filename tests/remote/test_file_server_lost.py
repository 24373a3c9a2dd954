"""
The remote file server when the client that asked for a file goes away
before the other side answers: seen through the public notifyFinish(), not
Twisted's private request._disconnected.
"""

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from samptwist.remote.files import FileServer, Imports
from samptwist.remote.protocol import Refused


class Link:
    def __init__(self) -> None:
        self.opening: Deferred = Deferred()
        self.closed: list = []

    def open_remote(self, token: str) -> Deferred:
        return self.opening

    def close_stream(self, stream: int) -> None:
        self.closed.append(stream)


def _asked(link: Link) -> DummyRequest:
    imports = Imports(Clock())
    imports.incoming("http://127.0.0.1:1/known/x.vot", 1)
    server = FileServer(imports, lambda: link)
    request = DummyRequest([b"known", b"x.vot"])
    assert server.render_GET(request) is NOT_DONE_YET
    request.processingFailed(Failure(ConnectionDone()))  # the client went away
    return request


def test_opened_after_the_client_left_is_closed() -> None:
    link = Link()
    request = _asked(link)
    link.opening.callback((5, 10, "text/xml"))
    assert link.closed == [5]  # the stream is not left open on the other side
    assert request.written == [] and not request.finished


def test_refused_after_the_client_left_writes_nothing() -> None:
    link = Link()
    request = _asked(link)
    link.opening.errback(Refused("no such token"))
    assert request.written == [] and not request.finished and request.responseCode is None
