"""
MType syntax and subscription matching (checklist MT-SYN-*, MT-SUB-*).

C{"X.*"} matches every MType below C{X} (C{X.a}, C{X.a.b}) but neither C{X}
itself nor a sibling such as C{Xyz}; C{"*"} matches everything.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional, Tuple

from .errors import SAMPValueError

#: MTypes (patterns) a Web Profile page may send to any subscriber; also
#: pyvo's C{SAFE_MTYPES} (samptwist.samp.constants).
SAFE_MTYPES: Tuple[str, ...] = (
    "samp.app.*",
    "samp.msg.progress",
    "table.*",
    "image.*",
    "coord.*",
    "spectrum.*",
    "bibcode.*",
    "voresource.*",
)

_MTYPE = re.compile(r"[0-9a-zA-Z_-]+(\.[0-9a-zA-Z_-]+)*\Z")
_PATTERN = re.compile(r"(\*|[0-9a-zA-Z_-]+(\.[0-9a-zA-Z_-]+)*(\.\*)?)\Z")


def is_mtype(text: Any) -> bool:
    """
    Return whether C{text} is a syntactically valid MType.
    """
    return isinstance(text, str) and _MTYPE.match(text) is not None


def is_pattern(text: Any) -> bool:
    """
    Return whether C{text} is a valid subscription key: an MType, an MType
    followed by C{".*"}, or C{"*"}.
    """
    return isinstance(text, str) and _PATTERN.match(text) is not None


def check_mtype(text: Any) -> str:
    """
    @return: C{text}, if it is a valid MType.
    @raise SAMPValueError: otherwise, with a readable reason.
    """
    if not is_mtype(text):
        raise SAMPValueError(
            f"invalid MType {text!r}: atoms of [0-9a-zA-Z_-] separated by single dots expected"
        )
    return text


def check_subscriptions(subs: Any) -> dict:
    """
    Check a subscriptions map: valid pattern keys, map values.

    @return: C{subs}.
    @raise SAMPValueError: for a non-map, a bad key or a non-map annotation.
    """
    if not isinstance(subs, dict):
        raise SAMPValueError(f"subscriptions must be a map, not {type(subs).__name__}")
    for key, value in subs.items():
        if not is_pattern(key):
            raise SAMPValueError(
                f"invalid subscription key {key!r}: an MType, MType.* or * expected"
            )
        if not isinstance(value, dict):
            raise SAMPValueError(
                f"subscription {key!r}: annotation must be a map, not {type(value).__name__}"
            )
    return subs


def specificity(pattern: str, mtype: str) -> int:
    """
    Return how specifically C{pattern} matches C{mtype}, or -1 if it does not.

    An exact match ranks above every wildcard; a wildcard ranks by its number
    of atoms, so C{"a.b.*"} beats C{"a.*"}, which beats C{"*"} (rank 0).
    """
    if pattern == mtype:
        return 1_000_000
    if pattern == "*":
        return 0
    if pattern.endswith(".*"):
        prefix = pattern[:-1]  # keep the dot: "a.b." must start "a.b.c"
        if mtype.startswith(prefix) and len(mtype) > len(prefix):
            return prefix.count(".")
    return -1


def matches(pattern: str, mtype: str) -> bool:
    """
    Return whether subscription C{pattern} matches concrete C{mtype}.
    """
    return specificity(pattern, mtype) >= 0


def best_match(
    patterns: Iterable[str], mtype: str
) -> Optional[str]:
    """
    @return: the most specific of C{patterns} that matches C{mtype}, or
        C{None} if none does.
    """
    best: Tuple[int, Optional[str]] = (-1, None)
    for pattern in patterns:
        rank = specificity(pattern, mtype)
        if rank > best[0]:
            best = (rank, pattern)
    return best[1]


def subscription_for(subs: Mapping[str, Any], mtype: str) -> Optional[Any]:
    """
    @return: the annotation map of the most specific entry of C{subs} matching
        C{mtype}, or C{None} if the client is not subscribed to it.
    """
    if mtype in subs:
        return subs[mtype]
    pattern = best_match(subs, mtype)
    return None if pattern is None else subs[pattern]
