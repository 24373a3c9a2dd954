"""
The blocking facade for scripts and notebooks: pyvo.samp's (formerly
astropy.samp's) L{SAMPHubProxy}, L{SAMPClient} and L{SAMPIntegratedClient},
with their names, arguments, attributes and exceptions, so that code written
for pyvo (subclasses included) ports by changing its import::

    from samptwist.samp import SAMPIntegratedClient

Hub calls are made from the calling thread through a standard-library
XML-RPC proxy (L{samptwist.client.serverproxy}), exactly as pyvo makes them,
so faults arrive as C{xmlrpc.client.Fault} (L{SAMPProxyError}).  Callbacks
from the hub are served by a Twisted resource on the reactor, which runs in
one background daemon thread started on first use; each callback is handed to
the reactor's thread pool, where the client's C{receive_*} methods (and so the
functions bound with C{bind_receive_*}) run and may call the blocking methods,
C{reply} in particular.  The reactor is stopped at interpreter exit (connected
clients unregister first); the daemon thread never keeps the interpreter
alive.  Nothing here touches an asyncio loop, so it works inside Jupyter.

Twisted programs use the Deferred L{samptwist.client.SAMPClient} instead.
"""

from __future__ import annotations

import atexit
import copy
import inspect
import os
import traceback
import warnings
import weakref
import xmlrpc.client
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from .._log import Logger
from .._reactorthread import reactor_thread, run_in_reactor
from ..constants import PING
from ..errors import SAMPClientError, SAMPHubError, SAMPWarning
from ..mtype import matches
from .callback import CallbackResource, CallbackServer
from .handlers import ERROR as SAMP_STATUS_ERROR
from .handlers import OK as SAMP_STATUS_OK
from .handlers import WARNING as SAMP_STATUS_WARNING
from .lockfiles import get_main_running_hub
from .serverproxy import SAMPXXEServerProxy, ServerProxyPool

log = Logger()

_reactor_thread = reactor_thread()

#: Seconds allowed for starting or stopping the callback server.
DEFAULT_TIMEOUT = 60.0


# -- the hub proxy ------------------------------------------------------------


