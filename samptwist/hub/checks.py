"""
Checking what a client hands the hub: messages, MTypes, msg-tags and
callAndWait time-outs, against the SAMP rules and the hub's L{Limits}.
Each refusal is a L{SAMPValueError} or L{SAMPHubError} saying what was
wrong (and which limit, if one was passed).
"""

from __future__ import annotations

from typing import Any, Dict

from ..errors import SAMPValueError
from ..mtype import check_mtype
from ..types import check_map, check_string, decode_int
from .limits import Limits, over_limit


def check_mtype_length(limits: Limits, mtype: Any) -> None:
    """
    @raise SAMPHubError: if C{mtype} is a string over C{max-mtype-length}.
    """
    most = limits.max_mtype_length
    if isinstance(mtype, str) and len(mtype) > most:
        raise over_limit("MType", len(mtype), most, "characters", "max-mtype-length")


def check_message(limits: Limits, message: Any) -> str:
    """
    @return: the MType of C{message}, a SAMP map with a valid C{samp.mtype}
        and (optional) C{samp.params} map.
    @raise SAMPValueError: for anything else.
    """
    check_map(message, "message")
    mtype = message.get("samp.mtype")
    if mtype is None:
        raise SAMPValueError("message has no samp.mtype")
    check_mtype_length(limits, mtype)
    check_mtype(mtype)
    params = message.get("samp.params", {})
    if not isinstance(params, dict):
        raise SAMPValueError(f"samp.params must be a map, not {type(params).__name__}")
    return mtype


def check_msg_tag(limits: Limits, msg_tag: Any) -> None:
    """
    @raise SAMPValueError: if C{msg_tag} is not a SAMP string, or is over
        C{max-msg-tag-length}.
    """
    if not isinstance(msg_tag, str):
        raise SAMPValueError("msg-tag must be a string")
    if len(msg_tag) > limits.max_msg_tag_length:
        raise over_limit(
            "msg-tag", len(msg_tag), limits.max_msg_tag_length, "characters",
            "max-msg-tag-length",
        )
    check_string(msg_tag, "msg-tag")


def timeout_seconds(timeout: Any) -> float:
    """
    @param timeout: seconds as a SAMP int (a string of digits); an int, or a
        decimal string, is tolerated.
    @return: the seconds.
    @raise SAMPValueError: for anything else.
    """
    if isinstance(timeout, bool):
        raise SAMPValueError("timeout must be a SAMP int (a string of digits)")
    if isinstance(timeout, int):
        return float(timeout)
    if isinstance(timeout, str):
        try:
            return float(decode_int(timeout.strip()))
        except ValueError:
            try:
                return float(timeout)
            except ValueError:
                pass
    raise SAMPValueError(f"timeout must be a SAMP int number of seconds, not {timeout!r:.40}")


def message(mtype: str, params: Dict[str, Any]) -> Dict[str, Any]:
    """
    @return: the SAMP message map of C{mtype} with C{params}.
    """
    return {"samp.mtype": mtype, "samp.params": params}
