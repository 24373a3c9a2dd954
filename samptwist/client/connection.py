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
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.python.failure import Failure

from .._log import Logger
from ..constants import DEFAULT_LISTEN, PING  # noqa: F401 (DEFAULT_LISTEN re-exported)
from ..constants import DISCONNECT as HUB_DISCONNECT
from ..constants import SHUTDOWN as HUB_SHUTDOWN
from ..errors import SAMPHubError
from ..lockfile import LockInfo
from ..mtype import is_mtype
from ..types import check_map
from .callback import CallbackResource, CallbackServer
from .discovery import find_hub
from .errors import BroadcastTimeout, HubUnreachable, NotConnected
from .handlers import (
    Handler,
    HandlerTable,
    Message,
    Registration,
    as_message,
    check_response,
    error,
    ok,
    raise_for_status,
    run_handler,
)
from .observer import Observable
from .proxy import HubProxy, IPoster
from .reconnect import Reconnector
from .tracker import EVENTS as TRACKER_EVENTS
from .tracker import ClientTracker

ResponseCallback = Callable[[str, Dict[str, Any]], Any]


class _Pending:
    """
    A call (or callAll) waiting for its response(s), keyed by msg-tag.
    """

    def __init__(
        self,
        client: SAMPClient,
        tag: str,
        broadcast: bool,
        on_response: Optional[ResponseCallback] = None,
    ) -> None:
        self.client = client
        self.tag = tag
        self.broadcast = broadcast
        self.on_response = on_response
        self.responses: Dict[str, Dict[str, Any]] = {}
        self.recipients: Optional[List[str]] = None
        self.hub_call: Optional[Deferred] = None
        self.d: Deferred = Deferred(self._cancel)

    def _cancel(self, _: Deferred) -> None:
        self.client._pending.pop(self.tag, None)
        if self.hub_call is not None and not self.hub_call.called:
            self.hub_call.cancel()

    def got(self, responder: str, response: Dict[str, Any]) -> None:
        if self.d.called:
            return
        if not self.broadcast:
            self.client._pending.pop(self.tag, None)
            try:
                self.d.callback(raise_for_status(response, responder))
            except Exception:
                self.d.errback()
            return
        self.responses[responder] = response
        if self.on_response is not None:
            try:
                self.on_response(responder, response)
            except Exception:
                self.client.log.failure("callAll on_response callback failed")
        self.check_done()

    def sent(self, recipients: Any) -> None:
        if self.broadcast and not self.d.called:
            self.recipients = sorted(recipients) if isinstance(recipients, dict) else []
            self.check_done()

    def check_done(self) -> None:
        if self.recipients is not None and set(self.recipients) <= set(self.responses):
            self.client._pending.pop(self.tag, None)
            self.d.callback(dict(self.responses))

    def fail(self, f: Failure) -> None:
        self.client._pending.pop(self.tag, None)
        if not self.d.called:
            self.d.errback(f)

    def timed_out(self, result: Any, timeout: float) -> Any:
        if isinstance(result, Failure) and result.check(CancelledError):
            if self.broadcast:
                missing = [r for r in self.recipients or [] if r not in self.responses]
                return Failure(BroadcastTimeout(dict(self.responses), missing))
            return Failure(TimeoutError(f"no response within {timeout:g}s"))
        return result


