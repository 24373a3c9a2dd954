"""
A minimal asyncio XML-RPC client (persistent HTTP/1.1 connections) and
callback server for the benchmark driver.

Both avoid everything a benchmark driver does not need: the client keeps one
connection per instance and reconnects only when the server closes it; the
server answers every request with a fixed empty-string result and extracts
what it needs with regular expressions instead of parsing the XML (except for
C{samp.client.receiveCall}, whose msg-id is needed for the reply).
"""

from __future__ import annotations

import asyncio
import re
import xmlrpc.client
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

EMPTY_RESPONSE = (
    b"<?xml version='1.0'?><methodResponse><params><param><value><string></string>"
    b"</value></param></params></methodResponse>"
)
METHOD_RE = re.compile(rb"<methodName>\s*([^<\s]+)\s*</methodName>")
#: benchmark messages carry C{samp.params.bench = "K:T"} (message number, send time)
TAG_RE = re.compile(rb"<name>bench</name>\s*<value>\s*(?:<string>)?\s*(\d+):([\d.]+)")
TAG_WIDTH = 40


class RpcError(Exception):
    """An HTTP-level failure (not an XML-RPC fault)."""


def tag(k: int, t: float) -> str:
    """@return: the fixed-width C{bench} parameter for message C{k} sent at C{t}."""
    return f"{k}:{t:.6f}".ljust(TAG_WIDTH)


_PLACEHOLDER = "#" * TAG_WIDTH


class Template:
    """
    A pre-serialised XML-RPC request whose C{bench} tag is filled in per send
    (so serialisation cost, e.g. of a 10 MB parameter, is paid once).
    """

    def __init__(self, method: str, params: tuple) -> None:
        body = xmlrpc.client.dumps(params, method, encoding="utf-8").encode("utf-8")
        self.parts = body.split(_PLACEHOLDER.encode())
        if len(self.parts) < 2:
            raise ValueError("template params must contain benchmarks.rpc.PLACEHOLDER")

    def fill(self, k: int, t: float) -> Tuple[bytes, ...]:
        """@return: the request body in chunks, every placeholder replaced."""
        value = tag(k, t).encode()
        out = [self.parts[0]]
        for part in self.parts[1:]:
            out.append(value)
            out.append(part)
        return tuple(out)


PLACEHOLDER = _PLACEHOLDER


async def read_message(reader: asyncio.StreamReader) -> Tuple[bytes, Dict[bytes, bytes], bytes]:
    """
    Read one HTTP message (request or response).

    @return: (start line, lower-cased headers, body).
    """
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers: Dict[bytes, bytes] = {}
    for line in lines[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif lines[0].startswith(b"HTTP/"):
        body = await reader.read()  # until the server closes
    else:
        body = b""
    return lines[0], headers, body


def keeps_alive(start: bytes, headers: Dict[bytes, bytes]) -> bool:
    connection = headers.get(b"connection", b"").lower()
    if start.startswith(b"HTTP/1.0") or start.endswith(b"HTTP/1.0"):
        return b"keep-alive" in connection
    return b"close" not in connection


class AsyncRpc:
    """
    An XML-RPC client on one persistent connection (one request at a time).
    """

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        path = parts.path or "/"
        self.timeout = timeout
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: text/xml\r\nUser-Agent: samptwist-bench\r\nContent-Length: "
        ).encode()
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self.connects = 0

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self.connects += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def post(self, *chunks: bytes) -> bytes:
        """
        POST the concatenation of C{chunks}; retry once on a stale connection.

        @return: the response body.
        """
        length = sum(len(c) for c in chunks)
        for attempt in (0, 1):
            fresh = self._writer is None
            if fresh:
                await self._connect()
            assert self._reader is not None and self._writer is not None
            try:
                self._writer.write(self._head + str(length).encode() + b"\r\n\r\n")
                for c in chunks:
                    self._writer.write(c)
                if length > 65536:
                    await self._writer.drain()
                start, headers, body = await asyncio.wait_for(
                    read_message(self._reader), self.timeout
                )
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                self.close()
                if fresh or attempt:
                    raise RpcError(f"connection failed: {e}") from None
                continue
            except BaseException:
                self.close()
                raise
            if not keeps_alive(start, headers):
                self.close()
            if b" 200" not in start:
                raise RpcError(start.decode("latin-1"))
            return body
        raise AssertionError("unreachable")

    async def call(self, method: str, *params: Any) -> Any:
        """@return: the result, or raise L{xmlrpc.client.Fault}."""
        body = xmlrpc.client.dumps(params, method, encoding="utf-8", allow_none=False)
        answer = await self.post(body.encode("utf-8"))
        return xmlrpc.client.loads(answer)[0][0]


Handler = Callable[[bytes, bytes], Awaitable[bytes]]


async def serve(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    """
    Serve XML-RPC over HTTP/1.1 with keep-alive; C{handler(path, body)}
    returns the response body.
    """

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    start, headers, body = await read_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    break
                parts = start.split()
                path = parts[1] if len(parts) > 1 else b"/"
                answer = await handler(path, body)
                keep = keeps_alive(start, headers)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
                    + str(len(answer)).encode()
                    + (b"\r\n\r\n" if keep else b"\r\nConnection: close\r\n\r\n")
                    + answer
                )
                if not keep:
                    await writer.drain()
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass  # a peer hung up, or the loop is shutting down
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port, limit=1 << 16, backlog=1024)
