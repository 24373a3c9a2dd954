"""
L{SAMPClient}: a Deferred-based SAMP client for Twisted programs::

    client = SAMPClient(reactor, name="my-app")
    client.add_handler("table.load.votable", load)  # subscriptions follow
    await client.connect()
    response = await client.call(recipient_id, "samp.app.ping", timeout=10)
    await client.disconnect()

Every method that talks to the hub returns a L{Deferred}; those waiting for a
response take a client-side C{timeout} and support C{cancel()} (the late
reply is then ignored).

L{SAMPClient} coordinates collaborators, one concept each: the connection's
life cycle (L{samptwist.client.lifecycle}), calls waiting for responses
(L{samptwist.client.pending}), incoming messages
(L{samptwist.client.dispatch}), the handler table, the callback server, the
tracker and the reconnector.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Union

from twisted.internet.defer import Deferred, fail, succeed

from .._log import Logger
from ..constants import DEFAULT_LISTEN, PING  # noqa: F401 (both re-exported)
from ..lockfile import LockInfo
from ..types import check_map
from .callback import CallbackResource, CallbackServer
from .discovery import find_hub
from .dispatch import Dispatcher, builtin_mtypes
from .errors import NotConnected
from .handlers import (
    Handler,
    HandlerTable,
    Registration,
    as_message,
    check_response,
    raise_for_status,
)
from .lifecycle import Lifecycle
from .observer import Observable
from .pending import PendingCalls, ResponseCallback, ResponseListener
from .proxy import HubProxy, IPoster
from .reconnect import Reconnector
from .tracker import ClientTracker


class SAMPClient:
    """
    One connection of this program to a SAMP hub (Standard Profile).

    @ivar reactor: the reactor (or a L{task.Clock<twisted.internet.task.Clock>} in tests).
    @ivar metadata: the metadata declared at every (re)connection.
    @ivar handlers: the L{HandlerTable}; its patterns are the subscriptions.
    @ivar tracker: the L{ClientTracker}, or C{None} if tracking is off.
    @ivar pending: the L{PendingCalls} waiting for responses (C{len()}
        counts them).
    @ivar connected: an L{Observable} firing with this client after every
        successful (re)connection.
    @ivar disconnected: an L{Observable} firing with a reason when the
        connection ends: C{"closed"} (L{disconnect}), C{"shutdown"}
        (C{samp.hub.event.shutdown}), C{"disconnect"} (the hub ejected this
        client with C{samp.hub.disconnect}) or C{"unreachable"} (the hub
        stopped answering).
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any = None,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        callable: bool = True,
        listen: str = DEFAULT_LISTEN,
        callback_url: Optional[str] = None,
        lockfile: Union[str, Path, None] = None,
        hub_url: Optional[str] = None,
        secret: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
        poster: Optional[IPoster] = None,
        track: bool = True,
        reconnect: bool = False,
        reconnect_interval: float = 1.0,
        heartbeat: float = 5.0,
        hub_timeout: float = 30.0,
        wait_grace: float = 5.0,
        unregister_on_shutdown: bool = True,
    ) -> None:
        """
        @param name: C{samp.name} metadata.
        @param description: C{samp.description.text} metadata.
        @param metadata: other metadata (merged under C{name}/C{description}).
        @param callable: whether to receive messages (serve callbacks).
        @param listen: endpoint string for the callback server.
        @param callback_url: if given, no server is opened: the application
            serves L{callback_resource} at this URL on its own site.
        @param lockfile: a lockfile path or URL instead of the default
            discovery (C{SAMP_HUB}, C{~/.samp}).
        @param hub_url: with C{secret}: the hub's XML-RPC URL (no lockfile).
        @param poster: the HTTP client (default: an
            L{HTTPPoster<samptwist.client.proxy.HTTPPoster>}, persistent
            connections); tests pass an in-memory one.
        @param track: keep L{tracker} up to date.
        @param reconnect: reconnect automatically when a hub appears again
            after the connection was lost (not after L{disconnect}).
        @param heartbeat: with C{reconnect}, seconds between pings that
            notice a hub that died silently (0: no pings).
        @param hub_timeout: seconds allowed for an ordinary hub request.
        @param wait_grace: extra seconds a C{callAndWait} waits for the hub
            beyond its own timeout.
        @param unregister_on_shutdown: unregister when the reactor stops.
        """
        if reactor is None:
            from twisted.internet import reactor  # type: ignore[no-redef]
        self.reactor = reactor
        self.metadata: Dict[str, Any] = dict(metadata or {})
        if name is not None:
            self.metadata["samp.name"] = name
        if description is not None:
            self.metadata["samp.description.text"] = description
        check_map(self.metadata, "metadata")
        self.callable = callable
        self.handlers = HandlerTable()
        self.callback_resource = CallbackResource(self)
        self._server = CallbackServer(reactor, self.callback_resource, listen)
        self._callback_url = callback_url
        self._poster = poster
        self.hub_timeout = hub_timeout
        self.wait_grace = wait_grace
        self.tracker: Optional[ClientTracker] = ClientTracker(self) if track else None
        self.connected: Observable[SAMPClient] = Observable(reactor, "connected")
        self.disconnected: Observable[str] = Observable(reactor, "disconnected")
        self.pending = PendingCalls(reactor)
        self._resubscribe: Any = None
        self._link = Lifecycle(
            reactor,
            find_hub=lambda: find_hub(
                self.reactor, lockfile=lockfile, url=hub_url, secret=secret, environ=environ
            ),
            open_proxy=self._open_proxy,
            setup=self._declare_all,
            cleanup=self._cleanup,
            connected=lambda: self.connected.emit(self),
            disconnected=self.disconnected.emit,
            unregister_on_shutdown=unregister_on_shutdown,
            reconnect=reconnect,
            reconnect_interval=reconnect_interval,
            heartbeat=heartbeat,
        )
        self._dispatcher = Dispatcher(reactor, self._link, self.handlers, self.tracker)

    # ------------------------------------------------------------------
    # Connection life cycle (the work is the Lifecycle's)

    @property
    def is_connected(self) -> bool:
        """
        Whether this client is registered with a hub.
        """
        return self._link.is_connected

    @property
    def self_id(self) -> Optional[str]:
        """
        This client's public id while connected.
        """
        return self._link.self_id

    @property
    def hub_id(self) -> Optional[str]:
        """
        The hub's public id while connected.
        """
        return self._link.hub_id

    @property
    def hub_info(self) -> Optional[LockInfo]:
        """
        The connected hub's lockfile information (URL, secret, ...).
        """
        return self._link.hub_info

    @property
    def proxy(self) -> Optional[HubProxy]:
        """
        The L{HubProxy} to the hub while connected.
        """
        return self._link.proxy

    @property
    def reconnector(self) -> Optional[Reconnector]:
        """
        The L{Reconnector} if this client reconnects automatically.
        """
        return self._link.reconnector

    def connect(self) -> Deferred:
        """
        Find the hub, register, open the callback server, declare metadata
        and subscriptions and load the tracker.  Concurrent calls share one
        attempt.

        @return: a L{Deferred} firing with this client, or failing with
            L{LockfileError} (no hub running), L{HubUnreachable} (the
            lockfile names a hub that does not answer) or L{SAMPHubError}
            (the hub refused, e.g. a wrong secret).
        """
        if self.is_connected:
            return succeed(self)
        return self._link.connect().addCallback(lambda _: self)

    def disconnect(self, timeout: float = 5.0) -> Deferred:
        """
        Unregister (CLI-LIB-4), stop the callback server and close
        connections.  Pending calls fail with L{NotConnected}; automatic
        reconnection stops.

        @param timeout: seconds allowed for the hub to answer unregister.
        @return: a L{Deferred} firing with C{None}; it never fails.
        """
        return self._link.disconnect(timeout)

    def ping(self) -> Deferred:
        """
        C{samp.hub.ping}.

        @return: a L{Deferred} firing with C{None} if the hub answers,
            failing with L{NotConnected}, L{HubUnreachable} or
            L{SAMPHubError}.
        """
        return self._link.ping()

    def _open_proxy(self, info: LockInfo) -> HubProxy:
        return HubProxy(info.url, self.reactor, poster=self._poster, timeout=self.hub_timeout)

    async def _declare_all(self) -> None:
        # Lifecycle's setup: everything a (re)connection declares.
        if self.callable:
            url = self._callback_url or await self._server.start()
            self.callback_resource.private_key = self._link.private_key
            await self._link.request("setXmlrpcCallback", url)
        if self.metadata:
            await self._link.request("declareMetadata", self.metadata)
        if self.callable:
            await self._link.request("declareSubscriptions", self.subscriptions())
        if self.tracker is not None:
            await self.tracker.refresh()

    async def _cleanup(self, reason: Optional[str]) -> None:
        # Lifecycle's cleanup: the connection ended (or never was).
        self.callback_resource.private_key = None
        self._cancel_resubscribe()
        self.pending.fail_all(NotConnected(f"connection to the hub ended ({reason or 'closed'})"))
        if self.tracker is not None and self.tracker.clients:
            self.tracker.clear()
        try:
            await self._server.stop()
        except Exception as e:
            self.log.info("stopping the callback server failed: {error}", error=e)

    # ------------------------------------------------------------------
    # Hub methods

    def declare_metadata(self, metadata: Optional[Mapping[str, Any]] = None) -> Deferred:
        """
        Replace this client's metadata (DATA-META-3); it is declared again
        after every reconnection.

        @return: a L{Deferred} firing with C{None} once the hub has it (at
            once if not connected), or failing with L{SAMPHubError}; a bad
            map raises L{SAMPValueError} at once.
        """
        if metadata is not None:
            self.metadata = check_map(dict(metadata), "metadata")
        if not self.is_connected:
            return succeed(None)
        return self._link.request("declareMetadata", self.metadata).addCallback(lambda _: None)

    def subscriptions(self) -> Dict[str, Dict[str, Any]]:
        """
        @return: the subscriptions map this client declares: its handlers'
            patterns plus the built-in ones (ping, hub shutdown and
            disconnect, and the tracker's events).
        """
        subs: Dict[str, Dict[str, Any]] = {m: {} for m in builtin_mtypes(self.tracker)}
        subs.update(self.handlers.subscriptions())
        return subs

    def declare_subscriptions(self) -> Deferred:
        """
        Declare L{subscriptions} now.

        @return: a L{Deferred} firing with C{None} (at once if not
            connected), or failing with L{SAMPHubError}.
        """
        self._cancel_resubscribe()
        if not self.is_connected or not self.callable:
            return succeed(None)
        d = self._link.request("declareSubscriptions", self.subscriptions())
        return d.addCallback(lambda _: None)

    def get_metadata(self, client_id: str) -> Deferred:
        """
        @return: a L{Deferred} firing with the metadata map of C{client_id},
            or failing with L{SAMPHubError} (no such client) or
            L{NotConnected}.
        """
        return self._link.request("getMetadata", client_id)

    def get_subscriptions(self, client_id: str) -> Deferred:
        """
        @return: a L{Deferred} firing with the subscriptions map of
            C{client_id}, or failing with L{SAMPHubError} or
            L{NotConnected}.
        """
        return self._link.request("getSubscriptions", client_id)

    def get_registered_clients(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the list of other clients' ids
            (the hub's included), or failing with L{NotConnected}.
        """
        return self._link.request("getRegisteredClients")

    def get_subscribed_clients(self, mtype: str) -> Deferred:
        """
        @return: a L{Deferred} firing with a map client id to annotation map
            of the other clients subscribed to C{mtype}, or failing with
            L{SAMPHubError} or L{NotConnected}.
        """
        return self._link.request("getSubscribedClients", mtype)

    def notify(
        self, recipient_id: str, message: Any, params: Optional[Mapping[str, Any]] = None
    ) -> Deferred:
        """
        Send a notification to one client.

        @param message: a message map, or an MType with C{params}.
        @return: a L{Deferred} firing with C{None} once the hub accepted it,
            or failing with C{ValueError} (a malformed message),
            L{SAMPHubError} (the hub refused) or L{NotConnected}.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return fail(e)
        return self._link.request("notify", recipient_id, msg).addCallback(lambda _: None)

    def notify_all(self, message: Any, params: Optional[Mapping[str, Any]] = None) -> Deferred:
        """
        Send a notification to every subscribed client.

        @return: a L{Deferred} firing with the list of recipient ids, or
            failing as for L{notify}.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return fail(e)
        return self._link.request("notifyAll", msg).addCallback(
            lambda ids: list(ids) if isinstance(ids, list) else []
        )

    def new_tag(self) -> str:
        """
        @return: a msg-tag not used before by this client.
        """
        return self.pending.new_tag()

    def call(
        self,
        recipient_id: str,
        message: Any,
        params: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> Deferred:
        """
        Send a call to one client and wait for its response (asynchronous
        pattern: the response comes back through this client's callback).

        @param timeout: seconds to wait for the response; C{None}: no limit.
        @return: a cancellable L{Deferred} firing with the response map
            (C{samp.ok} or C{samp.warning}), or failing with
            L{SAMPCallError} (a C{samp.error} response), L{SAMPHubError}
            (the hub refused the call), L{TimeoutError}, L{NotConnected}
            or C{ValueError} (a malformed message).
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return fail(e)
        return self.pending.track(
            lambda tag: self._link.request("call", recipient_id, tag, msg),
            broadcast=False,
            timeout=timeout,
        )

    def call_all(
        self,
        message: Any,
        params: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        on_response: Optional[ResponseCallback] = None,
    ) -> Deferred:
        """
        Send a call to every subscribed client and collect the responses
        (CLI-LIB-5: one per recipient, told apart by responder id).

        @param on_response: called with C{(responder_id, response)} as each
            response arrives.
        @return: a cancellable L{Deferred} firing with a map recipient id to
            response map (error responses included, not raised) once every
            recipient answered, at once with C{{}} if nobody is subscribed;
            failing with L{BroadcastTimeout} (carrying the responses that
            did arrive) after C{timeout} seconds, L{SAMPHubError},
            L{NotConnected} or C{ValueError} (a malformed message).
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return fail(e)
        return self.pending.track(
            lambda tag: self._link.request("callAll", tag, msg),
            broadcast=True,
            timeout=timeout,
            on_response=on_response,
        )

    def call_and_wait(
        self,
        recipient_id: str,
        message: Any,
        params: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> Deferred:
        """
        C{samp.hub.callAndWait}: the hub holds the request until the
        recipient replies (HUB-WAIT-1).

        @param timeout: seconds, passed to the hub (rounded up); the client
            gives up C{wait_grace} seconds later.  C{None} or C{<= 0}: no
            limit.
        @return: a cancellable L{Deferred} firing with the response map, or
            failing with L{SAMPCallError}, L{SAMPHubError} (including the
            hub's own timeout fault), L{TimeoutError}, L{NotConnected} or
            C{ValueError} (a malformed message).
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return fail(e)
        if timeout is None or timeout <= 0:
            hub_timeout, client_timeout = "0", None
        else:
            hub_timeout = str(max(1, math.ceil(timeout)))
            client_timeout = timeout + self.wait_grace
        d = self._link.request(
            "callAndWait", recipient_id, msg, hub_timeout, timeout=client_timeout
        )
        d.addCallback(raise_for_status, recipient_id)
        return d

    def reply(self, msg_id: str, response: Mapping[str, Any]) -> Deferred:
        """
        Answer a call received by a handler registered with
        C{auto_reply=False} (CLI-CB-2: exactly once).

        @return: a L{Deferred} firing with C{None} once the hub took it, or
            failing with C{ValueError} (a malformed response),
            L{SAMPHubError} (e.g. no such call pending) or L{NotConnected}.
        """
        try:
            checked = check_response(dict(response))
        except ValueError as e:
            return fail(e)
        return self._link.request("reply", msg_id, checked).addCallback(lambda _: None)

    def send_call(self, recipient_id: str, msg_tag: str, message: Any) -> Deferred:
        """
        Low-level C{samp.hub.call} with a msg-tag of the caller's choosing;
        the response goes to the listener set with L{on_response}.

        @return: a L{Deferred} firing with the hub's msg-id, or failing as
            for L{notify}.
        """
        try:
            msg = as_message(message)
        except ValueError as e:
            return fail(e)
        return self._link.request("call", recipient_id, msg_tag, msg)

    def send_call_all(self, msg_tag: str, message: Any) -> Deferred:
        """
        Low-level C{samp.hub.callAll}; see L{send_call}.

        @return: a L{Deferred} firing with the map recipient id to msg-id,
            or failing as for L{notify}.
        """
        try:
            msg = as_message(message)
        except ValueError as e:
            return fail(e)
        return self._link.request("callAll", msg_tag, msg)

    def on_response(self, msg_tag: str, listener: ResponseListener) -> None:
        """
        Call C{listener(responder_id, msg_tag, response)} for responses to
        calls sent with C{msg_tag} through L{send_call}/L{send_call_all}.
        """
        self.pending.listen(msg_tag, listener)

    def remove_response_listener(self, msg_tag: str) -> None:
        """
        Stop calling the listener set for C{msg_tag} with L{on_response}.
        """
        self.pending.unlisten(msg_tag)

    # ------------------------------------------------------------------
    # Handlers

    def add_handler(
        self,
        pattern: str,
        handler: Handler,
        annotations: Optional[Mapping[str, Any]] = None,
        *,
        auto_reply: bool = True,
    ) -> Registration:
        """
        Handle messages whose MType matches C{pattern}; subscriptions are
        declared again shortly after (if connected).

        @param handler: called with a L{Message}; see L{samptwist.client.handlers}.
        @param auto_reply: reply to calls with the handler's result.
        @return: the handler's L{Registration}.
        """
        entry = self.handlers.add(pattern, handler, annotations, auto_reply)
        self._subscriptions_changed()
        return entry

    def handler(
        self, pattern: str, annotations: Optional[Mapping[str, Any]] = None
    ) -> Callable[[Handler], Handler]:
        """
        Decorator form of L{add_handler}.

        @return: a decorator registering the function and returning it.
        """

        def decorate(fn: Handler) -> Handler:
            self.add_handler(pattern, fn, annotations)
            return fn

        return decorate

    def remove_handler(self, pattern: str) -> None:
        """
        Stop handling C{pattern}.
        """
        self.handlers.remove(pattern)
        self._subscriptions_changed()

    def _subscriptions_changed(self) -> None:
        if self.is_connected and not self._link.connecting and self._resubscribe is None:
            self._resubscribe = self.reactor.callLater(0, self._redeclare)

    def _cancel_resubscribe(self) -> None:
        if self._resubscribe is not None and self._resubscribe.active():
            self._resubscribe.cancel()
        self._resubscribe = None

    def _redeclare(self) -> None:
        self._resubscribe = None
        self.declare_subscriptions().addErrback(
            lambda f: self.log.warn("declaring subscriptions failed: {f}", f=f.getErrorMessage())
        )

    # ------------------------------------------------------------------
    # Incoming callbacks (IReceiver, called by the callback resource)

    def receive_notification(self, sender_id: str, message: Dict[str, Any]) -> None:
        """
        A notification from C{sender_id}: handed to its handler.
        """
        self._dispatcher.dispatch(sender_id, None, message)

    def receive_call(self, sender_id: str, msg_id: str, message: Dict[str, Any]) -> None:
        """
        A call from C{sender_id}: handed to its handler, answered later.
        """
        self._dispatcher.dispatch(sender_id, msg_id, message)

    def receive_response(self, responder_id: str, msg_tag: str, response: Dict[str, Any]) -> None:
        """
        A response to a call of this client: fires the call's L{Deferred},
        or goes to the msg-tag's listener.
        """
        self.pending.route(responder_id, msg_tag, response)

    # ------------------------------------------------------------------
    # Conveniences

    def wait_for_client(self, name: str) -> Deferred:
        """
        @return: a cancellable L{Deferred} firing with the id of a client
            named C{name} once the tracker knows one.
        @raise RuntimeError: if tracking is off.
        """
        if self.tracker is None:
            raise RuntimeError("client tracking is off")
        return self.tracker.when(lambda t: t.find(name))
