"""
XML-RPC as both sides of SAMP speak it: encoding a call, reading an answer,
and the dispatch of a twisted.web C{XMLRPC} resource's method table
(argument counts, refusals turned into faults, a caller hanging up cancelling
the work).

The hub's resources (L{samptwist.hub.standard}, the Web Profile) and the
client's callback server (L{samptwist.client.callback}) dispatch through
L{MethodTable}; the hub's callback caller, its lockfile ping and the client's
hub proxy encode with L{encode_call} / L{CallEncoder} and read answers with
L{parse_answer}.  Imports neither the hub nor the client.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Type

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import xmlrpc as _txmlrpc

from ._log import Logger

__all__ = [
    "FAILURE",
    "NOT_FOUND",
    "CallEncoder",
    "Fault",
    "MethodTable",
    "NotXmlRpc",
    "Procedure",
    "encode_call",
    "fault_answer",
    "loads",
    "marshal_params",
    "ok_answer",
    "parse_answer",
    "parse_params",
    "result_answer",
    "write_fault",
]

Fault = xmlrpc.client.Fault
#: twisted.web.xmlrpc's fault codes: a failed method, an unknown method
FAILURE: int = _txmlrpc.XMLRPC.FAILURE
NOT_FOUND: int = _txmlrpc.XMLRPC.NOT_FOUND

_log = Logger()


class _Unusual(Exception):
    """Something the quick reader or writer leaves to xmlrpc.client."""


class NotXmlRpc(ValueError):
    """
    An HTTP answer whose body is not an XML-RPC method response.
    """


def encode_call(method: str, args: Sequence[Any]) -> bytes:
    """
    @return: the UTF-8 XML-RPC request C{method(*args)} (no C{None}, no
        dates: SAMP values are strings, lists and maps).
    @raise TypeError: for a value XML-RPC cannot encode.
    """
    return xmlrpc.client.dumps(
        tuple(args), method, encoding="utf-8", allow_none=False
    ).encode("utf-8")


def parse_params(body: bytes) -> Tuple[Any, ...]:
    """
    @return: the values of an XML-RPC method response (one, if the server
        keeps to the XML-RPC specification).
    @raise Fault: (L{xmlrpc.client.Fault}) if it is a fault.
    @raise NotXmlRpc: if C{body} is not an XML-RPC method response.
    """
    try:
        params, _ = loads(body)
    except Fault:
        raise
    except Exception:
        raise NotXmlRpc("the answer is not XML-RPC") from None
    return params


def parse_answer(body: bytes) -> Any:
    """
    @return: the result of an XML-RPC method response.
    @raise Fault: (L{xmlrpc.client.Fault}) if it is a fault.
    @raise NotXmlRpc: if C{body} is not a method response with one value.
    """
    params = parse_params(body)
    if len(params) != 1:
        raise NotXmlRpc(f"the answer has {len(params)} values, not one")
    return params[0]


class CallEncoder:
    """
    Encodes C{method(first, *args)} requests, serialising C{args} once while
    the same objects are passed again: a notifyAll or hub event to N
    recipients marshals its message once, not N times, though each request
    carries its own first argument (the recipient's private key).

    @ivar max_entries: how many argument tuples are remembered at most...
    @ivar max_bytes: ...and how many bytes of their encodings.
    """

    def __init__(self, max_entries: int = 16, max_bytes: int = 32 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._encoded: Dict[tuple, Tuple[tuple, bytes]] = {}
        self._bytes = 0

    def encode(self, method: str, first: str, args: tuple) -> bytes:
        """
        @return: the XML-RPC request C{method(first, *args)}.
        @raise TypeError: for a value XML-RPC cannot encode.
        """
        # Keyed by identity; the entry holds the objects, so an id cannot be
        # reused while it is cached.
        cache_key = (method,) + tuple(id(a) for a in args)
        cached = self._encoded.get(cache_key)
        if cached is not None:
            tail = cached[1]
        else:
            tail = marshal_params(args).encode("utf-8")
            # Marshaller.dumps gives "<params>\n<param>...</param>\n...</params>\n"
            tail = tail[len(b"<params>\n"):]
            self._encoded[cache_key] = (args, tail)
            self._bytes += len(tail)
            while len(self._encoded) > 1 and (
                len(self._encoded) > self.max_entries or self._bytes > self.max_bytes
            ):
                oldest = next(iter(self._encoded))
                self._bytes -= len(self._encoded.pop(oldest)[1])
        return b"".join((
            b"<?xml version='1.0' encoding='utf-8'?>\n<methodCall>\n<methodName>",
            xmlrpc.client.escape(method).encode("utf-8"),
            b"</methodName>\n<params>\n<param>\n<value><string>",
            xmlrpc.client.escape(first).encode("utf-8"),
            b"</string></value>\n</param>\n",
            tail,
            b"</methodCall>\n",
        ))


def marshal_params(values: Sequence[Any]) -> str:
    """
    @return: the C{<params>} element of C{values}, exactly as
        C{xmlrpc.client.Marshaller} writes it; SAMP's strings, lists and
        maps are written here directly (no dispatch per value), anything
        else by the Marshaller.
    @raise TypeError: for a value XML-RPC cannot encode.
    """
    out = ["<params>\n"]
    write = out.append
    try:
        for value in values:
            write("<param>\n")
            _marshal(value, write, 0)
            write("</param>\n")
    except _Unusual:
        return xmlrpc.client.Marshaller("utf-8", allow_none=False).dumps(tuple(values))
    write("</params>\n")
    return "".join(out)


_escape = xmlrpc.client.escape
#: deeper values are left to xmlrpc.client: its Marshaller (which refuses
#: recursive ones) and its reader (which needs no recursion)
_QUICK_DEPTH = 64


def _marshal(value: Any, write: Callable[[str], Any], depth: int) -> None:
    kind = type(value)
    if kind is str:
        write("<value><string>")
        write(_escape(value))
        write("</string></value>\n")
    elif depth >= _QUICK_DEPTH:
        raise _Unusual
    elif kind is dict:
        write("<value><struct>\n")
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            write("<member>\n<name>")
            write(_escape(key))
            write("</name>\n")
            _marshal(item, write, depth + 1)
            write("</member>\n")
        write("</struct></value>\n")
    elif kind is list or kind is tuple:
        write("<value><array><data>\n")
        for item in value:
            _marshal(item, write, depth + 1)
        write("</data></array></value>\n")
    else:
        raise _Unusual


def write_fault(request: Any, code: int, message: str) -> None:
    """
    Answer C{request} with an XML-RPC fault and finish it, before (or
    instead of) C{XMLRPC.render_POST}: what twisted.web's private
    C{XMLRPC._cbRender} does for a fault, through the request's public API.
    """
    content = fault_answer(code, message)
    request.setHeader(b"content-type", b"text/xml; charset=utf-8")
    request.setHeader(b"content-length", b"%d" % len(content))
    request.write(content)
    request.finish()


class Procedure(NamedTuple):
    """
    One entry of a L{MethodTable}.

    @ivar function: called with the XML-RPC arguments (after the request,
        if C{with_request}); returns the answer or a L{Deferred} of it.
    @ivar low: fewest arguments accepted...
    @ivar high: ...and most.
    @ivar with_request: pass the twisted.web request first.
    @ivar cancel_on_hangup: cancel a returned L{Deferred} when the caller
        hangs up (C{callAndWait}: nobody waits for the answer any more).
    """

    function: Callable[..., Any]
    low: int
    high: int
    with_request: bool = False
    cancel_on_hangup: bool = True


class MethodTable:
    """
    A resource's XML-RPC methods under one prefix, and the dispatch that
    twisted.web's C{XMLRPC.lookupProcedure} returns for each: the argument
    count is checked (a fault naming the method), the method is called, and
    a refusal (an exception of one of C{refusals}, raised or failing the
    returned L{Deferred}) becomes a fault with the exception's C{code} (or
    L{FAILURE}) and its message.  Anything else is left to twisted.web,
    which logs it and answers a generic fault.

    A resource uses it as::

        def lookupProcedure(self, procedurePath):
            return self.table.lookup(procedurePath)
    """

    def __init__(
        self,
        prefix: str,
        procedures: Mapping[str, Procedure],
        where: str,
        refusals: Tuple[Type[BaseException], ...] = (),
    ) -> None:
        """
        @param prefix: what every method name starts with (C{samp.hub.}).
        @param where: how an unknown method's fault names this endpoint
            (C{"the SAMP Standard Profile"}).
        @param refusals: the exception types that are answered as faults.
        """
        self.prefix = prefix
        self.procedures = dict(procedures)
        self.where = where
        self.refusals = refusals

    def fault(self, error: BaseException) -> Fault:
        """
        @return: the fault answering the refusal C{error}.
        """
        code = getattr(error, "code", FAILURE)
        return Fault(code if isinstance(code, int) else FAILURE, str(error))

    def lookup(self, path: str) -> Callable[..., Any]:
        """
        @return: the dispatch function of method C{path}, to be called by
            C{XMLRPC.render_POST} with the request and the arguments.
        @raise Fault: (L{twisted.web.xmlrpc.NoSuchFunction}, code
            L{NOT_FOUND}) for a method not in the table.
        """
        name = path[len(self.prefix):] if path.startswith(self.prefix) else None
        procedure = self.procedures.get(name) if name is not None else None
        if procedure is None:
            raise _txmlrpc.NoSuchFunction(
                NOT_FOUND, f"no such method {path!r:.100} in {self.where}"
            )
        function, low, high, with_request, cancel_on_hangup = procedure

        def dispatch(request: Any, *args: Any) -> Any:
            if not low <= len(args) <= high:
                want = str(low) if low == high else f"{low} to {high}"
                return Fault(FAILURE, f"{path} takes {want} argument(s), got {len(args)}")
            try:
                result = function(request, *args) if with_request else function(*args)
            except self.refusals as e:
                _log.debug("{method} refused: {error}", method=path, error=e)
                return self.fault(e)
            if isinstance(result, Deferred):
                if cancel_on_hangup:
                    request.notifyFinish().addErrback(lambda _: result.cancel())
                result.addErrback(self._refused)
            return result

        dispatch.withRequest = True  # type: ignore[attr-defined]
        return dispatch

    def _refused(self, failure: Failure) -> Any:
        if failure.check(*self.refusals):
            return self.fault(failure.value)  # type: ignore[arg-type]
        return failure


def fault_answer(code: int, message: str) -> bytes:
    """@return: the XML-RPC method response of a fault."""
    return xmlrpc.client.dumps(Fault(code, message), methodresponse=True).encode("utf-8")


_EMPTY_ANSWER = xmlrpc.client.dumps(("",), methodresponse=True).encode("utf-8")


def result_answer(result: Any) -> bytes:
    """
    @return: the XML-RPC method response carrying C{result}, or the fault
        C{result} is, or (if C{result} cannot be encoded) a fault saying so,
        as twisted.web's XMLRPC resource answers.
    """
    if result == "" and type(result) is str:
        return _EMPTY_ANSWER
    if isinstance(result, Fault):
        return fault_answer(result.faultCode, result.faultString)
    try:
        # what xmlrpc.client.dumps((result,), methodresponse=True) writes
        return b"".join((
            b"<?xml version='1.0'?>\n<methodResponse>\n",
            marshal_params((result,)).encode("utf-8"),
            b"</methodResponse>\n",
        ))
    except Exception as e:
        return fault_answer(FAILURE, f"Can't serialize output: {e}")


# -- reading XML-RPC -----------------------------------------------------------
#
# xmlrpc.client.loads runs a Python method for every element event expat
# reports.  What SAMP peers send is almost always strings, arrays and
# structs laid out as XML-RPC says; _quick_loads lets expat build the
# element tree in C (xml.etree's C parser) and reads that, with exactly
# xmlrpc.client's results.  Anything else (other types, faults, DTDs,
# unusual layouts) is left to xmlrpc.client, which also gives every error
# its message.  Callback answers repeat byte for byte (each client answers
# with the same empty string every time): the last few are remembered.


_REMEMBERED: Dict[bytes, Tuple[Tuple[Any, ...], Optional[str]]] = {}
#: how many distinct answers are remembered, and the longest one
_REMEMBER_COUNT = 64
_REMEMBER_SIZE = 512


def loads(body: bytes) -> Tuple[Tuple[Any, ...], Optional[str]]:
    """
    Read an XML-RPC request or response, as C{xmlrpc.client.loads(body)}
    does (same values, same exceptions), faster for SAMP's usual content.

    @return: the parameters and the method name (C{None} for a response).
    @raise Fault: for a fault response.
    @raise Exception: as C{xmlrpc.client.loads}, for anything not XML-RPC.
    """
    remembered = _REMEMBERED.get(body)
    if remembered is not None:
        return remembered
    quick = _quick_loads(body)
    if quick is None:
        return xmlrpc.client.loads(body, use_builtin_types=False)
    params, method = quick
    if (
        method is None
        and len(body) <= _REMEMBER_SIZE
        and all(type(p) is str for p in params)  # immutable: safe to hand out again
    ):
        if len(_REMEMBERED) >= _REMEMBER_COUNT:
            try:
                _REMEMBERED.pop(next(iter(_REMEMBERED)))
            except (KeyError, RuntimeError, StopIteration):
                pass  # another thread's reader changed it meanwhile: no matter
        _REMEMBERED[body] = quick
    return quick


def _quick_loads(body: bytes) -> Optional[Tuple[Tuple[Any, ...], Optional[str]]]:
    """
    @return: what C{xmlrpc.client.loads} returns, or C{None} if C{body} is
        outside what this reads (then xmlrpc.client must).
    """
    if b"<!" in body:
        return None  # no DTD (so no entity declarations) reaches the tree parser
    from xml.etree.ElementTree import ParseError, XMLParser

    parser = XMLParser()
    try:
        parser.feed(body)
        root = parser.close()
    except ParseError:
        return None
    method: Optional[str]
    try:
        if root.tag == "methodCall":
            if not 1 <= len(root) <= 2 or root[0].tag != "methodName" or len(root[0]):
                return None
            method = root[0].text or ""
            if len(root) == 1:
                return (), method
            params = root[1]
        elif root.tag == "methodResponse" and len(root) == 1:
            method = None
            params = root[0]
        else:
            return None
        if params.tag != "params":
            return None
        values = []
        for param in params:
            if param.tag != "param" or len(param) != 1 or param[0].tag != "value":
                return None
            values.append(_value(param[0], 0))
        return tuple(values), method
    except _Unusual:
        return None


def _value(element: Any, depth: int) -> Any:
    # A <value> element: as xmlrpc.client reads it, for strings, arrays and
    # structs in the layout XML-RPC gives them.  Deep ones are left to
    # xmlrpc.client, which reads them without recursion.
    if not len(element):
        return element.text or ""  # an untyped value is a string
    if len(element) != 1:
        raise _Unusual
    typed = element[0]
    tag = typed.tag
    if depth >= _QUICK_DEPTH:
        raise _Unusual
    if tag == "string":
        if len(typed):
            raise _Unusual
        return typed.text or ""
    if tag == "struct":
        struct = {}
        for member in typed:
            if member.tag != "member" or len(member) != 2:
                raise _Unusual
            name, value = member
            if name.tag != "name" or value.tag != "value" or len(name):
                raise _Unusual
            struct[name.text or ""] = _value(value, depth + 1)
        return struct
    if tag == "array":
        if len(typed) != 1 or typed[0].tag != "data":
            raise _Unusual
        array = []
        for item in typed[0]:
            if item.tag != "value":
                raise _Unusual
            array.append(_value(item, depth + 1))
        return array
    raise _Unusual


def ok_answer(value: Any = "") -> bytes:
    """@return: the XML-RPC method response carrying C{value}."""
    return xmlrpc.client.dumps((value,), methodresponse=True).encode("utf-8")
