"""
An in-memory SAMP network for unit tests: our hub's Standard Profile
resource and the clients' callback resources, wired together by URL without
sockets, all driven by a L{MemoryReactorClock}.

L{MemoryNetwork} is both the clients' L{IPoster} and the hub's callback
caller; requests are rendered directly with twisted.web's DummyRequest.
"""

from __future__ import annotations

import itertools
import xmlrpc.client
from io import BytesIO
from typing import Any, Dict, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from samptwist.client import SAMPClient
from samptwist.client.errors import HubUnreachable
from samptwist.hub.callbacks import DeliveryFailed
from samptwist.hub.core import Hub
from samptwist.hub.standard import StandardProfile
from samptwist.lockfile import LockInfo, format_lockfile


def render(resource: Any, body: bytes) -> Deferred:
    """
    POST C{body} to C{resource} in memory.

    @return: a L{Deferred} firing with the answer's body; cancelling it
        looks to the resource like the connection being dropped.
    """
    request = DummyRequest([b""])
    request.method = b"POST"
    request.content = BytesIO(body)

    def cancel(_: Deferred) -> None:
        if request._finishedDeferreds is not None:
            request.processingFailed(Failure(ConnectionDone("cancelled")))

    d: Deferred = Deferred(cancel)

    def finished(_: Any) -> None:
        if not d.called:
            d.callback(b"".join(request.written))

    request.notifyFinish().addCallbacks(finished, lambda f: None)
    result = resource.render(request)
    if result is not NOT_DONE_YET and not d.called:
        d.callback(result)
    return d


class MemoryNetwork:
    """
    URLs to resources.  As an L{IPoster} it lets clients reach hubs; as the
    hub's callback caller it lets hubs reach clients.
    """

    def __init__(self) -> None:
        self.resources: Dict[str, Any] = {}
        self.hanging: set = set()

    # IPoster
    def post(self, url: str, body: bytes) -> Deferred:
        if url in self.hanging:
            return Deferred(lambda d: None)
        resource = self.resources.get(url)
        if resource is None:
            d: Deferred = Deferred()
            d.errback(HubUnreachable(f"connection refused: {url}"))
            return d
        return render(resource, body)

    def close(self) -> Deferred:
        return succeed(None)

    # the hub's CallbackCaller
    reactor: Any = None
    timeout = 30.0

    def encode(self, method: str, private_key: str, args: tuple) -> bytes:
        return xmlrpc.client.dumps((private_key,) + tuple(args), method).encode("utf-8")

    def call(self, url: str, body: bytes, keepalive: bool = True) -> Deferred:
        resource = self.resources.get(url)
        if resource is None:
            d: Deferred = Deferred()
            d.errback(DeliveryFailed(str(ConnectionRefusedError(url))))
            return d

        def parse(answer: bytes) -> bool:
            try:
                xmlrpc.client.loads(answer)
            except xmlrpc.client.Fault as fault:
                raise DeliveryFailed(fault.faultString, unreachable=False) from None
            return True

        return render(resource, body).addCallback(parse)


class MemoryHub:
    """
    Our hub core and Standard Profile on a L{MemoryNetwork}.
    """

    _numbers = itertools.count(1)

    def __init__(self, network: MemoryNetwork, reactor: MemoryReactorClock) -> None:
        self.network = network
        self.reactor = reactor
        self.number = next(self._numbers)
        self.secret = f"secret-{self.number}"
        self.url = f"http://hub{self.number}.invalid/xmlrpc"
        self.hub = Hub(reactor)
        self.profile = StandardProfile(self.hub, self.secret, network)  # type: ignore[arg-type]
        network.resources[self.url] = self.profile

    def lock_info(self) -> LockInfo:
        return LockInfo(secret=self.secret, url=self.url)

    def write_lockfile(self, path: Any) -> None:
        path.write_text(format_lockfile(self.lock_info()))

    def stop(self) -> None:
        """
        Shut the hub down (samp.hub.event.shutdown to subscribers), then take
        it off the network.
        """
        self.hub.shutdown(0)
        self.reactor.advance(0)
        self.network.resources.pop(self.url, None)


class Rig:
    """
    One reactor, one network, hubs and clients.
    """

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        self.network = MemoryNetwork()
        self.hub = MemoryHub(self.network, self.reactor)
        self._client_numbers = itertools.count(1)

    def new_hub(self) -> MemoryHub:
        self.hub = MemoryHub(self.network, self.reactor)
        return self.hub

    def client(self, name: str = "client", *, hub: Optional[MemoryHub] = None,
               **kwargs: Any) -> SAMPClient:
        hub = hub or self.hub
        url = f"http://127.0.0.1:{20000 + next(self._client_numbers)}/"
        if "lockfile" not in kwargs:
            kwargs.setdefault("hub_url", hub.url)
            kwargs.setdefault("secret", hub.secret)
        client = SAMPClient(
            self.reactor, name=name, poster=self.network, callback_url=url, **kwargs
        )
        self.network.resources[url] = client.callback_resource
        return client

    def settle(self, rounds: int = 5) -> None:
        """
        Run everything scheduled for now.
        """
        for _ in range(rounds):
            self.reactor.advance(0)

    def connected(self, name: str = "client", **kwargs: Any) -> SAMPClient:
        client = self.client(name, **kwargs)
        d = client.connect()
        self.settle()
        assert d.called, "connect did not finish"
        result = []
        d.addBoth(result.append)
        if isinstance(result[0], Failure):
            result[0].raiseException()
        return client


def result_of(d: Deferred) -> Any:
    """
    @return: the result of an already fired Deferred (raises its failure).
    """
    assert d.called, "Deferred has not fired"
    box: list = []
    d.addBoth(box.append)
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def failure_of(d: Deferred) -> Failure:
    """
    @return: the failure of an already failed Deferred.
    """
    assert d.called, "Deferred has not fired"
    box: list = []
    d.addBoth(box.append)
    assert isinstance(box[0], Failure), f"Deferred succeeded with {box[0]!r}"
    return box[0]
