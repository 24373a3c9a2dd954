"""
How a client is found by its C{samp.name}: one rule for the Deferred
helpers, the tracker and the blocking facade.

A name given by a user (C{"TOPCAT"}) matches a client's C{samp.name}
exactly first; if none matches exactly, case is ignored (TOPCAT calls itself
C{"topcat"}).  Among several matches the first id in string order wins, so the
answer does not depend on the order in which the hub lists clients.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple


def matches_by_name(candidates: Iterable[Tuple[str, Optional[str]]], name: str) -> List[str]:
    """
    @param candidates: C{(client id, samp.name or None)} pairs.
    @param name: the name asked for.
    @return: the sorted ids of the clients named exactly C{name}, or if there
        are none, of those named C{name} ignoring case; empty if none.
    """
    pairs = list(candidates)
    for same in (lambda n: n == name, lambda n: n.lower() == name.lower()):
        ids = sorted(i for i, n in pairs if n is not None and same(n))
        if ids:
            return ids
    return []


def pick_by_name(candidates: Iterable[Tuple[str, Optional[str]]], name: str) -> Optional[str]:
    """
    @return: the first of L{matches_by_name}, or C{None} if no name matches.
        (The command line uses L{matches_by_name} itself, to refuse an
        ambiguous name instead of picking one.)
    """
    ids = matches_by_name(candidates, name)
    return ids[0] if ids else None
