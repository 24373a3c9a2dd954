"""
What the Web Profile keeps about its registered clients: one L{WebClient}
session each (translator token, pull queue, idle timer, URL permissions),
found by private key or translator token, and the leftover callbacks of an
ejected client (a tombstone) for one last C{pullCallbacks}.

The hub core owns registration; a session is made when the core registers
a web client and dropped when the core tells the Web Profile's policy the
client left (L{WebSessions.left}, in the same turn).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.interfaces import IDelayedCall

from ...errors import SAMPHubError
from ..core import Client, Hub
from .queue import WebCallbackQueue


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(eq=False)
class WebClient:
    """
    What the Web Profile keeps about one registered web client.

    @ivar permitted: the URLs it may have translated (L{UrlTracker}).
    @ivar queue: its pull queue while it allows callbacks.
    @ivar polls: how many C{pullCallbacks} of it are parked (the idle timer
        is paused meanwhile).
    """

    client: Client
    token: str
    origin: Optional[str]
    permitted: Any
    queue: Optional[WebCallbackQueue] = None
    idle: Optional[IDelayedCall] = None
    polls: int = 0


class WebSessions:
    """
    The sessions of the registered web clients of one hub.

    @param idle_timeout: seconds without a request after which a client is
        ejected (0: never); a parked C{pullCallbacks} counts as activity.
    @param tombstone_time: seconds an ejected client's leftover callbacks
        stay available.
    """

    def __init__(
        self, hub: Hub, reactor: Any, idle_timeout: float, tombstone_time: float
    ) -> None:
        self.hub = hub
        self.reactor = reactor
        self.idle_timeout = idle_timeout
        self.tombstone_time = tombstone_time
        self._clients: Dict[str, WebClient] = {}
        self._by_token: Dict[bytes, WebClient] = {}
        self._tombstones: Dict[bytes, Tuple[str, WebCallbackQueue, IDelayedCall]] = {}

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def clients(self) -> List[WebClient]:
        """
        The registered web clients (a new list).
        """
        return list(self._clients.values())

    def add(self, client: Client, origin: Optional[str], permitted: Any) -> WebClient:
        """
        Start the session of C{client}, just registered, with a fresh
        translator token and its idle timer running.
        """
        token = "t-" + secrets.token_urlsafe(24)
        state = WebClient(client, token, origin, permitted)
        self._clients[client.public_id] = state
        self._by_token[_digest(token)] = state
        self.touch(state)
        return state

    def for_key(self, private_key: Any) -> WebClient:
        """
        @return: the session of the web client owning C{private_key}; the
            request counts as its activity.
        @raise SAMPHubError: for an unknown key, or one of another
            profile's client.
        """
        client = self.hub.client_for_key(private_key)
        state = self._clients.get(client.public_id)
        if client.profile != "web" or state is None or state.client is not client:
            # A Standard Profile key is not valid here; say no more than that.
            raise SAMPHubError("unknown or expired private key (register first)", code=5)
        self.touch(state)
        return state

    def for_token(self, token: str) -> Optional[WebClient]:
        """
        @return: the web client whose translator token is C{token}, or
            C{None} (compared in constant time).
        """
        state = self._by_token.get(_digest(token))
        if state is None or not secrets.compare_digest(
            state.token.encode("ascii"), token.encode("utf-8", "surrogatepass")
        ):
            return None
        return state

    # -- idle time-out -------------------------------------------------------

    def touch(self, state: WebClient) -> None:
        """
        (Re)start C{state}'s idle timer, unless a poll is parked.
        """
        if state.polls or not state.client.registered or self.idle_timeout <= 0:
            return
        if state.idle is not None and state.idle.active():
            state.idle.reset(self.idle_timeout)
        else:
            state.idle = self.reactor.callLater(self.idle_timeout, self._expire, state)

    def pause_idle(self, state: WebClient) -> None:
        """
        A poll of C{state} is parked: stop its idle timer.
        """
        state.polls += 1
        _cancel(state.idle)
        state.idle = None

    def resume_idle(self, state: WebClient) -> None:
        """
        A parked poll of C{state} has ended.
        """
        state.polls -= 1
        self.touch(state)

    def _expire(self, state: WebClient) -> None:
        state.idle = None
        if state.client.registered:
            self.hub.eject(
                state.client,
                f"no request for {self.idle_timeout:g}s (web client stopped polling)",
            )

    # -- leaving -------------------------------------------------------------

    def left(self, client: Client, reason: str) -> None:
        """
        C{client} has left the hub: end its session; if it was ejected with
        callbacks still queued (its C{samp.hub.disconnect}), keep them for
        one last C{pullCallbacks} for C{tombstone_time} seconds.
        """
        state = self._clients.pop(client.public_id, None)
        if state is None:
            return
        self._by_token.pop(_digest(state.token), None)
        _cancel(state.idle)
        state.idle = None
        queue = state.queue
        if queue is not None and len(queue) and reason != "unregistered":
            key = client.private_key
            digest = _digest(key)
            timer = self.reactor.callLater(
                self.tombstone_time, self._tombstones.pop, digest, None
            )
            old = self._tombstones.pop(digest, None)
            if old is not None:
                _cancel(old[2])
            self._tombstones[digest] = (key, queue, timer)

    def tombstone(self, private_key: Any) -> Optional[List[Dict[str, Any]]]:
        """
        @return: the leftover callbacks of the ejected client whose key was
            C{private_key} (once), or C{None}.
        """
        if not isinstance(private_key, str):
            return None
        entry = self._tombstones.get(_digest(private_key))
        if entry is None or not secrets.compare_digest(
            entry[0].encode("utf-8", "surrogatepass"),
            private_key.encode("utf-8", "surrogatepass"),
        ):
            return None
        self._tombstones.pop(_digest(private_key), None)
        _cancel(entry[2])
        return entry[1].take()

    def close(self) -> None:
        """
        Forget leftover state and stop every timer (the hub is stopping).
        """
        for _, _, timer in self._tombstones.values():
            _cancel(timer)
        self._tombstones.clear()
        for state in self._clients.values():
            _cancel(state.idle)


def _cancel(call: Optional[IDelayedCall]) -> None:
    if call is not None and call.active():
        call.cancel()