class SAMPHubProxy:
    """
    A blocking proxy for one hub's Standard Profile methods, under pyvo's
    names (C{proxy.register(secret)}, C{proxy.notify(key, id, message)},
    ...).  Every method returns what the hub returned and raises
    L{SAMPProxyError} (an C{xmlrpc.client.Fault}) when the hub refuses, or
    C{OSError} when the hub cannot be reached.

    @ivar proxy: the L{ServerProxyPool} while connected, else C{None}.
    @ivar lockfile: the connected hub's lockfile entries (C{samp.secret},
        C{samp.hub.xmlrpc.url}, ...); empty while disconnected.
    """

    def __init__(self) -> None:
        self.proxy: Any = None
        self._connected = False
        self.lockfile: Dict[str, str] = {}

    @property
    def is_connected(self) -> bool:
        """Whether L{connect} succeeded and L{disconnect} was not called since."""
        return self._connected

    def connect(self, hub: Any = None, hub_params: Optional[Mapping[str, str]] = None,
                pool_size: int = 20) -> None:
        """
        Connect to a hub and ping it.

        @param hub: a running L{samptwist.samp.SAMPHubServer} (or anything
            with C{is_running} and C{params}).
        @param hub_params: a hub's lockfile entries.  Without either, the
            hub named by C{SAMP_HUB}, else C{~/.samp}.
        @param pool_size: how many HTTP connections calls share.
        @raise ValueError: if both C{hub} and C{hub_params} are given.
        @raise SAMPHubError: if no running hub is found, or the hub answers
            with an HTTP error.
        """
        self._connected = False
        self.lockfile = {}
        if hub is not None and hub_params is not None:
            raise ValueError("Cannot specify both hub and hub_params")
        if hub_params is None:
            if hub is not None:
                if not hub.is_running:
                    raise SAMPHubError("Hub is not running")
                hub_params = hub.params
            else:
                hub_params = get_main_running_hub()
        try:
            url = str(hub_params["samp.hub.xmlrpc.url"]).replace("\\", "")
        except KeyError:
            raise SAMPHubError("hub_params has no samp.hub.xmlrpc.url") from None
        self.proxy = ServerProxyPool(pool_size, SAMPXXEServerProxy, url, allow_none=True)
        try:
            self.ping()
        except xmlrpc.client.ProtocolError as e:
            self.proxy = None
            if e.errcode == 401:
                raise SAMPHubError(
                    "Unauthorized access. Basic Authentication required or failed."
                ) from None
            raise SAMPHubError(f"Protocol Error {e.errcode}: {e.errmsg}") from None
        except BaseException:
            self.proxy = None
            raise
        self.lockfile = copy.deepcopy(dict(hub_params))
        self._connected = True

    def disconnect(self) -> None:
        """Close the connections; calling it again does nothing."""
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy = None
        self._connected = False
        self.lockfile = {}

    @property
    def _samp_hub(self) -> Any:
        # The object hub methods are called on; a Web Profile proxy returns
        # proxy.samp.webhub instead (pyvo's own extension point).
        if self.proxy is None:
            raise SAMPHubError("the hub proxy is not connected; call connect() first")
        return self.proxy.samp.hub

    def ping(self) -> Any:
        return self._samp_hub.ping()

    def set_xmlrpc_callback(self, private_key: str, xmlrpc_addr: str) -> Any:
        return self._samp_hub.setXmlrpcCallback(private_key, xmlrpc_addr)

    def register(self, secret: str) -> Dict[str, str]:
        """@return: the registration map (C{samp.private-key}, ...)."""
        return self._samp_hub.register(secret)  # type: ignore[no-any-return]

    def unregister(self, private_key: str) -> Any:
        return self._samp_hub.unregister(private_key)

    def declare_metadata(self, private_key: str, metadata: Mapping[str, Any]) -> Any:
        return self._samp_hub.declareMetadata(private_key, metadata)

    def get_metadata(self, private_key: str, client_id: str) -> Dict[str, Any]:
        return self._samp_hub.getMetadata(private_key, client_id)  # type: ignore[no-any-return]

    def declare_subscriptions(self, private_key: str, subscriptions: Mapping[str, Any]) -> Any:
        return self._samp_hub.declareSubscriptions(private_key, subscriptions)

    def get_subscriptions(self, private_key: str, client_id: str) -> Dict[str, Any]:
        return self._samp_hub.getSubscriptions(private_key, client_id)  # type: ignore

    def get_registered_clients(self, private_key: str) -> List[str]:
        return self._samp_hub.getRegisteredClients(private_key)  # type: ignore[no-any-return]

    def get_subscribed_clients(self, private_key: str, mtype: str) -> Dict[str, Any]:
        return self._samp_hub.getSubscribedClients(private_key, mtype)  # type: ignore

    def notify(self, private_key: str, recipient_id: str, message: Mapping[str, Any]) -> Any:
        return self._samp_hub.notify(private_key, recipient_id, message)

    def notify_all(self, private_key: str, message: Mapping[str, Any]) -> List[str]:
        """@return: the ids of the clients the notification went to."""
        return self._samp_hub.notifyAll(private_key, message)  # type: ignore[no-any-return]

    def call(self, private_key: str, recipient_id: str, msg_tag: str,
             message: Mapping[str, Any]) -> str:
        """@return: the msg-id."""
        return self._samp_hub.call(  # type: ignore[no-any-return]
            private_key, recipient_id, msg_tag, message
        )

    def call_all(self, private_key: str, msg_tag: str,
                 message: Mapping[str, Any]) -> Dict[str, str]:
        """@return: recipient id to msg-id."""
        return self._samp_hub.callAll(private_key, msg_tag, message)  # type: ignore

    def call_and_wait(self, private_key: str, recipient_id: str, message: Mapping[str, Any],
                      timeout: Any) -> Dict[str, Any]:
        """
        @param timeout: seconds, a SAMP int string or a Python number (0:
            no limit but the hub's).
        @return: the response map, whatever its C{samp.status}.
        @raise SAMPProxyTimeoutError: if no response came in time.
        """
        return self._samp_hub.callAndWait(  # type: ignore[no-any-return]
            private_key, recipient_id, message, _timeout_text(timeout)
        )

    def reply(self, private_key: str, msg_id: str, response: Mapping[str, Any]) -> Any:
        return self._samp_hub.reply(private_key, msg_id, response)


