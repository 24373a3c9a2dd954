"""
The blocking facade's XML-RPC client side: a standard-library
C{xmlrpc.client.ServerProxy} that

  - refuses XML with a document type declaration (no entity expansion, no
    external entities), as a hub's answer never needs one;
  - turns the Python values pyvo users put in messages (C{int}, C{float},
    C{bool}, tuples) into SAMP values with SAMP's own conventions
    (DATA-ENC-1..3), saying so once per Python type with a L{SAMPWarning};
  - raises L{SAMPProxyError} (an C{xmlrpc.client.Fault}) for a hub fault,
    L{SAMPProxyTimeoutError} when a C{callAndWait} timed out;

and L{ServerProxyPool}, a fixed set of such proxies shared by threads.

These carry pyvo's names (C{SAMPXXEServerProxy}, C{ServerProxyPool}) because
code written for pyvo builds hub proxies out of them.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import warnings
import xmlrpc.client
from typing import Any, Callable, Iterable, List, Set, Tuple

from ..errors import SAMPProxyError, SAMPProxyTimeoutError, SAMPValueError, SAMPWarning
from ..types import from_native

# Python types already reported by a SAMPWarning (once per type and process).
_reported: Set[str] = set()
_reported_lock = threading.Lock()


def _note(kind: str, example: Any, encoded: Any) -> None:
    with _reported_lock:
        if kind in _reported:
            return
        _reported.add(kind)
    warnings.warn(
        f"samptwist.samp: Python {kind} values are sent as SAMP strings "
        f"({example!r} became {encoded!r}); SAMP 1.3 section 3.3 allows only strings, "
        f"lists and maps. Encode them yourself to silence this (shown once per type).",
        SAMPWarning,
        stacklevel=_outside_samptwist(),
    )


def _outside_samptwist() -> int:
    """
    @return: the warnings stack level of the first caller outside samptwist
        (and the standard library's xmlrpc it calls through).
    """
    inside = (
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
        os.path.abspath(xmlrpc.client.__file__),
    )
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def samp_value(value: Any, where: str = "value") -> Any:
    """
    @return: C{value} as a SAMP value: strings, lists and string-keyed maps
        unchanged (recursively); C{bool} as C{"1"}/C{"0"}, C{int} as a
        decimal string, C{float} as its C{repr}, tuples as lists, each kind
        reported once with a L{SAMPWarning}.
    @raise SAMPValueError: for C{None}, bytes, NaN, infinities, non-string
        map keys and other values SAMP cannot carry.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SAMPValueError(f"{where}: map key {key!r:.40} is not a string")
            out[key] = samp_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list):
        return [samp_value(item, where) for item in value]
    if isinstance(value, (bool, int, float, tuple)):
        try:
            encoded = from_native(value)
        except SAMPValueError as e:
            raise SAMPValueError(f"{where}: {e}") from None
        _note(type(value).__name__, value, encoded)
        return encoded
    raise SAMPValueError(
        f"{where}: {type(value).__name__} {value!r:.40} has no SAMP encoding "
        "(SAMP carries strings, lists and maps)"
    )


def _refuse_doctype(*args: Any) -> None:
    raise ValueError("refusing an XML-RPC answer with a document type declaration")


class _GuardedParsing:
    timeout: Any = None

    def make_connection(self, host: Any) -> Any:
        connection = super().make_connection(host)  # type: ignore[misc]
        if self.timeout is not None:
            connection.timeout = self.timeout
        return connection

    def getparser(self) -> Tuple[Any, Any]:
        parser, unmarshaller = super().getparser()  # type: ignore[misc]
        expat = getattr(parser, "_parser", None)
        if expat is not None:
            expat.StartDoctypeDeclHandler = _refuse_doctype
            expat.EntityDeclHandler = _refuse_doctype
        return parser, unmarshaller


class _Transport(_GuardedParsing, xmlrpc.client.Transport):
    pass


class _SafeTransport(_GuardedParsing, xmlrpc.client.SafeTransport):
    pass