class SAMPClient:
    """
    One connection of this program to a SAMP hub (Standard Profile).

    @ivar reactor: the reactor (or a L{task.Clock<twisted.internet.task.Clock>} in tests).
    @ivar metadata: the metadata declared at every (re)connection.
    @ivar handlers: the L{HandlerTable}; its patterns are the subscriptions.
    @ivar tracker: the L{ClientTracker}, or C{None} if tracking is off.
    @ivar self_id: this client's public id while connected.
    @ivar hub_id: the hub's public id while connected.
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
        @param poster: the HTTP client (default: treq over a persistent
            pool); tests pass an in-memory one.
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
        self._discovery: Dict[str, Any] = dict(
            lockfile=lockfile, url=hub_url, secret=secret, environ=environ
        )
        self._poster = poster
        self.hub_timeout = hub_timeout
        self.wait_grace = wait_grace
        self.tracker: Optional[ClientTracker] = ClientTracker(self) if track else None
        self.connected: Observable[SAMPClient] = Observable(reactor, "connected")
        self.disconnected: Observable[str] = Observable(reactor, "disconnected")
        self.self_id: Optional[str] = None
        self.hub_id: Optional[str] = None
        self.hub_info: Optional[LockInfo] = None
        self.proxy: Optional[HubProxy] = None
        self._key: Optional[str] = None
        self._pending: Dict[str, _Pending] = {}
        self._response_listeners: Dict[str, Callable[[str, str, Dict[str, Any]], Any]] = {}
        self._tag_counter = 0
        self._tag_prefix = "st" + secrets.token_hex(3)
        self._connecting: Optional[Deferred] = None
        self._connect_waiters: List[Deferred] = []
        self._resubscribe: Any = None
        self._trigger: Any = None
        self._unregister_on_shutdown = unregister_on_shutdown
        self._last_secret: Optional[str] = None
        self.reconnector: Optional[Reconnector] = None
        if reconnect:
            self.reconnector = Reconnector(
                reactor,
                is_connected=lambda: self.is_connected,
                find_hub=lambda: find_hub(self.reactor, **self._discovery),
                connect=self.connect,
                ping=self.ping,
                lost=self._lost,
                interval=reconnect_interval,
                heartbeat=heartbeat,
            )

    # ------------------------------------------------------------------
    # Connection life cycle

    @property
    def is_connected(self) -> bool:
        """
        Whether this client is registered with a hub.
        """
        return self._key is not None

    def connect(self) -> Deferred:
        """
        Find the hub, register, open the callback server, declare metadata
        and subscriptions and load the tracker.

        @return: a L{Deferred} firing with this client, or failing with
            L{LockfileError} (no hub running), L{HubUnreachable} (the
            lockfile names a hub that does not answer) or L{SAMPHubError}
            (the hub refused, e.g. a wrong secret).
        """
        if self.is_connected:
            return succeed(self)
        waiter: Deferred = Deferred()
        self._connect_waiters.append(waiter)
        if self._connecting is None:
            self._connecting = Deferred.fromCoroutine(self._connect())
            self._connecting.addBoth(self._connect_done)
        return waiter

    def _connect_done(self, result: Any) -> None:
        self._connecting = None
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            _chain(result, waiter)

    async def _connect(self) -> SAMPClient:
        info = await find_hub(self.reactor, **self._discovery)
        proxy = HubProxy(info.url, self.reactor, poster=self._poster, timeout=self.hub_timeout)
        try:
            registration = await proxy.call("register", info.secret)
        except BaseException:
            await _quietly(proxy.close())
            raise
        if not isinstance(registration, dict) or not isinstance(
            registration.get("samp.private-key"), str
        ):
            await _quietly(proxy.close())
            raise SAMPHubError(f"hub answered register with {registration!r:.200}")
        self.proxy = proxy
        self.hub_info = info
        self._key = registration["samp.private-key"]
        self.self_id = str(registration.get("samp.self-id", ""))
        self.hub_id = str(registration.get("samp.hub-id", ""))
        self.log.info(
            "registered with the hub at {url} as {client_id}", url=info.url, client_id=self.self_id
        )
        try:
            if self.callable:
                url = self._callback_url or await self._server.start()
                self.callback_resource.private_key = self._key
                await self._hub("setXmlrpcCallback", url)
            if self.metadata:
                await self._hub("declareMetadata", self.metadata)
            if self.callable:
                await self._hub("declareSubscriptions", self.subscriptions())
            if self.tracker is not None:
                await self.tracker.refresh()
        except BaseException:
            await _quietly(self._hub("unregister", timeout=5.0))
            await self._teardown(None)
            raise
        if self._unregister_on_shutdown and hasattr(self.reactor, "addSystemEventTrigger"):
            self._trigger = self.reactor.addSystemEventTrigger(
                "before", "shutdown", self._reactor_shutdown
            )
        if self.reconnector is not None:
            self.reconnector.start_heartbeat()
        self.connected.emit(self)
        return self

    def disconnect(self, timeout: float = 5.0) -> Deferred:
        """
        Unregister (CLI-LIB-4), stop the callback server and close
        connections.  Pending calls fail with L{NotConnected}; automatic
        reconnection stops.

        @param timeout: seconds allowed for the hub to answer unregister.
        @return: a L{Deferred} firing with C{None}; it never fails.
        """
        if self.reconnector is not None:
            self.reconnector.stop()
        return Deferred.fromCoroutine(self._disconnect(timeout))

    async def _disconnect(self, timeout: float) -> None:
        if self._connecting is not None:
            await _quietly(self._connecting)
        if self._key is None:
            await self._teardown(None)
            return
        try:
            await self._hub("unregister", timeout=timeout)
        except Exception as e:
            self.log.info("unregister failed: {error}", error=e)
        self.log.info("unregistered {client_id}", client_id=self.self_id)
        await self._teardown("closed")

    def _reactor_shutdown(self) -> Deferred:
        self._trigger = None
        return self.disconnect(timeout=3.0)

    async def _teardown(self, reason: Optional[str]) -> None:
        was = self._key is not None
        if self.reconnector is not None:
            self.reconnector.stop_heartbeat()
        if self._key is not None and self.hub_info is not None:
            self._last_secret = self.hub_info.secret
        self._key = None
        self.callback_resource.private_key = None
        if self._trigger is not None:
            try:
                self.reactor.removeSystemEventTrigger(self._trigger)
            except (ValueError, KeyError):
                pass
            self._trigger = None
        if self._resubscribe is not None and self._resubscribe.active():
            self._resubscribe.cancel()
        self._resubscribe = None
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            entry.fail(Failure(NotConnected(f"connection to the hub ended ({reason or 'closed'})")))
        if self.tracker is not None and self.tracker.clients:
            self.tracker.clear()
        await _quietly(self._server.stop())
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            await _quietly(proxy.close())
        if was and reason is not None:
            self.disconnected.emit(reason)

    def _lost(self, reason: str) -> None:
        if self._key is None:
            return
        self.log.info("lost the hub ({reason})", reason=reason)
        Deferred.fromCoroutine(self._teardown(reason))
        if self.reconnector is not None:
            self.reconnector.start(None if reason == "disconnect" else self._last_secret)

    # ------------------------------------------------------------------
    # Talking to the hub

    def _hub(self, method: str, *args: Any, timeout: Optional[float] = -1.0) -> Deferred:
        if self._key is None or self.proxy is None:
            d: Deferred = Deferred()
            d.errback(NotConnected(f"cannot {method}: not connected to a hub"))
            return d
        d = self.proxy.call(method, self._key, *args, timeout=timeout)
        d.addErrback(self._hub_failed)
        return d

    def _hub_failed(self, f: Failure) -> Failure:
        if f.check(HubUnreachable):
            self.reactor.callLater(0, self._lost, "unreachable")
        return f

    def ping(self) -> Deferred:
        """
        C{samp.hub.ping}.

        @return: a L{Deferred} firing with C{None} if the hub answers.
        """
        if self.proxy is None:
            return _failed(NotConnected("cannot ping: not connected to a hub"))
        return self.proxy.call("ping").addCallback(lambda _: None)

    def declare_metadata(self, metadata: Optional[Mapping[str, Any]] = None) -> Deferred:
        """
        Replace this client's metadata (DATA-META-3); it is declared again
        after every reconnection.

        @return: a L{Deferred} firing with C{None} once the hub has it (at
            once if not connected).
        """
        if metadata is not None:
            self.metadata = check_map(dict(metadata), "metadata")
        if not self.is_connected:
            return succeed(None)
        return self._hub("declareMetadata", self.metadata).addCallback(lambda _: None)

    def subscriptions(self) -> Dict[str, Dict[str, Any]]:
        """
        @return: the subscriptions map this client declares: its handlers'
            patterns plus the built-in ones (ping, hub shutdown and
            disconnect, and the tracker's events).
        """
        subs: Dict[str, Dict[str, Any]] = {PING: {}, HUB_SHUTDOWN: {}, HUB_DISCONNECT: {}}
        if self.tracker is not None:
            subs.update({mtype: {} for mtype in TRACKER_EVENTS})
        subs.update(self.handlers.subscriptions())
        return subs

    def _builtin_mtypes(self) -> Any:
        if self.tracker is not None:
            return (PING, HUB_SHUTDOWN, HUB_DISCONNECT) + TRACKER_EVENTS
        return (PING, HUB_SHUTDOWN, HUB_DISCONNECT)

    def declare_subscriptions(self) -> Deferred:
        """
        Declare L{subscriptions} now.

        @return: a L{Deferred} firing with C{None} (at once if not connected).
        """
        if self._resubscribe is not None and self._resubscribe.active():
            self._resubscribe.cancel()
        self._resubscribe = None
        if not self.is_connected or not self.callable:
            return succeed(None)
        return self._hub("declareSubscriptions", self.subscriptions()).addCallback(lambda _: None)

    def get_metadata(self, client_id: str) -> Deferred:
        """
        @return: a L{Deferred} firing with the metadata map of C{client_id}.
        """
        return self._hub("getMetadata", client_id)

    def get_subscriptions(self, client_id: str) -> Deferred:
        """
        @return: a L{Deferred} firing with the subscriptions map of
            C{client_id}.
        """
        return self._hub("getSubscriptions", client_id)

    def get_registered_clients(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the list of other clients' ids
            (the hub's included).
        """
        return self._hub("getRegisteredClients")

    def get_subscribed_clients(self, mtype: str) -> Deferred:
        """
        @return: a L{Deferred} firing with a map client id to annotation map
            of the other clients subscribed to C{mtype}.
        """
        return self._hub("getSubscribedClients", mtype)

    def notify(
        self, recipient_id: str, message: Any, params: Optional[Mapping[str, Any]] = None
    ) -> Deferred:
        """
        Send a notification to one client.

        @param message: a message map, or an MType with C{params}.
        @return: a L{Deferred} firing with C{None} once the hub accepted it.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return _failed(e)
        return self._hub("notify", recipient_id, msg).addCallback(lambda _: None)

    def notify_all(self, message: Any, params: Optional[Mapping[str, Any]] = None) -> Deferred:
        """
        Send a notification to every subscribed client.

        @return: a L{Deferred} firing with the list of recipient ids.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return _failed(e)
        return self._hub("notifyAll", msg).addCallback(
            lambda ids: list(ids) if isinstance(ids, list) else []
        )

    def new_tag(self) -> str:
        """
        @return: a msg-tag not used before by this client.
        """
        self._tag_counter += 1
        return f"{self._tag_prefix}-{self._tag_counter}"

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
            (the hub refused the call), L{TimeoutError} or L{NotConnected}.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return _failed(e)
        pending = self._start_pending(False, None)
        pending.hub_call = self._hub("call", recipient_id, pending.tag, msg)
        pending.hub_call.addErrback(pending.fail)
        return self._finish_pending(pending, timeout)

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
            did arrive) after C{timeout} seconds, or L{SAMPHubError}.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return _failed(e)
        pending = self._start_pending(True, on_response)
        pending.hub_call = self._hub("callAll", pending.tag, msg)
        pending.hub_call.addCallbacks(pending.sent, pending.fail)
        return self._finish_pending(pending, timeout)

    def _start_pending(self, broadcast: bool, on_response: Optional[ResponseCallback]) -> _Pending:
        pending = _Pending(self, self.new_tag(), broadcast, on_response)
        self._pending[pending.tag] = pending
        return pending

    def _finish_pending(self, pending: _Pending, timeout: Optional[float]) -> Deferred:
        if timeout is not None:
            pending.d.addTimeout(timeout, self.reactor, onTimeoutCancel=pending.timed_out)
        return pending.d

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
            hub's own timeout fault) or L{TimeoutError}.
        """
        try:
            msg = as_message(message, params)
        except ValueError as e:
            return _failed(e)
        if timeout is None or timeout <= 0:
            hub_timeout, client_timeout = "0", None
        else:
            hub_timeout = str(max(1, math.ceil(timeout)))
            client_timeout = timeout + self.wait_grace
        d = self._hub("callAndWait", recipient_id, msg, hub_timeout, timeout=client_timeout)
        d.addCallback(raise_for_status, recipient_id)
        return d

    def reply(self, msg_id: str, response: Mapping[str, Any]) -> Deferred:
        """
        Answer a call received by a handler registered with
        C{auto_reply=False} (CLI-CB-2: exactly once).

        @return: a L{Deferred} firing with C{None} once the hub took it.
        """
        try:
            checked = check_response(dict(response))
        except ValueError as e:
            return _failed(e)
        return self._hub("reply", msg_id, checked).addCallback(lambda _: None)

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
        """
        entry = self.handlers.add(pattern, handler, annotations, auto_reply)
        self._subscriptions_changed()
        return entry

    def handler(
        self, pattern: str, annotations: Optional[Mapping[str, Any]] = None
    ) -> Callable[[Handler], Handler]:
        """
        Decorator form of L{add_handler}.
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
        if self.is_connected and self._connecting is None and self._resubscribe is None:
            self._resubscribe = self.reactor.callLater(0, self._redeclare)

    def _redeclare(self) -> None:
        self._resubscribe = None
        self.declare_subscriptions().addErrback(
            lambda f: self.log.warn("declaring subscriptions failed: {f}", f=f.getErrorMessage())
        )

    def on_response(
        self, msg_tag: str, listener: Callable[[str, str, Dict[str, Any]], Any]
    ) -> None:
        """
        Call C{listener(responder_id, msg_tag, response)} for responses to
        calls sent with C{msg_tag} through L{send_call}/L{send_call_all}.
        """
        self._response_listeners[msg_tag] = listener

    def remove_response_listener(self, msg_tag: str) -> None:
        self._response_listeners.pop(msg_tag, None)

    def send_call(self, recipient_id: str, msg_tag: str, message: Any) -> Deferred:
        """
        Low-level C{samp.hub.call} with a msg-tag of the caller's choosing;
        the response goes to the listener set with L{on_response}.

        @return: a L{Deferred} firing with the hub's msg-id.
        """
        try:
            msg = as_message(message)
        except ValueError as e:
            return _failed(e)
        return self._hub("call", recipient_id, msg_tag, msg)

    def send_call_all(self, msg_tag: str, message: Any) -> Deferred:
        """
        Low-level C{samp.hub.callAll}; see L{send_call}.

        @return: a L{Deferred} firing with the map recipient id to msg-id.
        """
        try:
            msg = as_message(message)
        except ValueError as e:
            return _failed(e)
        return self._hub("callAll", msg_tag, msg)

    # ------------------------------------------------------------------
    # Incoming callbacks (IReceiver)

    def receive_notification(self, sender_id: str, message: Dict[str, Any]) -> None:
        self._dispatch(sender_id, None, message)

    def receive_call(self, sender_id: str, msg_id: str, message: Dict[str, Any]) -> None:
        self._dispatch(sender_id, msg_id, message)

    def receive_response(self, responder_id: str, msg_tag: str, response: Dict[str, Any]) -> None:
        pending = self._pending.get(msg_tag)
        if pending is not None:
            pending.got(responder_id, response)
            return
        listener = self._response_listeners.get(msg_tag)
        if listener is not None:
            try:
                listener(responder_id, msg_tag, response)
            except Exception:
                self.log.failure("response listener for {tag} failed", tag=msg_tag)
            return
        self.log.debug(
            "ignoring response from {responder} to {tag} (late or cancelled)",
            responder=responder_id,
            tag=msg_tag,
        )

    def _dispatch(self, sender_id: str, msg_id: Optional[str], message: Dict[str, Any]) -> None:
        mtype = message.get("samp.mtype")
        params = message.get("samp.params", {})
        if not is_mtype(mtype) or not isinstance(params, dict):
            if msg_id is not None:
                self._send_reply(msg_id, error("malformed message: bad samp.mtype or samp.params"))
            return
        assert isinstance(mtype, str)
        msg = Message(mtype, params, sender_id, msg_id, message)
        internal = self._internal(msg)
        entry = self.handlers.lookup(mtype)
        if mtype in self._builtin_mtypes() and (entry is None or entry.pattern != mtype):
            # The library's exact subscription is more specific than a
            # user's wildcard (CLI-CB-6): only an exact handler sees these.
            entry = None
            internal = True
        if entry is None:
            if msg_id is not None:
                self._send_reply(
                    msg_id, ok() if internal else error(f"no handler for {mtype} in this client")
                )
            return
        d = run_handler(entry, msg)
        if msg_id is not None:
            d.addCallback(self._reply_with, msg_id)

    def _reply_with(self, response: Optional[Dict[str, Any]], msg_id: str) -> None:
        if response is not None:
            self._send_reply(msg_id, response)

    def _internal(self, msg: Message) -> bool:
        if msg.sender_id != self.hub_id:
            return False
        if msg.mtype in (HUB_SHUTDOWN, HUB_DISCONNECT):
            reason = "shutdown" if msg.mtype == HUB_SHUTDOWN else "disconnect"
            if msg.mtype == HUB_DISCONNECT:
                self.log.info(
                    "the hub disconnected this client: {reason}",
                    reason=msg.params.get("reason", "(no reason given)"),
                )
            # Answer the callback first, then let go of the connection.
            self.reactor.callLater(0, self._lost, reason)
            return True
        if msg.mtype in TRACKER_EVENTS and self.tracker is not None:
            self.tracker.handle(msg.mtype, msg.params)
            return True
        return False

    def _send_reply(self, msg_id: str, response: Dict[str, Any]) -> None:
        d = self._hub("reply", msg_id, response)
        d.addErrback(
            lambda f: self.log.warn(
                "reply to {msg_id} failed: {error}", msg_id=msg_id, error=f.getErrorMessage()
            )
        )

    # ------------------------------------------------------------------
    # Conveniences

    def wait_for_client(self, name: str) -> Deferred:
        """
        @return: a cancellable L{Deferred} firing with the id of a client
            named C{name} once the tracker knows one.
        """
        if self.tracker is None:
            raise RuntimeError("client tracking is off")
        return self.tracker.when(lambda t: t.find(name))


def _chain(result: Any, d: Deferred) -> None:
    if isinstance(result, Failure):
        d.errback(result)
    else:
        d.callback(result)


def _failed(e: BaseException) -> Deferred:
    d: Deferred = Deferred()
    d.errback(e)
    return d


async def _quietly(d: Deferred) -> None:
    try:
        await d
    except BaseException:
        pass
