"""
Which MTypes web pages may send (WEB-SEC-5, ADM-RESV-1, notes 19).

A Web Profile client may send a message only if its MType is on the safe
list (or an extra list the hub was configured with), unless the recipient's
subscription annotation C{samp.mostly-harmless} (or
C{x-samp.mostly-harmless}) says otherwise: C{"1"} allows it, C{"0"} always
blocks it.  Hub-administrative MTypes such as C{samp.hub.*} are therefore
refused by default.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from ...mtype import SAFE_MTYPES, is_pattern, matches
from ...types import decode_int

_HARMLESS_KEYS = ("samp.mostly-harmless", "x-samp.mostly-harmless")


def _harmless_flag(annotation: Any) -> Optional[bool]:
    if not isinstance(annotation, dict):
        return None
    for key in _HARMLESS_KEYS:
        value = annotation.get(key)
        if isinstance(value, str):
            try:
                return decode_int(value.strip()) != 0
            except ValueError:
                continue
    return None


class MessageRestriction:
    """
    Decides whether a web client may send an MType to a recipient.

    @ivar patterns: the allowed MType patterns.
    @ivar enabled: C{False} lifts the restriction entirely (not advisable).
    """

    def __init__(
        self,
        allowed: Iterable[str] = SAFE_MTYPES,
        extra: Iterable[str] = (),
        enabled: bool = True,
    ) -> None:
        """
        @param allowed: the safe list; the default is L{SAFE_MTYPES}.
        @param extra: further patterns to allow (e.g. C{"coverage.*"}).
        @raise ValueError: for a malformed pattern.
        """
        self.patterns = tuple(allowed) + tuple(extra)
        for pattern in self.patterns:
            if not is_pattern(pattern):
                raise ValueError(f"{pattern!r} is not an MType pattern")
        self.enabled = enabled

    def listed(self, mtype: str) -> bool:
        """
        @return: whether C{mtype} is on the allowed list.
        """
        return any(matches(pattern, mtype) for pattern in self.patterns)

    def visible(self, subscriptions: Dict[str, Any]) -> Dict[str, Any]:
        """
        @return: the entries of a subscriptions map that a web client may
            send to (ADM-SUBS-1 practice: pages learn only what they may use).
        """
        if not self.enabled:
            return subscriptions
        return {key: note for key, note in subscriptions.items() if self.permits(key, note)}

    def permits(self, mtype: str, annotation: Any = None) -> bool:
        """
        @param annotation: the recipient's subscription annotation for
            C{mtype}, if known.
        @return: whether a web client may send C{mtype} to that recipient.
        """
        if not self.enabled:
            return True
        flag = _harmless_flag(annotation)
        if flag is not None:
            return flag
        return self.listed(mtype)
