"""
Helpers for tests that talk to a real hub over loopback sockets.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from twisted.internet import defer, reactor, task
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.web import server, xmlrpc

from samptwist.hub.service import HubService


def proxy(url: str) -> xmlrpc.Proxy:
    return xmlrpc.Proxy(url.encode(), allowNone=False)


def deferLater(seconds: float) -> Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


class Recorder(xmlrpc.XMLRPC):
    """
    A client's callback server: records samp.client.* calls; each event fires
    the Deferreds waiting for it.  Set C{hang} to never answer, C{on_call} to
    react to receiveCall.
    """

    def __init__(self) -> None:
        super().__init__(allowNone=False)
        self.calls: List[tuple] = []
        self.waiters: List[tuple] = []
        self.hang = False
        self.on_call: Optional[Any] = None
        self.hung: List[Deferred] = []

    def lookupProcedure(self, path: str) -> Any:
        def record(*args: Any) -> Any:
            self.calls.append((path.rsplit(".", 1)[-1],) + args[1:])
            for waiter in list(self.waiters):
                if waiter[0](self.calls[-1]):
                    self.waiters.remove(waiter)
                    waiter[1].callback(self.calls[-1])
            if path.endswith("receiveCall") and self.on_call is not None:
                self.on_call(*args[1:])
            if self.hang:
                d: Deferred = Deferred()
                self.hung.append(d)
                return d
            return ""

        return record

    def wait_for(self, predicate: Any, timeout: float = 10) -> Deferred:
        for call in self.calls:
            if predicate(call):
                return defer.succeed(call)
        d: Deferred = Deferred()
        self.waiters.append((predicate, d))
        d.addTimeout(timeout, reactor)
        return d

    def mtypes(self) -> List[str]:
        return [c[-1]["samp.mtype"] for c in self.calls if c[0] != "receiveResponse"]


class Participant:
    """A registered client with an optional callback server."""

    def __init__(self, hub_url: str) -> None:
        self.hub = proxy(hub_url)
        self.recorder = Recorder()
        self.port: Any = None
        self.key = ""
        self.id = ""

    async def register(self, secret: str, callable: bool = True,
                       subs: Optional[Dict[str, Any]] = None, name: str = "") -> Participant:
        reg = await self.hub.callRemote("samp.hub.register", secret)
        self.key, self.id = reg["samp.private-key"], reg["samp.self-id"]
        if name:
            await self.call("declareMetadata", {"samp.name": name})
        if callable:
            self.port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
                server.Site(self.recorder)
            )
            url = f"http://127.0.0.1:{self.port.getHost().port}/"
            await self.call("setXmlrpcCallback", url)
        if subs is not None:
            await self.call("declareSubscriptions", subs)
        return self

    def call(self, method: str, *args: Any) -> Deferred:
        return self.hub.callRemote("samp.hub." + method, self.key, *args)

    async def close(self) -> None:
        for d in self.recorder.hung:
            if not d.called:
                d.callback("")
        if self.port is not None:
            await self.port.stopListening()
            self.port = None


async def start_hub(tmp_path: Any, **kw: Any) -> HubService:
    service = HubService(reactor, lockfile=tmp_path / "lock", **kw)
    service.startService()
    await service.ready
    return service
