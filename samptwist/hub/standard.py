"""
The Standard Profile: the hub's methods as an XML-RPC resource, with the
C{samp.hub.} prefix and the private key as first argument (STD-RPC-*).
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, Tuple

from twisted.web import server, xmlrpc

from .._log import Logger
from .._xmlrpc import MethodTable, Procedure
from ..constants import HUB_PREFIX
from ..errors import SAMPHubError
from .core import Hub
from .delivery import CallbackCaller, XmlRpcCallbackTarget, check_callback_url
from .httpguard import reject_unsafe_xml


class StandardProfile(xmlrpc.XMLRPC):
    """
    The Standard Profile XML-RPC endpoint of a L{Hub}.

    Every method answers either its SAMP result or an XML-RPC fault whose
    faultString says what was wrong.  Methods without a SAMP result answer
    C{""}.
    """

    log = Logger()
    allowNone = False
    useDateTime = False

    def __init__(self, hub: Hub, secret: str, caller: CallbackCaller) -> None:
        super().__init__(allowNone=False, useDateTime=False)
        self.hub = hub
        self.secret = secret
        self.caller = caller
        methods: Dict[str, Tuple[Callable[..., Any], int, int]] = {
            "register": (self.register, 1, 1),
            "unregister": (self._none(hub.unregister), 1, 1),
            "setXmlrpcCallback": (self.setXmlrpcCallback, 2, 2),
            "declareMetadata": (self._none(hub.declare_metadata), 2, 2),
            "getMetadata": (hub.get_metadata, 2, 2),
            "declareSubscriptions": (self._none(hub.declare_subscriptions), 2, 2),
            "getSubscriptions": (hub.get_subscriptions, 2, 2),
            "getRegisteredClients": (hub.get_registered_clients, 1, 1),
            "getSubscribedClients": (hub.get_subscribed_clients, 2, 2),
            "notify": (self._none(hub.notify), 3, 3),
            "notifyAll": (hub.notify_all, 2, 2),
            "call": (hub.call, 4, 4),
            "callAll": (hub.call_all, 3, 3),
            "callAndWait": (hub.call_and_wait, 4, 4),
            "reply": (self._none(hub.reply), 3, 3),
            "ping": (lambda *key: "", 0, 1),
        }
        #: the methods and their dispatch (callAndWait's wait is cancelled
        #: when the caller hangs up)
        self.table = MethodTable(
            HUB_PREFIX,
            {name: Procedure(f, low, high) for name, (f, low, high) in methods.items()},
            "the SAMP Standard Profile",
            refusals=(SAMPHubError,),
        )

    @staticmethod
    def _none(method: Callable[..., Any]) -> Callable[..., str]:
        def wrapper(*args: Any) -> str:
            method(*args)
            return ""

        return wrapper

    def register(self, secret: Any) -> Dict[str, str]:
        """
        C{samp.hub.register(secret)}.

        @return: the registration map.
        @raise SAMPHubError: for a wrong secret.
        """
        if not isinstance(secret, str) or not secrets.compare_digest(
            secret.encode("utf-8", "surrogatepass"), self.secret.encode("utf-8")
        ):
            self.log.warn("registration refused: wrong secret")
            raise SAMPHubError("registration refused: wrong samp.secret", code=7)
        client = self.hub.register("standard")
        return self.hub.registration_map(client)

    def setXmlrpcCallback(self, private_key: Any, url: Any) -> str:
        """
        C{samp.hub.setXmlrpcCallback(private-key, url)}: make the caller
        callable at C{url}.
        """
        client = self.hub.client_for_key(private_key)
        check_callback_url(url)
        limits = self.hub.limits
        target = XmlRpcCallbackTarget(
            self.caller,
            url,
            client.private_key,
            max_queue=limits.max_queue,
            max_queue_bytes=limits.max_queue_bytes,
        )
        self.hub.set_callback(private_key, target)
        return ""

    def render_POST(self, request: Any) -> Any:
        if reject_unsafe_xml(self, request):
            return server.NOT_DONE_YET
        return super().render_POST(request)

    def lookupProcedure(self, procedurePath: str) -> Callable[..., Any]:
        return self.table.lookup(procedurePath)
