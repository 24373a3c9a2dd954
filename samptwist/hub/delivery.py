"""
Delivery of Standard Profile callbacks: XML-RPC POSTs to each client's
callback URL, one ordered queue per recipient, over a shared persistent HTTP
connection pool, each request bounded by a timeout.

A slow or hung recipient only holds up its own queue; every other client is
served as usual.

Up to L{CallbackCaller.max_in_flight} callbacks are in flight to one
recipient once its first answer has shown what its callback server does.
One that keeps connections open (samptwist's clients, any HTTP/1.1 server)
gets them pipelined on one connection (HTTP/1.1): it reads them in queue
order and answers in that order, so it handles them strictly in order
(HUB-ORDER-1) while the hub does not wait a round trip between two.  One
that closes the connection after each answer (pyvo's and JSAMP's
HTTP/1.0-style servers, which handle every connection in a thread of its
own) gets them on connections of their own: otherwise each callback costs a
whole connect-request-close round trip while the hub waits.  They are still
started in queue order, each on a connection opened after the previous one's;
the recipient's threads may overlap their handling, as they do under pyvo's
own hub, which starts a thread per delivery.  Until the first answer, one
callback at a time.  Hub messages
(C{samp.hub.*}: events, C{samp.hub.disconnect}) are never overlapped with
anything: each waits for the callbacks in flight and goes alone, so a
client's view of the hub's events stays in order.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Tuple
from urllib.parse import urlparse

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from .._httpclient import Answer, HTTPClient
from .._log import Logger
from .._net import callback_host_is_local
from .._xmlrpc import CallEncoder, Fault, NotXmlRpc, parse_params
from ..errors import SAMPValueError
from ..types import samp_size
from .callbacks import DeliveryFailed, ICallbackTarget, QueueFull
from .limits import DEFAULT_LIMITS, MAX_CALLBACK_URL

if TYPE_CHECKING:
    from twisted.web.iweb import IAgent


def check_callback_url(url: Any) -> str:
    """
    @return: C{url}, if it is an absolute C{http:}/C{https:} URL on this
        machine (see L{samptwist._net.callback_host_is_local}).
    @raise SAMPValueError: otherwise: the hub calls back only local clients.
    """
    if not isinstance(url, str):
        raise SAMPValueError("callback URL must be a string")
    if len(url) > MAX_CALLBACK_URL:
        raise SAMPValueError(
            f"callback URL is too large: {len(url)} characters, over the hub's limit of "
            f"{MAX_CALLBACK_URL}"
        )
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SAMPValueError(f"malformed callback URL {url!r:.80}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SAMPValueError(f"callback URL {url!r:.80} is not an absolute http URL")
    if not callback_host_is_local(parsed.hostname):
        raise SAMPValueError(
            f"callback URL {url!r:.80} is not on this machine: the hub only calls back "
            "loopback addresses, localhost or this host's own name"
        )
    return url


#: callbacks in flight at once to a recipient that closes its connections
DEFAULT_MAX_IN_FLIGHT = 8


class CallbackCaller:
    """
    Makes the hub's outgoing XML-RPC callbacks over one
    L{samptwist._httpclient.HTTPClient} (persistent connections per callback
    address), each bounded by a time-out.

    @ivar timeout: seconds allowed for one callback, connection to answer.
    @ivar http: the HTTP client.
    @ivar max_in_flight: most callbacks in flight at once to one recipient
        (pipelined on one connection to a server that keeps it open, on
        connections of their own to one that closes them; 1: strictly one
        at a time for every recipient).
    """

    max_in_flight = DEFAULT_MAX_IN_FLIGHT

    def __init__(
        self,
        reactor: IReactorTime,
        timeout: float = 30.0,
        agent: Optional[IAgent] = None,
        max_response: int = 1 << 20,
    ) -> None:
        """
        @param agent: an L{IAgent} for every callback (tests); by default
            the hand-written HTTP/1.1 client serves http and Twisted's Agent
            https (see L{samptwist._httpclient}).
        """
        self.reactor = reactor
        self.timeout = timeout
        self.max_response = max_response
        self.http = HTTPClient(
            reactor, timeout=timeout, max_response=max_response, user_agent="samptwist-hub",
            agent=agent,
        )
        self._encoder = CallEncoder(_ENCODED_ENTRIES, _ENCODED_BYTES)

    def call(
        self, url: str, body: bytes, keepalive: bool = True, lane: Optional[object] = None
    ) -> Deferred:
        """
        POST an XML-RPC request.

        @param keepalive: whether to use (and leave open) a pooled persistent
            connection; pass C{False} for servers that speak only HTTP/1.0.
        @param lane: pipeline it behind the unanswered requests of the same
            lane (see L{HTTPClient.post<samptwist._httpclient.HTTPClient.post>}).
        @return: a L{Deferred} firing with whether the server allows
            persistent connections, or failing with L{DeliveryFailed}:
            C{unreachable=False} for an XML-RPC fault, C{True} for anything
            else (refused, timed out, HTTP error, not XML-RPC).
        """
        d = self.http.post(url, body, keepalive, lane)
        d.addCallbacks(_check_answer, _http_failed)
        return d

    def pipelines(self, url: str) -> bool:
        """
        @return: whether callbacks to C{url} can be pipelined on one
            connection (C{http:} through the direct client; not C{https:}
            or an injected agent).
        """
        return self.http.direct and url.startswith("http:")

    def encode(self, method: str, private_key: str, args: tuple) -> bytes:
        """
        @return: the XML-RPC request C{method(private_key, *args)}.

        The arguments after the key are serialised once and reused while the
        same objects are passed again: a notifyAll or hub event to N
        recipients marshals its message once, not N times.
        """
        return self._encoder.encode(method, private_key, args)

    def close(self) -> Deferred:
        """
        Close pooled connections.

        @return: a L{Deferred} firing when they are closed.
        """
        return self.http.close()


def _check_answer(answer: Answer) -> bool:
    """
    @return: whether the callback server keeps connections open.
    @raise DeliveryFailed: for an HTTP error, a fault or not XML-RPC.
    """
    if answer.code != 200:
        raise DeliveryFailed(f"callback answered HTTP {answer.code}")
    try:
        parse_params(answer.body)
    except Fault as fault:
        raise DeliveryFailed(
            f"client answered fault: {fault.faultString}", unreachable=False
        ) from None
    except NotXmlRpc:
        raise DeliveryFailed("callback answer is not XML-RPC") from None
    return answer.persistent


def _http_failed(f: Failure) -> None:
    # HTTPFailed says what went wrong (refused, lost, timed out, not HTTP).
    raise DeliveryFailed(f.getErrorMessage() or repr(f.value))


_ENCODED_ENTRIES = 16
_ENCODED_BYTES = 32 << 20


@implementer(ICallbackTarget)
class XmlRpcCallbackTarget:
    """
    One Standard Profile client's callback endpoint: callbacks are sent in
    order, up to C{caller.max_in_flight} at a time (pipelined on one
    connection to a server that keeps connections open, on connections of
    their own to one that does not; one at a time until the first answer
    shows which, see the module's docstring); a C{samp.hub.*} message always
    goes alone.

    @ivar max_queue: how many callbacks may wait for this client; beyond that
        new ones fail at once (and are reported, never dropped silently).
    @ivar max_queue_bytes: how many bytes of messages (L{samp_size}) may
        wait for it; one callback always fits into an empty queue.
    @ivar queued_bytes: the size of the callbacks waiting now.
    @ivar in_flight: how many callbacks are being delivered now.

    Cancelling the L{Deferred} of a callback that is still queued removes it
    from the queue (the hub does so for calls that ended before delivery).
    """

    log = Logger()

    def __init__(
        self,
        caller: CallbackCaller,
        url: str,
        private_key: str,
        max_queue: int = DEFAULT_LIMITS.max_queue,
        max_queue_bytes: int = DEFAULT_LIMITS.max_queue_bytes,
    ) -> None:
        self.caller = caller
        self.url = url
        self.private_key = private_key
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.queued_bytes = 0
        self._queue: Deque[Tuple[str, tuple, Deferred, int]] = deque()
        self.in_flight = 0
        self._alone = False  # a callback that must go alone is in flight
        self._closed = False
        self._keepalive = True
        self._known = False  # whether an answer has shown what its server does

    def _enqueue(self, method: str, args: tuple) -> Deferred:
        if self._closed:
            return fail(DeliveryFailed("client is gone", unreachable=False, gone=True))
        if len(self._queue) >= self.max_queue:
            return fail(QueueFull(
                f"client's queue is full ({self.max_queue} callbacks waiting, its limit: "
                "max-queue)"
            ))
        size = samp_size(args)
        if self._queue and self.queued_bytes + size > self.max_queue_bytes:
            return fail(QueueFull(
                f"client's queue is full ({self.queued_bytes} bytes waiting; this callback "
                f"of {size} bytes would pass its limit of {self.max_queue_bytes}: "
                "max-queue-bytes)"
            ))
        entry: Tuple[str, tuple, Deferred, int]

        def cancel(d: Deferred) -> None:
            # Still queued: take it out.  In flight: it is answered anyway
            # and the answer is ignored (see _done).
            try:
                self._queue.remove(entry)
            except ValueError:
                return
            self.queued_bytes -= size

        d: Deferred = Deferred(cancel)
        entry = (method, args, d, size)
        self._queue.append(entry)
        self.queued_bytes += size
        self._next()
        return d

    def _window(self) -> int:
        # One at a time until an answer shows what the server does, and to a
        # persistent server the requests of which cannot be pipelined.
        if not self._known or (self._keepalive and not self.caller.pipelines(self.url)):
            return 1
        return max(1, self.caller.max_in_flight)

    def _next(self) -> None:
        while self._queue and not self._alone and self.in_flight < self._window():
            method, args, d, size = self._queue[0]
            alone = _goes_alone(method, args)
            if alone and self.in_flight:
                return  # it waits for those in flight
            self._queue.popleft()
            self.queued_bytes -= size
            try:
                body = self.caller.encode(method, self.private_key, args)
            except Exception as e:  # cannot happen for checked SAMP values
                d.errback(DeliveryFailed(f"cannot encode callback: {e}", unreachable=False))
                continue
            self.in_flight += 1
            self._alone = alone
            lane = self if self._keepalive and self._known else None
            sent = self.caller.call(self.url, body, self._keepalive, lane)
            sent.addBoth(self._done, d, alone)

    def _done(self, result: Any, d: Deferred, alone: bool) -> None:
        self.in_flight -= 1
        if alone:
            self._alone = False
        if not isinstance(result, Failure):
            self._keepalive = bool(result)
            self._known = True
        if d.called:
            pass  # cancelled while in flight: nobody waits for the outcome
        elif isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(None)
        if not self._closed:
            self._next()

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveNotification", (senderId, message))

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveCall", (senderId, msgId, message))

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return self._enqueue("samp.client.receiveResponse", (responderId, msgTag, response))

    def discard_queued(self) -> None:
        """
        Fail every callback still waiting (not those in flight), as for a
        client that is gone; later callbacks are queued as usual.
        """
        queued, self._queue = self._queue, deque()
        self.queued_bytes = 0
        for _, _, d, _ in queued:
            d.errback(DeliveryFailed("client is gone", unreachable=False, gone=True))

    def discard_call(self, msg_id: str) -> bool:
        # A queued call's Deferred is cancelled by the hub, which drops it.
        return False

    def close(self) -> None:
        self._closed = True
        queued, self._queue = self._queue, deque()
        self.queued_bytes = 0
        for _, _, d, _ in queued:
            d.errback(DeliveryFailed("client is gone", unreachable=False, gone=True))

    def __len__(self) -> int:
        return len(self._queue)


def _goes_alone(method: str, args: tuple) -> bool:
    """
    @return: whether a callback must not overlap any other to its recipient:
        a hub message (C{samp.hub.event.*}, C{samp.hub.disconnect}).
    """
    if method == "samp.client.receiveResponse":
        return False
    mtype = args[-1].get("samp.mtype") if isinstance(args[-1], dict) else None
    return isinstance(mtype, str) and mtype.startswith("samp.hub.")
