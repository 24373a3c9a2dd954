"""
Test doubles for code that uses samptwist, and for samptwist itself.

  - L{MemoryRig}: a real samptwist hub (its L{Hub} core and Standard Profile
    resource) and any number of L{SAMPClient}s, wired together in memory: no
    sockets, no lockfile, no threads, every timeout on one clock
    (a L{MemoryReactorClock}, a L{Clock<twisted.internet.task.Clock>} with the reactor interfaces a
    client uses).  Unit-test your own SAMP client code against it::

        rig = MemoryRig()
        viewer = rig.connected("viewer")
        viewer.add_handler("table.load.votable", load_table)
        script = rig.connected("script")
        d = script.call(viewer.self_id, "table.load.votable", {"url": url}, timeout=10)
        rig.settle()
        assert result_of(d)["samp.status"] == "samp.ok"

  - L{MemoryNetwork} and L{MemoryHub}, the parts it is made of, for tests
    that want several hubs on one network.
  - L{RecordingTarget}: an L{ICallbackTarget} that records what the hub
    core delivers, for tests of the hub core alone.
  - L{result_of} / L{failure_of}: the outcome of an already fired Deferred.

This module is a test helper: it imports both the hub (L{samptwist.hub}) and
the client library (L{samptwist.client}).  Neither of those imports it, so a
hub process never loads the client library through it, nor a client the hub.
"""

from __future__ import annotations

import itertools
import xmlrpc.client
from io import BytesIO
from typing import Any, Dict, List, Optional, Set, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from .client import SAMPClient
from .client.errors import HubUnreachable
from .hub.callbacks import DeliveryFailed, ICallbackTarget
from .hub.core import Hub
from .hub.standard import StandardProfile
from .lockfile import LockInfo, format_lockfile

__all__ = [
    "MemoryHub",
    "MemoryNetwork",
    "MemoryRig",
    "RecordingTarget",
    "failure_of",
    "post_to_resource",
    "result_of",
]


def post_to_resource(resource: Any, body: bytes) -> Deferred:
    """
    POST C{body} to the twisted.web C{resource} in memory (a
    L{DummyRequest}, rendered at once).

    @return: a L{Deferred} firing with the answer's body once the resource
        finished the request; cancelling it looks to the resource like the
        connection being dropped.
    """
    request = DummyRequest([b""])
    request.method = b"POST"
    request.content = BytesIO(body)  # type: ignore[attr-defined]  # read by render_POST

    def cancel(_: Deferred) -> None:
        if not request.finished:
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


def _failed(error: BaseException) -> Deferred:
    d: Deferred = Deferred()
    d.errback(error)
    return d


class MemoryNetwork:
    """
    URLs to twisted.web resources.  As an L{IPoster} it lets clients reach
    hubs; as the hub's callback caller it lets hubs reach clients.

    @ivar resources: URL to resource; a URL not in it refuses connections.
    @ivar hanging: URLs whose requests (from clients) never get an answer,
        as a hub that hangs.
    """

    #: the callback caller's reactor and timeout, unused in memory
    reactor: Any = None
    timeout = 30.0

    def __init__(self) -> None:
        self.resources: Dict[str, Any] = {}
        self.hanging: Set[str] = set()

    # IPoster

    def post(self, url: str, body: bytes) -> Deferred:
        """
        @return: a L{Deferred} firing with the answer of the resource at
            C{url}, failing with L{HubUnreachable} if there is none, or
            never firing if C{url} is in L{hanging}.
        """
        if url in self.hanging:
            return Deferred(lambda d: None)
        resource = self.resources.get(url)
        if resource is None:
            return _failed(HubUnreachable(f"connection refused: {url}"))
        return post_to_resource(resource, body)

    def close(self) -> Deferred:
        """
        @return: a fired L{Deferred}: there are no connections to close.
        """
        return succeed(None)

    # the hub's callback caller

    def encode(self, method: str, private_key: str, args: tuple) -> bytes:
        """
        @return: the XML-RPC request calling C{method(private_key, *args)}.
        """
        return xmlrpc.client.dumps((private_key,) + tuple(args), method).encode("utf-8")

    def pipelines(self, url: str) -> bool:
        """
        @return: C{False}: in memory, callbacks go one at a time.
        """
        return False

    def call(
        self, url: str, body: bytes, keepalive: bool = True, lane: Optional[object] = None
    ) -> Deferred:
        """
        Deliver a hub callback to the client resource at C{url} (C{keepalive}
        and C{lane} do not matter in memory).

        @return: a L{Deferred} firing with C{True}, or failing with
            L{DeliveryFailed} (no resource at C{url}, or the client answered
            with a fault).
        """
        resource = self.resources.get(url)
        if resource is None:
            return _failed(DeliveryFailed(str(ConnectionRefusedError(url))))

        def parse(answer: bytes) -> bool:
            try:
                xmlrpc.client.loads(answer)
            except xmlrpc.client.Fault as fault:
                raise DeliveryFailed(fault.faultString, unreachable=False) from None
            return True

        return post_to_resource(resource, body).addCallback(parse)


