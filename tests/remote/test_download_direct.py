"""
A download of the remote file server sends each piece of the stream
straight to the client's socket when nothing else waits to be written to it
(no copy, no trip through the event loop), and through Twisted otherwise;
either way the client gets every byte in order, and the pieces (views of a
buffer the link reuses) are never kept.  Real sockets on 127.0.0.1, the
real reactor and twisted.web.
"""

from __future__ import annotations

import os
import socket
from typing import Any, List, Optional

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import deferLater
from twisted.web.server import Site

from samptwist.remote.files import WINDOW, FileServer, Imports
from samptwist.remote.protocol import DATA_CHUNK
from tests.client.hubs import wait_until


class Link:
    """The link's side of a download: one stream, credit recorded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.download: Optional[Any] = None
        self.credit = 0
        self.arrived: Deferred = Deferred()

    def open_remote(self, token: str) -> Deferred:
        return succeed((1, self.size, "application/fits"))

    def receive_stream(self, stream: int, download: Any) -> None:
        self.download = download
        download.grant()
        self.arrived.callback(download)

    def want_stream(self, stream: int, size: int) -> None:
        self.credit += size

    def close_stream(self, stream: int) -> None:
        pass


def serve(size: int) -> Any:
    imports = Imports(reactor)
    imports.incoming("http://127.0.0.1:1/tok/image.fits", 1)
    link = Link(size)
    port = reactor.listenTCP(0, Site(FileServer(imports, lambda: link)), interface="127.0.0.1")
    return link, port


def buffered(download: Any) -> int:
    transport = download.request.channel.transport
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def read_into(got: bytearray, client: socket.socket) -> None:
    """Append what the (non-blocking) client socket has now."""
    try:
        while True:
            piece = client.recv(1 << 20)
            if not piece:
                return
            got.extend(piece)
    except BlockingIOError:
        return


def feed(download: Any, content: bytes, at: int, scratch: bytearray) -> int:
    """One frame's worth, as the link hands it: a view of its reused buffer,
    overwritten as soon as the call returns."""
    piece = content[at:at + DATA_CHUNK]
    scratch[:len(piece)] = piece
    with memoryview(scratch) as view:
        assert download.data([view[:len(piece) // 3], view[len(piece) // 3:len(piece)]]) is None
    scratch[:] = bytes(len(scratch))  # (what a kept view would now show)
    return at + len(piece)


@pytest_twisted.ensureDeferred
async def test_pieces_go_straight_to_an_idle_socket():
    content = os.urandom(6 * DATA_CHUNK + 99)
    link, port = serve(len(content))
    sent: List[int] = []
    try:
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        client.setblocking(False)
        client.sendall(b"GET /tok/image.fits HTTP/1.1\r\nHost: x\r\n\r\n")
        download = await link.arrived
        real = download._send_now
        download._send_now = lambda pieces: sent.append(real(pieces)) or sent[-1]
        got = bytearray()

        def drain() -> None:
            read_into(got, client)

        scratch = bytearray(DATA_CHUNK)
        at = 0
        while at < len(content):
            await wait_until(lambda: buffered(download) == 0, 10, "Twisted's buffer written")
            at = feed(download, content, at, scratch)
            drain()
        assert download.data([b""]) is None  # the end
        for _ in range(1000):  # (10 s at most)
            if b"\r\n\r\n" in got and got.endswith(content[-99:]):
                break
            await deferLater(reactor, 0.01, drain)
        head, body = bytes(got).split(b"\r\n\r\n", 1)
        assert b"200" in head.split(b"\r\n")[0]
        assert body == content
        assert sum(s > 0 for s in sent) >= 5  # all but the first piece (the head) went straight
        assert link.credit >= len(content) and link.credit <= len(content) + 2 * WINDOW
        client.close()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_client_that_reads_late_gets_everything_through_twisted():
    content = os.urandom(12 * DATA_CHUNK)
    link, port = serve(len(content))
    try:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.connect(("127.0.0.1", port.getHost().port))
        client.sendall(b"GET /tok/image.fits HTTP/1.1\r\nHost: x\r\n\r\n")
        download = await link.arrived
        scratch = bytearray(DATA_CHUNK)
        at = 0
        while at < len(content):  # all at once: the socket fills, Twisted keeps the rest
            at = feed(download, content, at, scratch)
        assert buffered(download) > 0
        assert download.data([b""]) is None
        client.setblocking(False)
        got = bytearray()

        def drain() -> None:
            read_into(got, client)

        for _ in range(1000):  # (10 s at most)
            if b"\r\n\r\n" in got and got.endswith(content[-100:]):
                break
            await deferLater(reactor, 0.01, drain)
        head, body = bytes(got).split(b"\r\n\r\n", 1)
        assert body == content
        client.close()
    finally:
        await port.stopListening()