def safe_xmlrpc_loads(data: Any, use_datetime: bool = False,
                      use_builtin_types: bool = False) -> Tuple[Any, Any]:
    """
    C{xmlrpc.client.loads}, refusing document type declarations.

    @return: C{(params, methodname)}.
    @raise ValueError: if C{data} declares a document type.
    """
    parser, unmarshaller = _Transport(use_datetime, use_builtin_types).getparser()
    parser.feed(data)
    parser.close()
    return unmarshaller.close(), unmarshaller.getmethodname()


def _is_timeout(method: str, fault: xmlrpc.client.Fault) -> bool:
    text = str(fault.faultString).lower()
    return method.endswith("callAndWait") and ("timed out" in text or "timeout" in text)


class SAMPXXEServerProxy(xmlrpc.client.ServerProxy):
    """
    A C{ServerProxy} for SAMP hubs; see the module docstring.

    @param timeout: socket timeout in seconds for each request (keyword
        only; default: none, as the standard library).
    """

    def __init__(self, uri: str, *args: Any, timeout: Any = None, **kwargs: Any) -> None:
        if "transport" not in kwargs and len(args) < 1:
            secure = uri.lower().startswith("https:")
            transport = (_SafeTransport if secure else _Transport)(
                use_datetime=kwargs.get("use_datetime", False),
                use_builtin_types=kwargs.get("use_builtin_types", False),
            )
            transport.timeout = timeout
            kwargs["transport"] = transport
        super().__init__(uri, *args, **kwargs)

    # xmlrpc.client.ServerProxy has no public hook around a call: every
    # C{proxy.samp.hub.x(...)} (dotted names included) reaches the
    # name-mangled ServerProxy.__request through the private _Method, and
    # the public alternative (our own __getattr__) would have to re-create
    # _Method too.  This is the one place we override it, to check the
    # arguments before sending and to turn faults into pyvo's exceptions.
    def _ServerProxy__request(self, methodname: str, params: Tuple[Any, ...]) -> Any:
        encoded = tuple(samp_value(p, f"{methodname} argument {i + 1}")
                        for i, p in enumerate(params))
        try:
            return super()._ServerProxy__request(methodname, encoded)  # type: ignore[misc]
        except SAMPProxyError:
            raise
        except xmlrpc.client.Fault as fault:
            kind = SAMPProxyTimeoutError if _is_timeout(methodname, fault) else SAMPProxyError
            raise kind(fault.faultCode, fault.faultString) from None


class _PoolMethod:
    def __init__(self, pool: ServerProxyPool, name: str) -> None:
        self._pool = pool
        self._name = name

    def __getattr__(self, name: str) -> _PoolMethod:
        return _PoolMethod(self._pool, f"{self._name}.{name}")

    def __call__(self, *args: Any) -> Any:
        return self._pool._call(self._name, args)


class ServerProxyPool:
    """
    C{size} proxies made by C{proxy_class(*args, **keywords)}; each call
    borrows one (waiting if all are busy), so threads can share the pool.
    C{pool.samp.hub.ping()} calls C{samp.hub.ping} on a free proxy.
    """

    def __init__(self, size: int, proxy_class: Callable[..., Any], *args: Any,
                 **keywords: Any) -> None:
        self._free: queue.Queue[Any] = queue.Queue()
        self._all: List[Any] = [proxy_class(*args, **keywords) for _ in range(max(1, int(size)))]
        for proxy in self._all:
            self._free.put(proxy)

    def __getattr__(self, name: str) -> _PoolMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return _PoolMethod(self, name)

    def _call(self, name: str, args: Iterable[Any]) -> Any:
        proxy = self._free.get()
        try:
            method = proxy
            for part in name.split("."):
                method = getattr(method, part)
            return method(*args)
        finally:
            self._free.put(proxy)

    def shutdown(self) -> None:
        """Close every proxy's connection."""
        for proxy in self._all:
            proxy("close")()
