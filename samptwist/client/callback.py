"""
The client's own XML-RPC server: C{samp.client.receiveNotification},
C{receiveCall} and C{receiveResponse} (CLI-CB-1, STD-RPC-6), refusing any
call that does not carry this client's private key (CLI-CB-5).

Callbacks return C{""} at once (CLI-CB-3, CLI-CB-4); the work, and the
reply to a call, happen afterwards.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, Optional

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.protocols.policies import WrappingFactory
from twisted.web import xmlrpc
from twisted.web.server import Site

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore[assignment]

from .._http import TolerantHTTPChannel
from .._log import Logger
from .._net import url_host
from .._xmlrpc import MethodTable, Procedure
from ..types import check_map

PREFIX = "samp.client."


class IReceiver(Protocol):
    """
    What the callback resource hands incoming callbacks to.  Each method
    must return promptly and not raise for well-formed input.
    """

    def receive_notification(self, sender_id: str, message: Dict[str, Any]) -> None: ...

    def receive_call(self, sender_id: str, msg_id: str, message: Dict[str, Any]) -> None: ...

    def receive_response(self, responder_id: str, msg_tag: str, response: Dict[str, Any]) -> None:
        ...


class CallbackResource(xmlrpc.XMLRPC):
    """
    The Standard Profile callback endpoint of one client.

    @ivar private_key: the key the hub must present; while C{None} (not
        registered) every callback is refused.
    """

    log = Logger()

    def __init__(self, receiver: IReceiver) -> None:
        super().__init__(allowNone=False, useDateTime=False)
        self.receiver = receiver
        self.private_key: Optional[str] = None
        #: the three callbacks: the private key and two strings, then a map
        self.table = MethodTable(
            PREFIX,
            {
                name: Procedure(self._checked(name, method, what), count, count)
                for name, method, what, count in (
                    ("receiveNotification", self._notification, "message", 3),
                    ("receiveCall", self._call, "message", 4),
                    ("receiveResponse", self._response, "response", 4),
                )
            },
            "a SAMP client",
            refusals=(_Refused,),
        )

    def _key_ok(self, key: Any) -> bool:
        if self.private_key is None or not isinstance(key, str):
            return False
        return secrets.compare_digest(
            key.encode("utf-8", "surrogatepass"), self.private_key.encode("utf-8")
        )

    def lookupProcedure(self, procedurePath: str) -> Callable[..., Any]:
        return self.table.lookup(procedurePath)

    def _checked(self, name: str, method: Callable[..., None], what: str) -> Callable[..., str]:
        """
        @return: C{method} called with the arguments after the private key,
            once the key and the arguments are checked (a L{_Refused}
            otherwise), answering C{""}; an error of the receiver is logged,
            not answered (CLI-CB-3).
        """
        name = PREFIX + name

        def checked(key: Any, *args: Any) -> str:
            if not self._key_ok(key):
                self.log.warn("refused {method}: wrong private key", method=name)
                raise _Refused("wrong private key")
            try:
                for index, arg in enumerate(args[:-1]):
                    if not isinstance(arg, str):
                        raise ValueError(f"argument {index + 2} must be a string")
                check_map(args[-1], what)
            except ValueError as e:
                raise _Refused(f"{name}: {e}") from None
            try:
                method(*args)
            except Exception:
                self.log.failure("error handling {method}", method=name)
            return ""

        return checked

    def _notification(self, sender_id: str, message: Dict[str, Any]) -> None:
        self.receiver.receive_notification(sender_id, message)

    def _call(self, sender_id: str, msg_id: str, message: Dict[str, Any]) -> None:
        self.receiver.receive_call(sender_id, msg_id, message)

    def _response(self, responder_id: str, msg_tag: str, response: Dict[str, Any]) -> None:
        self.receiver.receive_response(responder_id, msg_tag, response)


class _Refused(Exception):
    """A callback refused: answered as a fault (code FAILURE) with this message."""


class _QuietSite(Site):
    noisy = False
    displayTracebacks = False
    # SAOImage DS9's own hub ends HTTP header lines with a bare LF
    protocol = TolerantHTTPChannel  # type: ignore[assignment]

    def log(self, request: Any) -> None:
        pass


class CallbackServer:
    """
    A loopback HTTP server for a L{CallbackResource}, closed with its open
    connections by L{stop}.

    @ivar url: the callback URL to give the hub, once listening.
    """

    def __init__(self, reactor: Any, resource: CallbackResource, endpoint: str) -> None:
        self.reactor = reactor
        self.resource = resource
        self.endpoint = endpoint
        self.url: Optional[str] = None
        self._port: Any = None
        self._factory = WrappingFactory(_QuietSite(resource))
        self._factory.noisy = False

    async def start(self) -> str:
        """
        Listen (once).

        @return: (as a coroutine) the callback URL.
        """
        if self._port is None:
            self._port = await serverFromString(self.reactor, self.endpoint).listen(self._factory)
            host = self._port.getHost()
            address = url_host(getattr(host, "host", "127.0.0.1"))
            self.url = f"http://{address}:{host.port}/"
        assert self.url is not None
        return self.url

    def stop(self) -> Deferred:
        """
        Stop listening and drop open connections.

        @return: a L{Deferred} firing once the port is closed.
        """
        port, self._port = self._port, None
        self.url = None
        for protocol in list(self._factory.protocols):
            protocol.transport.loseConnection()
        if port is None:
            d: Deferred = Deferred()
            d.callback(None)
            return d
        return port.stopListening()
