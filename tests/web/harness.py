"""
In-memory Web Profile harness: a L{Hub} and a L{WebProfileService} on a
L{Clock}, requests through treq's L{StubTreq} (no sockets), and a fake
Standard Profile client that records its callbacks.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, Dict, List, Optional, Tuple

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer

from samptwist.hub.callbacks import ICallbackTarget
from samptwist.hub.core import Client, Hub
from samptwist.hub.web.consent import AllowAll
from samptwist.hub.web.service import WebProfileService

HUB = "http://127.0.0.1:21012/"
ORIGIN = "http://127.0.0.1:8000"


def now(d: Deferred) -> Any:
    """
    @return: the result C{d} already has (raising its failure).
    """
    box: List[Any] = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def pending(d: Deferred) -> bool:
    box: List[Any] = []
    d.addBoth(lambda r: box.append(r) or r)
    return not box


@implementer(ICallbackTarget)
class Recorder:
    """
    A Standard Profile client's callback target that records everything.
    """

    def __init__(self) -> None:
        self.got: List[Tuple[str, tuple]] = []
        self.closed = False

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        self.got.append(("receiveNotification", (senderId, message)))
        return succeed(None)

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        self.got.append(("receiveCall", (senderId, msgId, message)))
        return succeed(None)

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        self.got.append(("receiveResponse", (responderId, msgTag, response)))
        return succeed(None)

    def discard_queued(self) -> None:
        pass

    def discard_call(self, msg_id: str) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class Web:
    """
    A hub with a Web Profile, driven in memory.
    """

    def __init__(self, consent: Any = None, **options: Any) -> None:
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.service = WebProfileService(
            self.hub,
            self.clock,
            listen="tcp:0:interface=127.0.0.1",
            consent=consent if consent is not None else AllowAll(),
            **options,
        )
        self.profile = self.service.profile
        self.root = self.service.root
        self.stub = StubTreq(self.root)

    # -- raw HTTP ------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str = "",
        body: bytes = b"",
        headers: Optional[Dict[str, Any]] = None,
        host: str = HUB,
    ) -> Deferred:
        """
        @return: a Deferred firing with (response, body bytes).
        """
        d = self.stub.request(method, host + path, data=body or None, headers=headers or {})

        def read(response: Any) -> Deferred:
            return self.stub.content(response).addCallback(lambda data: (response, data))

        return d.addCallback(read)

    # -- XML-RPC -------------------------------------------------------------

    def call_d(
        self, method: str, *args: Any, origin: Optional[str] = ORIGIN, **kw: Any
    ) -> Deferred:
        """
        @return: a Deferred firing with the result, or failing with
            L{xmlrpc.client.Fault}.
        """
        headers = {"Content-Type": "text/xml"}
        if origin is not None:
            headers["Origin"] = origin
        headers.update(kw.pop("headers", {}))
        body = xmlrpc.client.dumps(args, "samp.webhub." + method).encode()
        d = self.request("POST", "", body, headers, **kw)

        def parse(result: Tuple[Any, bytes]) -> Any:
            response, data = result
            assert response.code == 200, (response.code, data)
            return xmlrpc.client.loads(data)[0][0]

        return d.addCallback(parse)

    def call(self, method: str, *args: Any, **kw: Any) -> Any:
        return now(self.call_d(method, *args, **kw))

    def fault(self, method: str, *args: Any, **kw: Any) -> xmlrpc.client.Fault:
        try:
            result = self.call(method, *args, **kw)
        except xmlrpc.client.Fault as fault:
            return fault
        raise AssertionError(f"{method} answered {result!r}, expected a fault")

    def flush(self) -> None:
        self.clock.advance(0)
        self.stub.flush()

    # -- clients -------------------------------------------------------------

    def register(
        self, name: str = "page", callable: bool = True, subs: Any = None
    ) -> Dict[str, str]:
        reg = self.call("register", {"samp.name": name})
        key = reg["samp.private-key"]
        self.call("declareMetadata", key, {"samp.name": name})
        if callable:
            self.call("allowReverseCallbacks", key, "1")
        if subs is not None:
            self.call("declareSubscriptions", key, subs)
        return reg

    def standard(self, subs: Any = None) -> Tuple[Client, Recorder]:
        client = self.hub.register("standard")
        recorder = Recorder()
        self.hub.set_callback(client.private_key, recorder)
        self.hub.declare_metadata(client.private_key, {"samp.name": "desktop"})
        self.hub.declare_subscriptions(client.private_key, subs or {"*": {}})
        return client, recorder

    def pull(self, key: str, timeout: str = "0") -> List[Dict[str, Any]]:
        return self.call("pullCallbacks", key, timeout)
