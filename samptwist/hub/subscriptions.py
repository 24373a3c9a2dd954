"""
Routing: which callable clients are subscribed to an MType.  The index maps
each subscription key (C{"a.b"}, C{"a.*"}, C{"*"}) to the clients declaring
it, so finding an MType's subscribers costs O(subscribers), never
O(clients); answers are cached per MType until a subscription or a client's
callability changes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..mtype import subscription_for
from .registry import Client

#: the most MTypes whose answers are cached at once
CACHE_SIZE = 10_000


def _serial(client: Client) -> int:
    return client.serial


def keys_matching(mtype: str) -> List[str]:
    """
    @return: every subscription key that can match C{mtype}: itself, C{"*"}
        and C{"a.*"}, C{"a.b.*"}... for each proper prefix (see L{mtype}).
    """
    keys = [mtype, "*"]
    end = mtype.find(".")
    while end >= 0:
        keys.append(mtype[: end + 1] + "*")
        end = mtype.find(".", end + 1)
    return keys


class SubscriptionIndex:
    """
    The clients subscribed to each subscription key.
    """

    def __init__(self) -> None:
        # subscription key -> the clients declaring it (a dict as an ordered set)
        self._by_pattern: Dict[str, Dict[Client, None]] = {}
        self._cache: Dict[str, List[Tuple[Client, Any]]] = {}

    def add(self, client: Client) -> None:
        """
        Index C{client}'s current subscriptions.
        """
        for pattern in client.subscriptions:
            self._by_pattern.setdefault(pattern, {})[client] = None
        if client.subscriptions:
            self._cache.clear()

    def remove(self, client: Client) -> None:
        """
        Forget C{client}'s current subscriptions (call before they change).
        """
        for pattern in client.subscriptions:
            holders = self._by_pattern.get(pattern)
            if holders is not None:
                holders.pop(client, None)
                if not holders:
                    del self._by_pattern[pattern]
        if client.subscriptions:
            self._cache.clear()

    def invalidate(self) -> None:
        """
        Forget cached answers (a subscribed client became callable or not).
        """
        self._cache.clear()

    def clear(self) -> None:
        self._by_pattern.clear()
        self._cache.clear()

    def subscribed(self, mtype: str) -> List[Tuple[Client, Any]]:
        """
        @return: (client, annotation) for every callable client subscribed to
            C{mtype}, in registration order (the list is shared: do not
            change it).
        """
        cached = self._cache.get(mtype)
        if cached is None:
            found: Dict[Client, None] = {}
            for pattern in keys_matching(mtype):
                holders = self._by_pattern.get(pattern)
                if holders:
                    found.update(holders)
            ordered = sorted(found, key=_serial) if len(found) > 1 else list(found)
            cached = []
            for client in ordered:
                if client.target is not None:
                    note = subscription_for(client.subscriptions, mtype)
                    if note is not None:
                        cached.append((client, note))
            if len(self._cache) > CACHE_SIZE:
                self._cache.clear()
            self._cache[mtype] = cached
        return cached
