"""
A blocking facade for scripts and notebooks, with the method names and
signatures of pyvo.samp's (formerly astropy.samp's) C{SAMPIntegratedClient}:
a script ports by changing its import::

    from samptwist.client.blocking import SAMPIntegratedClient

The Twisted reactor runs in one background daemon thread, started on first
use; every method hands its work to that thread and waits for the result.
The reactor is stopped at interpreter exit (clients unregister first), and
the daemon thread can never keep the interpreter alive.  Nothing here
touches an asyncio loop, so it works inside Jupyter's running loop.

Handlers bound with C{bind_receive_*} run in the reactor's thread pool, so
they may call this facade's blocking methods (C{reply} in particular).
"""

from __future__ import annotations

import atexit
import queue
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from .._log import Logger
from ..errors import SAMPHubError
from .connection import SAMPClient
from .handlers import Message, ResponseError, make_message

log = Logger()

#: Seconds allowed for an ordinary blocking call, on top of its own timeout.
DEFAULT_TIMEOUT = 60.0


class ReactorThread:
    """
    The global reactor running in a daemon thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None

    @property
    def reactor(self) -> Any:
        from twisted.internet import reactor

        return reactor

    def ensure_running(self, timeout: float = 30.0) -> None:
        """
        Start the reactor thread unless it runs already.

        @raise RuntimeError: if the reactor is run by someone else (use
            L{SAMPClient} directly in a Twisted program) or does not start.
        """
        with self._lock:
            if self.thread is not None and self.thread.is_alive():
                return
            reactor = self.reactor
            if reactor.running:
                raise RuntimeError(
                    "the Twisted reactor is already running in this process; "
                    "use samptwist.client.SAMPClient from reactor code instead"
                )
            started = threading.Event()
            reactor.callWhenRunning(started.set)
            self.thread = threading.Thread(
                target=reactor.run,
                kwargs={"installSignalHandlers": False},
                name="samptwist-reactor",
                daemon=True,
            )
            self.thread.start()
            if not started.wait(timeout):
                raise RuntimeError("the Twisted reactor did not start")
            atexit.register(self.stop)

    def stop(self, timeout: float = 10.0) -> None:
        """
        Stop the reactor (clients unregister in its shutdown triggers) and
        wait for its thread, at most C{timeout} seconds.
        """
        thread = self.thread
        if thread is None or not thread.is_alive():
            return
        try:
            self.reactor.callFromThread(self.reactor.stop)
        except Exception:
            return
        thread.join(timeout)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: Optional[float] = None,
            **kwargs: Any) -> Any:
        """
        Call C{fn(*args, **kwargs)} in the reactor thread and wait for its
        result (a L{Deferred} is waited for).

        @param timeout: seconds to wait; C{None} for no limit.
        @raise RuntimeError: when called from the reactor thread itself,
            which would deadlock.
        @raise TimeoutError: when the timeout passes (the work is cancelled).
        """
        self.ensure_running()
        if threading.current_thread() is self.thread:
            raise RuntimeError(
                "blocking SAMP call from the reactor thread would deadlock; "
                "call it from another thread"
            )
        box: queue.Queue[Any] = queue.Queue(1)
        holder: List[Deferred] = []

        def start() -> None:
            d = maybeDeferred(fn, *args, **kwargs)
            if timeout is not None:
                d.addTimeout(timeout, self.reactor)
            holder.append(d)
            d.addBoth(box.put)

        self.reactor.callFromThread(start)
        try:
            result = box.get()
        except BaseException:  # KeyboardInterrupt: stop the work too
            if holder:
                self.reactor.callFromThread(holder[0].cancel)
            raise
        if isinstance(result, Failure):
            result.raiseException()
        return result


_reactor_thread = ReactorThread()


def run_in_reactor(fn: Callable[..., Any], *args: Any, timeout: Optional[float] = None,
                   **kwargs: Any) -> Any:
    """
    Run C{fn} in the background reactor thread and return its (waited-for)
    result; see L{ReactorThread.run}.
    """
    return _reactor_thread.run(fn, *args, timeout=timeout, **kwargs)


class SAMPIntegratedClient:
    """
    A blocking SAMP client with pyvo.samp's C{SAMPIntegratedClient} API.

    @param name: C{samp.name} metadata.
    @param description: C{samp.description.text} metadata.
    @param metadata: other metadata.
    @param addr: interface of the callback server (default loopback).
    @param port: its port (default: any free one).
    @param callable: whether to receive messages.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        description: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        addr: Optional[str] = None,
        port: int = 0,
        callable: bool = True,
    ) -> None:
        self._args: Dict[str, Any] = dict(name=name, description=description, metadata=metadata)
        self._listen = f"tcp:{int(port)}:interface={addr or '127.0.0.1'}"
        self._callable = callable
        self.client: Optional[SAMPClient] = None
        self._notifications: Dict[str, Callable[..., Any]] = {}
        self._calls: Dict[str, Callable[..., Any]] = {}
        self._annotations: Dict[str, Dict[str, Any]] = {}
        self._response_fns: Dict[str, Callable[..., Any]] = {}

    # -- internals

    def _run(self, fn: Callable[..., Any], *args: Any, timeout: Optional[float] = DEFAULT_TIMEOUT,
             **kwargs: Any) -> Any:
        return run_in_reactor(fn, *args, timeout=timeout, **kwargs)

    def _c(self) -> SAMPClient:
        if self.client is None or not self.client.is_connected:
            raise SAMPHubError("not connected to a SAMP hub")
        return self.client

    # -- connection

    @property
    def is_connected(self) -> bool:
        """Whether the client is registered with a hub."""
        return self.client is not None and self.client.is_connected

    def connect(self, hub: Any = None, hub_params: Optional[Mapping[str, str]] = None,
                pool_size: int = 20) -> None:
        """
        Connect to the hub named by C{hub_params} (lockfile contents), by
        C{hub} (an object with a C{params} map, such as a running hub
        server), or found as usual (C{SAMP_HUB}, C{~/.samp}).
        C{pool_size} is accepted for compatibility and ignored.
        """
        params = dict(hub_params) if hub_params else None
        if params is None and hub is not None:
            params = dict(getattr(hub, "params", {}) or {})
        extra: Dict[str, Any] = {}
        if params:
            extra = dict(hub_url=params["samp.hub.xmlrpc.url"], secret=params["samp.secret"])

        def make() -> Deferred:
            self.client = SAMPClient(
                callable=self._callable, listen=self._listen, **self._args, **extra
            )
            for pattern in set(self._notifications) | set(self._calls):
                self._install(pattern)
            for tag in self._response_fns:
                self._install_response(self.client, tag)
            return self.client.connect()

        self._run(make)

    def disconnect(self) -> None:
        """Unregister and close the connection."""
        if self.client is not None:
            client, self.client = self.client, None
            self._run(client.disconnect)

    # -- hub methods, by pyvo's names

    def ping(self) -> None:
        self._run(lambda: self._c().ping())

    def declare_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._run(lambda: self._c().declare_metadata(metadata))

    def get_metadata(self, client_id: str) -> Dict[str, Any]:
        return self._run(lambda: self._c().get_metadata(client_id))  # type: ignore[no-any-return]

    def get_subscriptions(self, client_id: str) -> Dict[str, Any]:
        return self._run(lambda: self._c().get_subscriptions(client_id))  # type: ignore

    def get_registered_clients(self) -> List[str]:
        return self._run(lambda: self._c().get_registered_clients())  # type: ignore

    def get_subscribed_clients(self, mtype: str) -> Dict[str, Any]:
        return self._run(lambda: self._c().get_subscribed_clients(mtype))  # type: ignore

    def notify(self, recipient_id: str, message: Mapping[str, Any]) -> None:
        self._run(lambda: self._c().notify(recipient_id, dict(message)))

    def enotify(self, recipient_id: str, mtype: str, **params: Any) -> None:
        self.notify(recipient_id, make_message(mtype, params))

    def notify_all(self, message: Mapping[str, Any]) -> List[str]:
        return self._run(lambda: self._c().notify_all(dict(message)))  # type: ignore

    def enotify_all(self, mtype: str, **params: Any) -> List[str]:
        return self.notify_all(make_message(mtype, params))

    def call(self, recipient_id: str, msg_tag: str, message: Mapping[str, Any]) -> str:
        """Send a call; the response goes to C{bind_receive_response(msg_tag)}.
        @return: the msg-id."""
        return self._run(  # type: ignore[no-any-return]
            lambda: self._c().send_call(recipient_id, msg_tag, dict(message))
        )

    def ecall(self, recipient_id: str, msg_tag: str, mtype: str, **params: Any) -> str:
        return self.call(recipient_id, msg_tag, make_message(mtype, params))

    def call_all(self, msg_tag: str, message: Mapping[str, Any]) -> Dict[str, str]:
        """@return: recipient id to msg-id."""
        return self._run(lambda: self._c().send_call_all(msg_tag, dict(message)))  # type: ignore

    def ecall_all(self, msg_tag: str, mtype: str, **params: Any) -> Dict[str, str]:
        return self.call_all(msg_tag, make_message(mtype, params))

    def call_and_wait(self, recipient_id: str, message: Mapping[str, Any],
                      timeout: Any) -> Dict[str, Any]:
        """
        @param timeout: seconds (a SAMP int string, as in pyvo, or a number);
            0 or less waits for ever.
        @return: the response map, whatever its status (as pyvo does).
        """
        seconds = float(timeout)

        def go() -> Deferred:
            client = self._c()
            d = client.call_and_wait(recipient_id, dict(message), timeout=seconds)
            d.addErrback(_response_of_call_error)
            return d

        return self._run(go, timeout=None)  # type: ignore[no-any-return]

    def ecall_and_wait(self, recipient_id: str, mtype: str, timeout: Any,
                       **params: Any) -> Dict[str, Any]:
        return self.call_and_wait(recipient_id, make_message(mtype, params), timeout)

    def reply(self, msg_id: str, response: Mapping[str, Any]) -> None:
        self._run(lambda: self._c().reply(msg_id, dict(response)))

    def ereply(self, msg_id: str, status: str, result: Optional[Mapping[str, Any]] = None,
               error: Optional[Mapping[str, Any]] = None) -> None:
        response: Dict[str, Any] = {"samp.status": status}
        if result is not None:
            response["samp.result"] = dict(result)
        if error is not None:
            response["samp.error"] = dict(error)
        self.reply(msg_id, response)

    def get_private_key(self) -> Optional[str]:
        return self.client._key if self.client is not None else None

    def get_public_id(self) -> Optional[str]:
        return self.client.self_id if self.client is not None else None

    # -- binding handlers

    def bind_receive_notification(self, mtype: str, function: Callable[..., Any],
                                  declare: bool = True,
                                  metadata: Optional[Mapping[str, Any]] = None) -> None:
        """
        Call C{function(private_key, sender_id, mtype, params, extra)} for
        notifications matching C{mtype} (a pattern).
        """
        self._notifications[mtype] = function
        self._bound(mtype, metadata, declare)

    def bind_receive_call(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                          metadata: Optional[Mapping[str, Any]] = None) -> None:
        """
        Call C{function(private_key, sender_id, msg_id, mtype, params, extra)}
        for calls matching C{mtype}; it must call L{reply} (if it raises, a
        C{samp.error} reply is sent for it).
        """
        self._calls[mtype] = function
        self._bound(mtype, metadata, declare)

    def bind_receive_message(self, mtype: str, function: Callable[..., Any],
                             declare: bool = True,
                             metadata: Optional[Mapping[str, Any]] = None) -> None:
        """Bind C{function} for both notifications and calls."""
        self.bind_receive_notification(mtype, function, declare=False, metadata=metadata)
        self.bind_receive_call(mtype, function, declare=declare, metadata=metadata)

    def bind_receive_response(self, msg_tag: str, function: Callable[..., Any]) -> None:
        """
        Call C{function(private_key, responder_id, msg_tag, response)} for
        responses to calls sent with C{msg_tag}.
        """
        self._response_fns[msg_tag] = function
        if self.client is not None:
            client = self.client
            self._run(lambda: self._install_response(client, msg_tag))

    def _install_response(self, client: SAMPClient, msg_tag: str) -> None:
        function = self._response_fns[msg_tag]

        def listener(responder_id: str, tag: str, response: Dict[str, Any]) -> None:
            d = deferToThread(function, client._key, responder_id, tag, response)
            d.addErrback(lambda f: log.failure("response handler failed", f))

        client.on_response(msg_tag, listener)

    def unbind_receive_notification(self, mtype: str, declare: bool = True) -> None:
        self._notifications.pop(mtype, None)
        self._bound(mtype, None, declare)

    def unbind_receive_call(self, mtype: str, declare: bool = True) -> None:
        self._calls.pop(mtype, None)
        self._bound(mtype, None, declare)

    def unbind_receive_response(self, msg_tag: str) -> None:
        self._response_fns.pop(msg_tag, None)
        if self.client is not None:
            client = self.client
            self._run(lambda: client.remove_response_listener(msg_tag))

    def declare_subscriptions(self, subscriptions: Optional[Mapping[str, Any]] = None) -> None:
        """
        Declare the subscriptions implied by the bound handlers (plus
        C{subscriptions}, whose extra patterns get no handler).
        """
        extra = dict(subscriptions or {})

        def go() -> Deferred:
            client = self._c()
            for pattern, notes in extra.items():
                if pattern not in client.handlers:
                    client.handlers.add(pattern, lambda m: None, notes)
            return client.declare_subscriptions()

        self._run(go)

    def _ensure_client(self) -> SAMPClient:
        if self.client is None:
            raise SAMPHubError("connect() first")
        return self.client

    def _bound(self, pattern: str, metadata: Optional[Mapping[str, Any]], declare: bool) -> None:
        if metadata is not None:
            self._annotations[pattern] = dict(metadata)
        if self.client is None:
            return

        def go() -> Optional[Deferred]:
            self._install(pattern)
            if declare and self.client is not None and self.client.is_connected:
                return self.client.declare_subscriptions()
            return None

        self._run(go)

    def _install(self, pattern: str) -> None:
        """Reactor thread: (re)install the dispatcher for C{pattern}."""
        assert self.client is not None
        if pattern not in self._notifications and pattern not in self._calls:
            self.client.handlers.remove(pattern)
            return
        notification = self._notifications.get(pattern)
        call = self._calls.get(pattern)

        def dispatch(message: Message) -> Any:
            key = self.get_private_key()
            if message.is_call:
                if call is None:
                    raise ResponseError(f"{message.mtype} is only accepted as a notification")
                return deferToThread(call, key, message.sender_id, message.msg_id,
                                     message.mtype, message.params, message.message)
            if notification is not None:
                return deferToThread(notification, key, message.sender_id, message.mtype,
                                     message.params, message.message)
            return None

        self.client.handlers.add(
            pattern, dispatch, self._annotations.get(pattern), auto_reply=False
        )


def _response_of_call_error(f: Failure) -> Any:
    from ..errors import SAMPCallError

    if f.check(SAMPCallError):
        return f.value.response  # type: ignore[union-attr]
    return f
