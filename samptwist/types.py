"""
SAMP data types (checklist DATA-TYPE-*, DATA-ENC-*).

A SAMP value is a string, a list of SAMP values, or a map from strings to SAMP
values; nothing else.  Strings hold only TAB, LF, CR and 0x20-0x7F.  Numbers and
booleans travel as strings with the encodings below.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Union

from .errors import SAMPValueError

SAMPValue = Union[str, list, dict]

_BAD_CHAR = re.compile(r"[^\t\n\r\x20-\x7f]")
_GOOD_BYTES = bytes(range(0x20, 0x80)) + b"\t\n\r"
_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")

#: How deeply lists and maps may nest in one value (protects the hub's stack).
MAX_DEPTH = 64


def _plain_string(value: str) -> bool:
    # Only characters SAMP allows, tested in C.
    return value.isascii() and not value.encode("ascii").translate(None, _GOOD_BYTES)


def check_string(value: str, where: str = "value") -> None:
    """
    Check that C{value} is a legal SAMP string.

    @raise SAMPValueError: if it holds a character SAMP does not allow.
    """
    if _plain_string(value):
        return  # the common case, checked in C about 4x faster than the regex
    match = _BAD_CHAR.search(value)
    if match is not None:
        raise SAMPValueError(
            f"{where}: illegal character {match.group()!r} at position "
            f"{match.start()} (SAMP strings hold only ASCII 0x20-0x7f, TAB, LF, CR)"
        )


def _plainly_valid(value: Any, depth: int) -> bool:
    # The common case, without naming positions: exact types, ASCII strings.
    kind = type(value)
    if kind is str:
        return _plain_string(value)
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if not (type(key) is str and _plain_string(key) and _plainly_valid(item, depth + 1)):
                return False
        return True
    if kind is list:
        for item in value:
            if not _plainly_valid(item, depth + 1):
                return False
        return True
    return False


def check_value(value: Any, where: str = "value", _depth: int = 0) -> None:
    """
    Check that C{value} is a SAMP value: C{str}, C{list} or C{dict} with
    C{str} keys, recursively.

    @param where: names the value in the error message, e.g. C{"message"}.
    @raise SAMPValueError: naming the offending position, for any other type
        (C{int}, C{float}, C{bool}, C{None}, C{bytes}, ...) or illegal string.
    """
    if _plainly_valid(value, _depth):
        return  # else find out what is wrong, and where
    _check_value(value, where, _depth)


def _check_value(value: Any, where: str, _depth: int) -> None:
    if _depth > MAX_DEPTH:
        raise SAMPValueError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        check_string(value, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]", _depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SAMPValueError(f"{where}: map key {key!r} is not a string")
            check_string(key, f"{where} key")
            _check_value(item, f"{where}[{key!r}]", _depth + 1)
    else:
        kind = type(value).__name__
        hint = " (encode numbers and booleans as strings)" if isinstance(
            value, (int, float)
        ) else ""
        raise SAMPValueError(
            f"{where}: {kind} {value!r:.40} is not a SAMP type; only strings, "
            f"lists and maps are allowed{hint}"
        )


def check_map(value: Any, where: str) -> dict:
    """
    Check that C{value} is a SAMP map and return it.

    @raise SAMPValueError: if it is not a map or holds illegal values.
    """
    if not isinstance(value, dict):
        raise SAMPValueError(f"{where} must be a map, not {type(value).__name__}")
    check_value(value, where)
    return value


def encode_int(value: int) -> str:
    """
    Encode an integer as a SAMP int (DATA-ENC-1).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an int: {value!r}")
    return str(value)


def decode_int(text: str) -> int:
    """
    Decode a SAMP int.

    @raise ValueError: if C{text} is not an optional sign and digits.
    """
    if not isinstance(text, str) or not _INT.match(text):
        raise ValueError(f"not a SAMP int: {text!r}")
    return int(text)


def encode_float(value: float) -> str:
    """
    Encode a finite number as a SAMP float (DATA-ENC-2).

    @raise ValueError: for NaN and infinities, which SAMP cannot encode.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no SAMP float encoding")
    return repr(value)


def decode_float(text: str) -> float:
    """
    Decode a SAMP float.

    @raise ValueError: if C{text} does not follow the SAMP float grammar.
    """
    if not isinstance(text, str) or not _FLOAT.match(text):
        raise ValueError(f"not a SAMP float: {text!r}")
    return float(text)


def encode_bool(value: bool) -> str:
    """
    Encode a boolean as C{"1"} or C{"0"} (DATA-ENC-3).
    """
    return "1" if value else "0"


def decode_bool(text: str) -> bool:
    """
    Decode a SAMP boolean leniently: any non-zero integer is true, anything
    else (including C{"true"}) is false, as JSAMP does.
    """
    try:
        return decode_int(text) != 0
    except ValueError:
        return False


def from_native(value: Any) -> SAMPValue:
    """
    Convert a native Python value to a SAMP value: C{bool}, C{int} and
    C{float} become their string encodings, tuples become lists, mappings
    become maps.

    @raise SAMPValueError: for C{None}, bytes and other unencodable values.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return encode_bool(value)
    if isinstance(value, int):
        return encode_int(value)
    if isinstance(value, float):
        try:
            return encode_float(value)
        except ValueError as e:
            raise SAMPValueError(str(e)) from None
    if isinstance(value, (list, tuple)):
        return [from_native(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): from_native(v) for k, v in value.items()}
    raise SAMPValueError(f"{type(value).__name__} {value!r:.40} has no SAMP encoding")


def samp_size(value: Any) -> int:
    """
    @return: the approximate size in bytes of a SAMP value as the hub holds
        it: the length of every string and map key, plus 8 per list item or
        map entry.  Deep or odd values are not checked here (see
        L{check_value}).
    """
    if isinstance(value, str):
        return len(value)
    size = 0
    if isinstance(value, dict):
        for key, item in value.items():
            size += (len(key) if isinstance(key, str) else 8) + 8 + samp_size(item)
        return size
    if isinstance(value, (list, tuple)):
        for item in value:
            size += 8 + samp_size(item)
        return size
    return 8
