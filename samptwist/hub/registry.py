"""
The registered clients: L{Client} (one client as the hub sees it) and
L{ClientRegistry}, which finds them by public id and by private key.  Every
lookup is O(1); nothing here walks the registry except L{ClientRegistry.all}.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

from ..errors import SAMPHubError, SAMPValueError
from .callbacks import ICallbackTarget


def _lookup_hash(key: str) -> bytes:
    # Clients are found by a digest of their key, then the key itself is
    # compared in constant time: a lookup leaks nothing about stored keys.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_key() -> str:
    """
    @return: a fresh private key (from L{secrets}).
    """
    return "k-" + secrets.token_urlsafe(24)


@dataclass(eq=False)
class Client:
    """
    One registered client, as the hub sees it.

    @ivar public_id: the id other clients know it by.
    @ivar private_key: the secret it authenticates with.
    @ivar profile: C{"standard"}, C{"web"} or C{"hub"}.
    @ivar target: where callbacks go, or C{None} while it is not callable.
    @ivar failures: consecutive deliveries that could not reach it.
    """

    public_id: str
    private_key: str
    profile: str
    metadata: Dict[str, Any] = field(default_factory=dict)
    subscriptions: Dict[str, Any] = field(default_factory=dict)
    target: Optional[ICallbackTarget] = None
    failures: int = 0
    registered: bool = True
    last_seen: float = 0.0
    #: registration order (the hub's own client is 0)
    serial: int = 0

    @property
    def name(self) -> str:
        name = self.metadata.get("samp.name")
        return name if isinstance(name, str) else self.public_id


class ClientRegistry:
    """
    The registered clients, by public id and by private key, in
    registration order.
    """

    def __init__(self) -> None:
        self._by_id: Dict[str, Client] = {}
        self._by_key: Dict[bytes, Client] = {}
        self._last_serial = 0

    def next_serial(self) -> int:
        """
        @return: the serial number of the next client (ids C{c1}, C{c2}, ...
            are never reused).
        """
        self._last_serial += 1
        return self._last_serial

    def add(self, client: Client) -> None:
        self._by_id[client.public_id] = client
        self._by_key[_lookup_hash(client.private_key)] = client

    def remove(self, client: Client) -> None:
        self._by_id.pop(client.public_id, None)
        self._by_key.pop(_lookup_hash(client.private_key), None)

    def clear(self) -> None:
        self._by_id.clear()
        self._by_key.clear()

    def get(self, public_id: Any) -> Optional[Client]:
        """
        @return: the registered client with that public id, or C{None}.
        """
        return self._by_id.get(public_id) if isinstance(public_id, str) else None

    def for_key(self, private_key: Any) -> Optional[Client]:
        """
        @return: the registered client owning C{private_key} (compared in
            constant time), or C{None}.
        """
        if not isinstance(private_key, str):
            return None
        client = self._by_key.get(_lookup_hash(private_key))
        if (
            client is not None
            and client.registered
            and secrets.compare_digest(
                client.private_key.encode("utf-8", "surrogatepass"),
                private_key.encode("utf-8", "surrogatepass"),
            )
        ):
            return client
        return None

    def by_id(self, public_id: Any) -> Client:
        """
        @return: the registered client with that public id.
        @raise SAMPHubError: if there is none, saying whether it never
            existed or has gone.
        """
        if not isinstance(public_id, str):
            raise SAMPValueError(f"client id must be a string, not {type(public_id).__name__}")
        client = self._by_id.get(public_id)
        if client is None:
            if self._was_issued(public_id):
                raise SAMPHubError(f"client {public_id!r} is no longer registered", code=6)
            raise SAMPHubError(f"no client with id {public_id!r}", code=6)
        return client

    def _was_issued(self, public_id: str) -> bool:
        digits = public_id[1:]
        return (
            public_id.startswith("c")
            and digits.isdigit()
            and len(digits) < 12
            and 0 < int(digits) <= self._last_serial
        )

    def all(self) -> List[Client]:
        """
        @return: every registered client in registration order (a new list:
            O(clients)).
        """
        return list(self._by_id.values())

    def __iter__(self) -> Iterator[Client]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def key_count(self) -> int:
        """
        @return: how many entries the key index holds (for leak hunting).
        """
        return len(self._by_key)
