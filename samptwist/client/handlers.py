"""
Incoming messages and the table of handlers, one per MType pattern.

A handler is called with a L{Message} and may return a value or a
L{Deferred}.  For a call the library sends the reply (CLI-CB-2): C{None} or a
map becomes a C{samp.ok} response with that C{samp.result}; a complete
response map (one holding C{samp.status}, see L{ok}, L{warning}, L{error}) is
sent as it is; an exception becomes C{samp.error} with C{samp.errortxt} and
a C{samp.debugtxt} traceback (MSG-ERR-3).  Raise L{ResponseError} to choose
the error map's fields.  One message goes to exactly one handler, the one
with the most specific matching pattern (CLI-CB-6).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from .._log import Logger
from ..constants import STATUS_ERROR as ERROR
from ..constants import STATUS_OK as OK
from ..constants import STATUS_WARNING as WARNING
from ..errors import SAMPCallError, SAMPValueError
from ..mtype import best_match, check_mtype, is_pattern
from ..types import check_map, check_value, from_native

log = Logger()


@dataclasses.dataclass
class Message:
    """
    A message delivered to this client.

    @ivar mtype: C{samp.mtype}.
    @ivar params: C{samp.params} (an empty map if the sender left it out).
    @ivar sender_id: the sender's public id.
    @ivar msg_id: the hub's msg-id for a call, C{None} for a notification.
    @ivar message: the whole message map, other keys included.
    """

    mtype: str
    params: Dict[str, Any]
    sender_id: str
    msg_id: Optional[str]
    message: Dict[str, Any]

    @property
    def is_call(self) -> bool:
        """
        Whether the sender waits for a reply (call, callAll, callAndWait).
        """
        return self.msg_id is not None


def make_message(mtype: str, params: Optional[Mapping[str, Any]] = None, **extra: Any) -> dict:
    """
    Build a message map.  Native ints, floats and booleans in C{params} are
    encoded as SAMP strings (DATA-TYPE-4).

    @raise SAMPValueError: for a bad MType or an unencodable parameter.
    """
    check_mtype(mtype)
    message: Dict[str, Any] = {"samp.mtype": mtype, "samp.params": from_native(params or {})}
    for key, value in extra.items():
        message[key] = from_native(value)
    return message


def as_message(message: Any, params: Optional[Mapping[str, Any]] = None) -> dict:
    """
    Accept either a message map or an MType (with C{params}) and return a
    checked message map.

    @raise SAMPValueError: if it is not a valid message.
    """
    if isinstance(message, str):
        return make_message(message, params)
    if params is not None:
        raise TypeError("params may only be given with an MType, not with a message map")
    message = check_map(message, "message")
    check_mtype(message.get("samp.mtype"))
    if "samp.params" in message:
        check_map(message["samp.params"], "samp.params")
    return message


def ok(result: Optional[Mapping[str, Any]] = None) -> dict:
    """
    @return: a C{samp.ok} response carrying C{result}.
    """
    return {"samp.status": OK, "samp.result": from_native(dict(result or {}))}


def error(errortxt: str, **fields: Any) -> dict:
    """
    @param fields: other error-map keys; C{usertxt}, C{debugtxt} and
        C{code} are written as C{samp.usertxt} and so on.
    @return: a C{samp.error} response.
    """
    return {"samp.status": ERROR, "samp.error": _error_map(errortxt, fields)}


def warning(result: Optional[Mapping[str, Any]], errortxt: str, **fields: Any) -> dict:
    """
    @return: a C{samp.warning} response (partial success): C{result} and an
        error map.
    """
    return {
        "samp.status": WARNING,
        "samp.result": from_native(dict(result or {})),
        "samp.error": _error_map(errortxt, fields),
    }


def _error_map(errortxt: str, fields: Mapping[str, Any]) -> dict:
    emap: Dict[str, Any] = {"samp.errortxt": str(errortxt)}
    for key, value in fields.items():
        if key in ("usertxt", "debugtxt", "code"):
            key = "samp." + key
        emap[key] = from_native(value)
    return emap


class ResponseError(Exception):
    """
    Raise from a handler to answer C{samp.error} with these fields.
    """

    def __init__(self, errortxt: str, **fields: Any) -> None:
        super().__init__(errortxt)
        self.errortxt = errortxt
        self.fields = fields


def check_response(response: Any) -> dict:
    """
    @return: C{response} if it is a valid response map (MSG-RESP-1..3).
    @raise SAMPValueError: otherwise.
    """
    check_map(response, "response")
    status = response.get("samp.status")
    if status not in (OK, WARNING, ERROR):
        raise SAMPValueError(f"response samp.status {status!r} is not samp.ok/warning/error")
    if status in (OK, WARNING) and not isinstance(response.get("samp.result", {}), dict):
        raise SAMPValueError("response samp.result must be a map")
    if status in (ERROR, WARNING):
        emap = response.get("samp.error")
        if not isinstance(emap, dict) or not isinstance(emap.get("samp.errortxt"), str):
            raise SAMPValueError("response samp.error must be a map with samp.errortxt")
    return response


def raise_for_status(response: Any, responder: str = "") -> dict:
    """
    @return: C{response} for C{samp.ok} and C{samp.warning}.
    @raise SAMPCallError: for C{samp.error} or any other status (MSG-RESP-4).
    """
    if not isinstance(response, dict):
        raise SAMPCallError({"samp.error": {"samp.errortxt": "response is not a map"}}, responder)
    if response.get("samp.status") in (OK, WARNING):
        return response
    if not isinstance(response.get("samp.error"), dict):
        status = response.get("samp.status")
        response = dict(
            response, **{"samp.error": {"samp.errortxt": f"unexpected samp.status {status!r}"}}
        )
    raise SAMPCallError(response, responder)


Handler = Callable[[Message], Any]


@dataclasses.dataclass
class Registration:
    """
    One entry of the handler table.

    @ivar auto_reply: whether the library replies to calls with the
        handler's result; if C{False} the handler must call C{reply} itself
        (failures are still answered with C{samp.error}).
    """

    pattern: str
    handler: Handler
    annotations: Dict[str, Any]
    auto_reply: bool = True


class HandlerTable:
    """
    Handlers by MType pattern, and the subscriptions map they imply.
    """

    def __init__(self) -> None:
        self._entries: Dict[str, Registration] = {}

    def add(
        self,
        pattern: str,
        handler: Handler,
        annotations: Optional[Mapping[str, Any]] = None,
        auto_reply: bool = True,
    ) -> Registration:
        """
        Handle messages matching C{pattern} (an MType, C{"X.*"} or C{"*"}),
        replacing any handler for the same pattern.

        @raise SAMPValueError: for a malformed pattern or annotation map.
        """
        if not is_pattern(pattern):
            raise SAMPValueError(
                f"invalid subscription pattern {pattern!r}: an MType, MType.* or * expected"
            )
        annotations = dict(annotations or {})
        check_value(annotations, "annotations")
        entry = Registration(pattern, handler, annotations, auto_reply)
        self._entries[pattern] = entry
        return entry

    def remove(self, pattern: str) -> None:
        """
        Stop handling C{pattern}; no error if it was not handled.
        """
        self._entries.pop(pattern, None)

    def lookup(self, mtype: str) -> Optional[Registration]:
        """
        @return: the registration with the most specific pattern matching
            C{mtype}, or C{None}.
        """
        pattern = best_match(self._entries, mtype)
        return None if pattern is None else self._entries[pattern]

    def subscriptions(self) -> Dict[str, Dict[str, Any]]:
        """
        @return: a subscriptions map: every pattern with its annotations.
        """
        return {p: dict(e.annotations) for p, e in self._entries.items()}

    def __contains__(self, pattern: object) -> bool:
        return pattern in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


def run_handler(entry: Registration, message: Message) -> Deferred:
    """
    Run C{entry}'s handler for C{message}.

    @return: a L{Deferred} that never fails: it fires with the response map
        to send, or with C{None} when nothing should be sent (a notification,
        or a call whose handler replies itself and did not fail).
    """
    d = maybeDeferred(entry.handler, message)

    def done(result: Any) -> Optional[dict]:
        if not message.is_call or not entry.auto_reply:
            return None
        return _to_response(result)

    def failed(f: Failure) -> Optional[dict]:
        if not f.check(ResponseError):
            log.failure(
                "handler for {mtype} failed", f, mtype=message.mtype, sender=message.sender_id
            )
        if not message.is_call:
            return None
        return failure_response(f)

    d.addCallbacks(done, failed)
    return d


def _to_response(result: Any) -> dict:
    try:
        if result is None:
            return ok()
        if isinstance(result, Mapping) and "samp.status" in result:
            return check_response(dict(result))
        if isinstance(result, Mapping):
            return ok(result)
        raise SAMPValueError(
            f"handler returned {type(result).__name__}, not a result map or response"
        )
    except (SAMPValueError, ValueError) as e:
        return error(f"invalid handler result: {e}")


def failure_response(f: Failure) -> dict:
    """
    @return: the C{samp.error} response for a handler that failed with C{f}.
    """
    if f.check(ResponseError):
        value = f.value
        try:
            return error(value.errortxt, **value.fields)  # type: ignore[union-attr]
        except Exception:
            return error(str(value.errortxt))  # type: ignore[union-attr]
    if f.check(SAMPCallError):
        return {"samp.status": ERROR, "samp.error": f.value.error}  # type: ignore[union-attr]
    text = f.getErrorMessage() or f.type.__name__  # type: ignore[union-attr]
    debug = f.getTraceback()
    return error(_ascii(text), debugtxt=_ascii(debug))


def _ascii(text: str) -> str:
    cleaned = text.encode("ascii", "replace").decode("ascii")
    return "".join(c if c in "\t\n\r" or 0x20 <= ord(c) < 0x80 else "?" for c in cleaned)