def _timeout_text(timeout: Any) -> str:
    # A number given as a time-out is not worth a warning: pyvo's own
    # examples pass one.
    if isinstance(timeout, str):
        return timeout
    return str(int(timeout))


# -- the client ---------------------------------------------------------------


def _takes_msg_id(function: Callable[..., Any]) -> bool:
    """Whether a bound handler has the 6-argument form (with C{msg_id})."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = 0
    for p in parameters:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 6


class CallbackTarget(Protocol):
    """
    Who takes a blocking client's callbacks, with pyvo's signatures: the
    L{SAMPClient} itself, or the L{SAMPIntegratedClient} that made it (so
    that its subclasses may override C{receive_*} too).
    """

    def receive_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> Any: ...

    def receive_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> Any: ...

    def receive_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> Any: ...


class _Receiver:
    """
    Hands the callbacks the resource accepted to the client's
    L{SAMPClient.callback_target} in the reactor's thread pool (reactor
    thread).
    """

    def __init__(self, client: SAMPClient) -> None:
        self.client = client

    def _run(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        d = deferToThread(fn, *args)
        d.addErrback(lambda f: log.failure("{what} handler failed", f, what=what))

    def receive_notification(self, sender_id: str, message: Dict[str, Any]) -> None:
        key = self.client.get_private_key()
        target = self.client.callback_target
        self._run("notification", target.receive_notification, key, sender_id, message)

    def receive_call(self, sender_id: str, msg_id: str, message: Dict[str, Any]) -> None:
        key = self.client.get_private_key()
        target = self.client.callback_target
        self._run("call", target.receive_call, key, sender_id, msg_id, message)

    def receive_response(self, responder_id: str, msg_tag: str, response: Dict[str, Any]) -> None:
        key = self.client.get_private_key()
        target = self.client.callback_target
        self._run("response", target.receive_response, key, responder_id, msg_tag, response)


class SAMPClient:
    """
    pyvo's lower-level client: registers through a L{SAMPHubProxy}, serves
    the hub's callbacks, and dispatches them to the functions bound with
    C{bind_receive_*}.  Subclasses may override C{receive_notification},
    C{receive_call} and C{receive_response}; they run in a worker thread.

    @param hub: a L{SAMPHubProxy} (connected before L{register}).
    @param name: C{samp.name} metadata.
    @param description: C{samp.description.text} metadata.
    @param metadata: further metadata (copied, not changed).
    @param addr: interface of the callback server (default C{127.0.0.1};
        samptwist never looks up a public host name).
    @param port: its port (0: any free one).
    @param callable: whether the client receives calls and notifications.
    """

    def __init__(self, hub: SAMPHubProxy, name: Optional[str] = None,
                 description: Optional[str] = None,
                 metadata: Optional[Mapping[str, Any]] = None, addr: Optional[str] = None,
                 port: int = 0, callable: bool = True) -> None:
        self._is_running = False
        self._is_registered = False
        self._metadata: Dict[str, Any] = dict(metadata or {})
        if name is not None:
            self._metadata["samp.name"] = name
        if description is not None:
            self._metadata["samp.description.text"] = description
        self._addr = addr
        self._port = int(port)
        self._xmlrpcAddr: Optional[str] = None
        self._callable = callable
        #: the callback server while running (pyvo: its XML-RPC server)
        self.client: Optional[CallbackServer] = None
        self._public_id: Optional[str] = None
        self._private_key: Optional[str] = None
        self._hub_id: Optional[str] = None
        self._notification_bindings: Dict[str, List[Any]] = {}
        self._call_bindings: Dict[str, List[Any]] = {
            PING: [self._ping, {}],
            "client.env.get": [self._client_env_get, {}],
        }
        self._response_bindings: Dict[str, Callable[..., Any]] = {}
        self.hub = hub
        #: who takes the callbacks (a L{CallbackTarget}): this client, or
        #: the L{SAMPIntegratedClient} that made it
        self.callback_target: CallbackTarget = self

    # -- running

    def start(self) -> None:
        """
        Start serving callbacks (if callable); returns at once.
        """
        self._is_running = True
        if self._callable:
            self._run_client()

    def _run_client(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is not None:
            # A subclass that serves callbacks itself (as pyvo's Web Profile
            # test client does) supplies its own thread.
            thread.start()
            return
        addr = self._addr or "127.0.0.1"
        interface = addr.replace(":", "\\:")
        resource = CallbackResource(_Receiver(self))
        server = CallbackServer(_reactor_thread.reactor, resource,
                                f"tcp:{self._port}:interface={interface}")

        def listen() -> Deferred:
            return Deferred.fromCoroutine(server.start())

        url = run_in_reactor(listen, timeout=DEFAULT_TIMEOUT)
        self.client = server
        self._port = int(url.rsplit(":", 1)[1].strip("/"))
        self._xmlrpcAddr = url

    def stop(self, timeout: float = 10.0) -> None:
        """
        Stop serving callbacks.

        @raise SAMPClientError: if a subclass's serving thread did not end
            within C{timeout} seconds.
        """
        self._is_running = False
        server, self.client = self.client, None
        if server is not None and isinstance(server, CallbackServer):
            run_in_reactor(server.stop, timeout=timeout)
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive():
                raise SAMPClientError(
                    f"Client was not shut down successfully (timeout={timeout}s)"
                )

    @property
    def is_running(self) -> bool:
        """Whether L{start} was called and L{stop} not since."""
        return self._is_running

    @property
    def is_registered(self) -> bool:
        """Whether the client is registered with the hub."""
        return self._is_registered

    # -- built-in call handlers

    def _ping(self, private_key: str, sender_id: str, msg_id: str, msg_mtype: str,
              msg_params: Dict[str, Any], message: Dict[str, Any]) -> None:
        self.hub.reply(private_key, msg_id, {"samp.status": SAMP_STATUS_OK, "samp.result": {}})

    def _client_env_get(self, private_key: str, sender_id: str, msg_id: str, msg_mtype: str,
                        msg_params: Dict[str, Any], message: Dict[str, Any]) -> None:
        name = msg_params.get("name", "")
        if name in os.environ:
            reply = {"samp.status": SAMP_STATUS_OK, "samp.result": {"value": os.environ[name]}}
        else:
            reply = {
                "samp.status": SAMP_STATUS_WARNING,
                "samp.result": {"value": ""},
                "samp.error": {"samp.errortxt": f"environment variable {name!r} is not set"},
            }
        self.hub.reply(private_key, msg_id, reply)

    # -- receiving (override in subclasses)

    def _split(self, private_key: str, message: Dict[str, Any]) -> Optional[tuple]:
        if private_key != self.get_private_key() or "samp.mtype" not in message:
            return None
        extra = dict(message)
        mtype = extra.pop("samp.mtype")
        params = extra.pop("samp.params", {})
        return mtype, params, extra

    def _handle_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> str:
        parts = self._split(private_key, message)
        if parts is None:
            return ""
        mtype, params, extra = parts
        for pattern, (function, _) in list(self._notification_bindings.items()):
            if matches(pattern, mtype):
                if _takes_msg_id(function):
                    function(private_key, sender_id, None, mtype, params, extra)
                else:
                    function(private_key, sender_id, mtype, params, extra)
        return ""

    def receive_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> str:
        """
        A notification arrived: call every function bound to an MType
        pattern that matches.  Override it to take notifications yourself.

        @return: C{""}.
        """
        return self._handle_notification(private_key, sender_id, message)

    def _handle_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> str:
        parts = self._split(private_key, message)
        if parts is None:
            return ""
        mtype, params, extra = parts
        bound = [f for p, (f, _) in list(self._call_bindings.items()) if matches(p, mtype)]
        if not bound:
            self._reply_error(private_key, msg_id, f"no handler is bound for {mtype}")
        for function in bound:
            try:
                function(private_key, sender_id, msg_id, mtype, params, extra)
            except Exception:
                self._reply_error(private_key, msg_id, traceback.format_exc())
        return ""

    def _reply_error(self, private_key: str, msg_id: str, text: str) -> None:
        try:
            self.hub.reply(private_key, msg_id, {
                "samp.status": SAMP_STATUS_ERROR,
                "samp.error": {"samp.errortxt": text.strip().splitlines()[-1][:500],
                               "samp.debugtxt": text},
            })
        except (OSError, xmlrpc.client.Error):
            pass  # already answered, or the hub has gone: nothing to tell

    def receive_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> str:
        """
        A call arrived: call every function bound to an MType pattern that
        matches; the function replies with C{hub.reply} (if it raises, a
        C{samp.error} reply is sent for it; if none is bound, too).

        @return: C{""}.
        """
        return self._handle_call(private_key, sender_id, msg_id, message)

    def _handle_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> str:
        if private_key == self.get_private_key() and msg_tag in self._response_bindings:
            self._response_bindings[msg_tag](private_key, responder_id, msg_tag, response)
        return ""

    def receive_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> str:
        """
        A response to one of our calls arrived: call the function bound to
        its C{msg_tag}.

        @return: C{""}.
        """
        return self._handle_response(private_key, responder_id, msg_tag, response)

    # -- binding

    def _need_callable(self) -> None:
        if not self._callable:
            raise SAMPClientError("Client not callable.")

    def bind_receive_message(self, mtype: str, function: Callable[..., Any],
                             declare: bool = True,
                             metadata: Optional[Mapping[str, Any]] = None) -> None:
        """
        Bind C{function(private_key, sender_id, msg_id, mtype, params,
        extra)} to calls and notifications matching C{mtype} (C{msg_id} is
        C{None} for notifications).
        """
        self.bind_receive_call(mtype, function, declare=False, metadata=metadata)
        self.bind_receive_notification(mtype, function, declare=declare, metadata=metadata)

    def bind_receive_notification(self, mtype: str, function: Callable[..., Any],
                                  declare: bool = True,
                                  metadata: Optional[Mapping[str, Any]] = None) -> None:
        """
        Bind C{function(private_key, sender_id, mtype, params, extra)} to
        notifications matching C{mtype}; subscribe to it if C{declare}.

        @raise SAMPClientError: if the client is not callable.
        """
        self._need_callable()
        self._notification_bindings[mtype] = [function, dict(metadata or {})]
        if declare:
            self._declare_subscriptions()

    def bind_receive_call(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                          metadata: Optional[Mapping[str, Any]] = None) -> None:
        """
        Bind C{function(private_key, sender_id, msg_id, mtype, params,
        extra)} to calls matching C{mtype}; it must reply.

        @raise SAMPClientError: if the client is not callable.
        """
        self._need_callable()
        self._call_bindings[mtype] = [function, dict(metadata or {})]
        if declare:
            self._declare_subscriptions()

    def bind_receive_response(self, msg_tag: str, function: Callable[..., Any]) -> None:
        """
        Bind C{function(private_key, responder_id, msg_tag, response)} to
        responses to calls sent with C{msg_tag}.
        """
        self._need_callable()
        self._response_bindings[msg_tag] = function

    def unbind_receive_notification(self, mtype: str, declare: bool = True) -> None:
        """@raise KeyError: if nothing is bound to C{mtype}."""
        self._need_callable()
        del self._notification_bindings[mtype]
        if declare:
            self._declare_subscriptions()

    def unbind_receive_call(self, mtype: str, declare: bool = True) -> None:
        """@raise KeyError: if nothing is bound to C{mtype}."""
        self._need_callable()
        del self._call_bindings[mtype]
        if declare:
            self._declare_subscriptions()

    def unbind_receive_response(self, msg_tag: str) -> None:
        """@raise KeyError: if nothing is bound to C{msg_tag}."""
        self._need_callable()
        del self._response_bindings[msg_tag]

    def declare_subscriptions(self, subscriptions: Optional[Mapping[str, Any]] = None) -> None:
        """
        Subscribe to the bound MTypes, plus C{subscriptions} (a
        subscriptions map).
        """
        self._need_callable()
        self._declare_subscriptions(subscriptions)

    def _declare_subscriptions(self, subscriptions: Optional[Mapping[str, Any]] = None) -> None:
        if not (self.hub.is_connected and self._private_key is not None):
            # Before registration the bindings are only recorded; register()
            # declares them.
            if self._private_key is None and not self._is_registered:
                return
            raise SAMPClientError(
                "Unable to declare subscriptions. Hub unreachable or not connected or client "
                "not registered."
            )
        declared: Dict[str, Any] = {}
        for bindings in (self._notification_bindings, self._call_bindings):
            for mtype, (_, notes) in bindings.items():
                declared[mtype] = copy.deepcopy(notes)
        declared.update(copy.deepcopy(dict(subscriptions or {})))
        self.hub.declare_subscriptions(self._private_key, declared)

    # -- registration

    def register(self) -> None:
        """
        Register with the hub (with its lockfile's secret), set the callback
        URL, declare subscriptions and metadata.

        @raise SAMPClientError: if already registered or the hub proxy is
            not connected.
        """
        if not self.hub.is_connected:
            raise SAMPClientError("Unable to register to the SAMP Hub. Hub proxy not connected.")
        if self._private_key is not None:
            raise SAMPClientError("Client already registered")
        result = self.hub.register(self.hub.lockfile["samp.secret"])
        if not result.get("samp.self-id"):
            raise SAMPClientError("Registration failed - samp.self-id was not set by the hub.")
        if not result.get("samp.private-key"):
            raise SAMPClientError(
                "Registration failed - samp.private-key was not set by the hub."
            )
        self._public_id = result["samp.self-id"]
        self._private_key = result["samp.private-key"]
        self._hub_id = result.get("samp.hub-id")
        if isinstance(self.client, CallbackServer):
            self.client.resource.private_key = self._private_key
        if self._callable:
            self._set_xmlrpc_callback()
            self._declare_subscriptions()
        if self._metadata:
            self.declare_metadata()
        self._is_registered = True
        _watch(self)

    def unregister(self) -> None:
        """
        @raise SAMPClientError: if the hub proxy is not connected.
        """
        if not self.hub.is_connected:
            raise SAMPClientError(
                "Unable to unregister from the SAMP Hub. Hub proxy not connected."
            )
        self._is_registered = False
        key, self._private_key = self._private_key, None
        self._hub_id = None
        self._public_id = None
        if isinstance(self.client, CallbackServer):
            self.client.resource.private_key = None
        if key is not None:
            self.hub.unregister(key)

    def _set_xmlrpc_callback(self) -> None:
        if self.hub.is_connected and self._private_key is not None and self._xmlrpcAddr:
            self.hub.set_xmlrpc_callback(self._private_key, self._xmlrpcAddr)

    def declare_metadata(self, metadata: Optional[Mapping[str, Any]] = None) -> None:
        """
        Declare the client's metadata, updated with C{metadata}.

        @raise SAMPClientError: if not registered.
        """
        if not (self.hub.is_connected and self._private_key is not None):
            raise SAMPClientError(
                "Unable to declare metadata. Hub unreachable or not connected or client "
                "not registered."
            )
        if metadata is not None:
            self._metadata.update(metadata)
        self.hub.declare_metadata(self._private_key, self._metadata)

    def get_private_key(self) -> Optional[str]:
        """@return: the private key given at registration (C{None} before)."""
        return self._private_key

    def get_public_id(self) -> Optional[str]:
        """@return: the public id given at registration (C{None} before)."""
        return self._public_id


# Connected clients, unregistered at interpreter exit (before the reactor
# thread stops, as atexit runs handlers last-registered first).
_running: weakref.WeakSet[SAMPClient] = weakref.WeakSet()
_exit_hook: List[bool] = []


def _watch(client: SAMPClient) -> None:
    _running.add(client)
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(_unregister_all)
        _reactor_thread.before_stop(_unregister_all)


def _unregister_all() -> None:
    for client in list(_running):
        if client.is_registered:
            try:
                client.unregister()
            except Exception:  # the hub may have gone already
                pass


# -- the integrated client ----------------------------------------------------


class SAMPIntegratedClient:
    """
    pyvo's everyday client: a L{SAMPHubProxy} (C{self.hub}) and a
    L{SAMPClient} (C{self.client}, made by each L{connect}) behind one
    object.  Callbacks reach this object's C{receive_*} methods (which
    hand them to the client's), so a subclass may override them.

    @param name: C{samp.name} metadata.
    @param description: C{samp.description.text} metadata.
    @param metadata: other metadata.
    @param addr: interface of the callback server (default loopback).
    @param port: its port (default: any free one).
    @param callable: whether to receive messages.
    """

    def __init__(self, name: Optional[str] = None, description: Optional[str] = None,
                 metadata: Optional[Mapping[str, Any]] = None, addr: Optional[str] = None,
                 port: int = 0, callable: bool = True) -> None:
        self.hub = SAMPHubProxy()
        #: the arguments each new L{SAMPClient} is made with
        self.client_arguments: Dict[str, Any] = {
            "name": name,
            "description": description,
            "metadata": metadata,
            "addr": addr,
            "port": port,
            "callable": callable,
        }
        self.client: Any = None

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected to a hub and running."""
        return bool(self.hub.is_connected and self.client is not None and self.client.is_running)

    def connect(self, hub: Any = None, hub_params: Optional[Mapping[str, str]] = None,
                pool_size: int = 20) -> None:
        """
        Connect to a hub (see L{SAMPHubProxy.connect}), start the callback
        server and register.

        @raise SAMPClientError: if already connected (disconnect first).
        """
        if self.is_connected:
            raise SAMPClientError("already connected; call disconnect() first")
        self.hub.connect(hub, hub_params, pool_size)
        self.client = SAMPClient(self.hub, **self.client_arguments)
        self.client.callback_target = self
        self.client.start()
        try:
            self.client.register()
        except BaseException:
            self.client.stop()
            self.hub.disconnect()
            raise

    def disconnect(self) -> None:
        """
        Unregister, stop the callback server and close the connections.  A
        hub that has gone away only earns a L{SAMPWarning}.
        """
        if not self.is_connected:
            return
        try:
            self.client.unregister()
        except (OSError, xmlrpc.client.Error) as e:
            warnings.warn(f"could not unregister from the hub: {e}", SAMPWarning, stacklevel=2)
        finally:
            if self.client.is_running:
                self.client.stop()
            self.hub.disconnect()

    # -- hub methods

    def ping(self) -> Any:
        return self.hub.ping()

    def declare_metadata(self, metadata: Mapping[str, Any]) -> None:
        self.client.declare_metadata(metadata)

    def get_metadata(self, client_id: str) -> Dict[str, Any]:
        return self.hub.get_metadata(self._key(), client_id)

    def get_subscriptions(self, client_id: str) -> Dict[str, Any]:
        return self.hub.get_subscriptions(self._key(), client_id)

    def get_registered_clients(self) -> List[str]:
        """@return: the ids of the other registered clients (and the hub)."""
        return self.hub.get_registered_clients(self._key())

    def get_subscribed_clients(self, mtype: str) -> Dict[str, Any]:
        return self.hub.get_subscribed_clients(self._key(), mtype)

    @staticmethod
    def _format_easy_msg(mtype: str, params: Dict[str, Any]) -> Dict[str, Any]:
        params = dict(params)
        extra = params.pop("extra_kws", None) or {}
        message = {"samp.mtype": mtype, "samp.params": params}
        message.update(extra)
        return message

    def notify(self, recipient_id: str, message: Mapping[str, Any]) -> Any:
        return self.hub.notify(self._key(), recipient_id, message)

    def enotify(self, recipient_id: str, mtype: str, **params: Any) -> Any:
        """C{notify} with the message built from C{mtype} and C{params}
        (C{extra_kws}: further message keys)."""
        return self.notify(recipient_id, self._format_easy_msg(mtype, params))

    def notify_all(self, message: Mapping[str, Any]) -> List[str]:
        """
        @return: the ids the notification went to; a L{SAMPWarning} says
            when that is nobody.
        """
        sent = self.hub.notify_all(self._key(), message)
        if not sent:
            _nobody(message)
        return sent

    def enotify_all(self, mtype: str, **params: Any) -> List[str]:
        return self.notify_all(self._format_easy_msg(mtype, params))

    def call(self, recipient_id: str, msg_tag: str, message: Mapping[str, Any]) -> str:
        """@return: the msg-id; the response goes to C{bind_receive_response(msg_tag)}."""
        return self.hub.call(self._key(), recipient_id, msg_tag, message)

    def ecall(self, recipient_id: str, msg_tag: str, mtype: str, **params: Any) -> str:
        return self.call(recipient_id, msg_tag, self._format_easy_msg(mtype, params))

    def call_all(self, msg_tag: str, message: Mapping[str, Any]) -> Dict[str, str]:
        """
        @return: recipient id to msg-id; a L{SAMPWarning} says when there
            was no recipient.
        """
        sent = self.hub.call_all(self._key(), msg_tag, message)
        if not sent:
            _nobody(message)
        return sent

    def ecall_all(self, msg_tag: str, mtype: str, **params: Any) -> Dict[str, str]:
        return self.call_all(msg_tag, self._format_easy_msg(mtype, params))

    def call_and_wait(self, recipient_id: str, message: Mapping[str, Any],
                      timeout: Any) -> Dict[str, Any]:
        """
        @param timeout: seconds (SAMP int string or number; 0: no limit).
        @return: the response map, whatever its status.
        @raise SAMPProxyTimeoutError: if it did not come in time.
        """
        return self.hub.call_and_wait(self._key(), recipient_id, message, timeout)

    def ecall_and_wait(self, recipient_id: str, mtype: str, timeout: Any,
                       **params: Any) -> Dict[str, Any]:
        return self.call_and_wait(recipient_id, self._format_easy_msg(mtype, params), timeout)

    def reply(self, msg_id: str, response: Mapping[str, Any]) -> Any:
        return self.hub.reply(self._key(), msg_id, response)

    @staticmethod
    def _format_easy_response(status: str, result: Optional[Mapping[str, Any]],
                              error: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        response: Dict[str, Any] = {"samp.status": status}
        if result is not None:
            response["samp.result"] = result
        if error is not None:
            response["samp.error"] = error
        return response

    def ereply(self, msg_id: str, status: str, result: Optional[Mapping[str, Any]] = None,
               error: Optional[Mapping[str, Any]] = None) -> Any:
        return self.reply(msg_id, self._format_easy_response(status, result, error))

    # -- client methods

    def receive_notification(self, private_key: str, sender_id: str,
                             message: Dict[str, Any]) -> str:
        return self.client.receive_notification(private_key, sender_id, message)  # type: ignore

    def receive_call(self, private_key: str, sender_id: str, msg_id: str,
                     message: Dict[str, Any]) -> str:
        return self.client.receive_call(private_key, sender_id, msg_id, message)  # type: ignore

    def receive_response(self, private_key: str, responder_id: str, msg_tag: str,
                         response: Dict[str, Any]) -> str:
        return self.client.receive_response(  # type: ignore[no-any-return]
            private_key, responder_id, msg_tag, response
        )

    def bind_receive_message(self, mtype: str, function: Callable[..., Any],
                             declare: bool = True,
                             metadata: Optional[Mapping[str, Any]] = None) -> None:
        self._connected_client().bind_receive_message(mtype, function, declare, metadata)

    def bind_receive_notification(self, mtype: str, function: Callable[..., Any],
                                  declare: bool = True,
                                  metadata: Optional[Mapping[str, Any]] = None) -> None:
        self._connected_client().bind_receive_notification(mtype, function, declare, metadata)

    def bind_receive_call(self, mtype: str, function: Callable[..., Any], declare: bool = True,
                          metadata: Optional[Mapping[str, Any]] = None) -> None:
        self._connected_client().bind_receive_call(mtype, function, declare, metadata)

    def bind_receive_response(self, msg_tag: str, function: Callable[..., Any]) -> None:
        self._connected_client().bind_receive_response(msg_tag, function)

    def unbind_receive_notification(self, mtype: str, declare: bool = True) -> None:
        self._connected_client().unbind_receive_notification(mtype, declare)

    def unbind_receive_call(self, mtype: str, declare: bool = True) -> None:
        self._connected_client().unbind_receive_call(mtype, declare)

    def unbind_receive_response(self, msg_tag: str) -> None:
        self._connected_client().unbind_receive_response(msg_tag)

    def declare_subscriptions(self, subscriptions: Optional[Mapping[str, Any]] = None) -> None:
        self._connected_client().declare_subscriptions(subscriptions)

    def get_private_key(self) -> Optional[str]:
        """@return: the private key (C{None} when not connected)."""
        return None if self.client is None else self.client.get_private_key()

    def get_public_id(self) -> Optional[str]:
        """@return: the public id (C{None} when not connected)."""
        return None if self.client is None else self.client.get_public_id()

    def _key(self) -> str:
        key = self.get_private_key()
        if key is None:
            raise SAMPClientError("not connected to a SAMP hub: call connect() first")
        return key

    def _connected_client(self) -> Any:
        if self.client is None:
            raise SAMPClientError(
                "not connected: call connect() before binding handlers (the client, and "
                "its bindings, are made by connect(), as in pyvo)"
            )
        return self.client


def _nobody(message: Mapping[str, Any]) -> None:
    warnings.warn(
        f"no client is subscribed to {message.get('samp.mtype')!r}; the message went nowhere",
        SAMPWarning,
        stacklevel=3,
    )
