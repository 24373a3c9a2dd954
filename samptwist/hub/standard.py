"""
The Standard Profile: the hub's methods as an XML-RPC resource, with the
C{samp.hub.} prefix and the private key as first argument (STD-RPC-*).
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, Tuple, Union

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.web import server, xmlrpc

from .._http import watch_answerable
from .._log import Logger
from .._xmlrpc import Fault, MethodTable, Procedure, fault_answer, loads, result_answer
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

    L{answer} turns a request body into the answer's body; twisted.web's
    request handling (L{render_POST}) and the hub's fast lane for plain
    XML-RPC POSTs (L{samptwist.hub.fastlane}) both go through it.
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

    def answer(self, request: Any, body: bytes) -> Union[bytes, Deferred[bytes]]:
        """
        Handle one XML-RPC request, as twisted.web's C{XMLRPC.render_POST}
        does (the same faults for a body that is not XML-RPC, an unknown
        method, a refusal, an unexpected error), without writing anything.

        @param request: what the dispatch may watch for the caller hanging
            up: anything with C{notifyFinish()} (a twisted.web request, or
            the fast lane's stand-in).
        @return: the body of the XML-RPC method response, or (for a method
            that answers later: C{callAndWait}) a L{Deferred} firing with it,
            which never fails.
        """
        try:
            args, path = loads(body)
        except Exception as e:
            return fault_answer(self.FAILURE, f"Can't deserialize input: {e}")
        if path is None:
            return fault_answer(self.FAILURE, "Can't deserialize input: not a method call")
        try:
            function = self.lookupProcedure(path)
        except Fault as f:
            return result_answer(f)
        try:
            result = function(request, *args)
        except Exception:
            self.log.failure("unexpected error in {method}", method=path)
            return fault_answer(self.FAILURE, "error")
        if isinstance(result, Deferred):
            return result.addCallbacks(result_answer, self._unexpected, errbackArgs=(path,))
        return result_answer(result)

    def _unexpected(self, failure: Failure, path: str) -> bytes:
        if failure.check(Fault):
            return result_answer(failure.value)
        if failure.check(CancelledError):
            return fault_answer(self.FAILURE, "cancelled")  # the caller hung up
        self.log.failure("unexpected error in {method}", failure, method=path)
        return fault_answer(self.FAILURE, "error")

    def render_POST(self, request: Any) -> Any:
        if reject_unsafe_xml(self, request):
            return server.NOT_DONE_YET
        request.content.seek(0, 0)
        answerable = watch_answerable(request)
        content = self.answer(request, request.content.read())
        if isinstance(content, Deferred):
            content.addCallback(_write_answer, request, answerable)
        else:
            _write_answer(content, request, answerable)
        return server.NOT_DONE_YET

    def lookupProcedure(self, procedurePath: str) -> Callable[..., Any]:
        return self.table.lookup(procedurePath)


def _write_answer(content: bytes, request: Any, answerable: Callable[[], bool]) -> None:
    if not answerable():
        return  # the caller hung up
    request.setHeader(b"content-type", b"text/xml; charset=utf-8")
    request.setHeader(b"content-length", b"%d" % len(content))
    request.write(content)
    request.finish()