class MemoryHub:
    """
    A samptwist hub core (L{hub}) and its Standard Profile resource on a
    L{MemoryNetwork}, at a URL of its own.

    @ivar hub: the L{Hub} core: inspect its clients, eject one, shut it down.
    @ivar secret: the Standard Profile secret.
    @ivar url: the hub's XML-RPC URL on the network.
    """

    _numbers = itertools.count(1)

    def __init__(self, network: MemoryNetwork, reactor: Any) -> None:
        self.network = network
        self.reactor = reactor
        self.number = next(self._numbers)
        self.secret = f"secret-{self.number}"
        self.url = f"http://hub{self.number}.invalid/xmlrpc"
        self.hub = Hub(reactor)
        self.profile = StandardProfile(self.hub, self.secret, network)  # type: ignore[arg-type]
        network.resources[self.url] = self.profile

    def lock_info(self) -> LockInfo:
        """
        @return: what a lockfile for this hub would hold.
        """
        return LockInfo(secret=self.secret, url=self.url)

    def write_lockfile(self, path: Any) -> None:
        """
        Write a lockfile for this hub at C{path} (a L{pathlib.Path}), for
        clients that discover their hub.
        """
        path.write_text(format_lockfile(self.lock_info()))

    def stop(self) -> None:
        """
        Shut the hub down (C{samp.hub.event.shutdown} to subscribers), then
        take it off the network.
        """
        self.hub.shutdown(0)
        self.reactor.advance(0)
        self.network.resources.pop(self.url, None)


class MemoryRig:
    """
    One clock, one L{MemoryNetwork}, a hub (L{hub}) and the clients made by
    L{client} / L{connected}.  Nothing happens until the clock moves: call
    L{settle} to run what is due now, L{advance} to let time pass.

    @ivar reactor: the clock every client and hub uses.
    @ivar network: the in-memory network.
    @ivar hub: the current L{MemoryHub} (see L{new_hub}).
    """

    def __init__(self, reactor: Optional[MemoryReactorClock] = None) -> None:
        """
        @param reactor: the clock (default: a new L{MemoryReactorClock}).
        """
        self.reactor = reactor if reactor is not None else MemoryReactorClock()
        self.network = MemoryNetwork()
        self.hub = MemoryHub(self.network, self.reactor)
        self._client_numbers = itertools.count(1)

    def new_hub(self) -> MemoryHub:
        """
        Start another hub on the same network; it becomes L{hub}.

        @return: the new L{MemoryHub}.
        """
        self.hub = MemoryHub(self.network, self.reactor)
        return self.hub

    def client(self, name: str = "client", *, hub: Optional[MemoryHub] = None,
               **kwargs: Any) -> SAMPClient:
        """
        A new, not yet connected L{SAMPClient} on the network; its callback
        resource is served at a URL of its own.

        @param hub: the hub it connects to (default L{hub}), unless
            C{lockfile=} is among C{kwargs}.
        @param kwargs: other L{SAMPClient} arguments.
        """
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

    def connected(self, name: str = "client", **kwargs: Any) -> SAMPClient:
        """
        L{client}, then connect it.

        @return: the connected L{SAMPClient}.
        @raise Exception: whatever made C{connect()} fail.
        """
        client = self.client(name, **kwargs)
        d = client.connect()
        self.settle()
        result_of(d)
        return client

    def settle(self, rounds: int = 5) -> None:
        """
        Run everything scheduled for now (C{rounds} turns of the clock, as a
        message and its reply take a few).
        """
        for _ in range(rounds):
            self.reactor.advance(0)

    def advance(self, seconds: float) -> None:
        """
        Let C{seconds} pass on the clock, then L{settle}.
        """
        self.reactor.advance(seconds)
        self.settle()


def result_of(d: Deferred) -> Any:
    """
    @return: the result of an already fired Deferred.
    @raise AssertionError: if C{d} has not fired.
    @raise Exception: the failure's exception if C{d} failed.
    """
    assert d.called, "Deferred has not fired"
    box: List[Any] = []
    d.addBoth(box.append)
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def failure_of(d: Deferred) -> Failure:
    """
    @return: the failure of an already failed Deferred (now handled).
    @raise AssertionError: if C{d} has not fired, or succeeded.
    """
    assert d.called, "Deferred has not fired"
    box: List[Any] = []
    d.addBoth(box.append)
    assert isinstance(box[0], Failure), f"Deferred succeeded with {box[0]!r}"
    return box[0]


@implementer(ICallbackTarget)
class RecordingTarget:
    """
    An L{ICallbackTarget} that records every callback in L{received}.

    By default each delivery succeeds at once.  Set L{hold} to keep the
    Deferreds pending (they collect in L{held}), or L{fail_with} to fail every
    delivery with that L{DeliveryFailed}.

    @ivar received: C{(method, args)} tuples in delivery order.
    """

    def __init__(self) -> None:
        self.received: List[Tuple[str, tuple]] = []
        self.held: List[Deferred] = []
        self.hold = False
        self.fail_with: Optional[DeliveryFailed] = None
        self.closed = False
        self.on_call: Optional[Any] = None

    def _record(self, method: str, args: tuple) -> Deferred:
        self.received.append((method, args))
        if self.fail_with is not None:
            d: Deferred = Deferred()
            d.errback(self.fail_with)
            return d
        if self.hold:
            d = Deferred()
            self.held.append(d)
            return d
        return succeed(None)

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return self._record("receiveNotification", (senderId, message))

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        d = self._record("receiveCall", (senderId, msgId, message))
        if self.on_call is not None:
            self.on_call(senderId, msgId, message)
        return d

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return self._record("receiveResponse", (responderId, msgTag, response))

    def discard_queued(self) -> None:
        pass

    def discard_call(self, msg_id: str) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def of(self, method: str) -> List[tuple]:
        """
        @return: the argument tuples of every recorded C{method} callback.
        """
        return [args for name, args in self.received if name == method]

    def mtypes(self) -> List[str]:
        """
        @return: the MTypes of recorded notifications and calls, in order.
        """
        return [
            args[-1]["samp.mtype"]
            for name, args in self.received
            if name in ("receiveNotification", "receiveCall")
        ]
