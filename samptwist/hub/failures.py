"""
What the hub does when a callback cannot be delivered: count it, log it
(once per flood of a full queue, not once per message), and eject a client
that could not be reached several times in a row (STD-FAIL-5, ADM-DISC-1).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Set

from twisted.python.failure import Failure

from .._log import Logger
from .callbacks import DeliveryFailed, QueueFull
from .registry import Client


class DeliveryHealth:
    """
    The delivery record of every client.

    @param stats: the hub's counters (C{delivery_failures} is counted here).
    @param max_failures: consecutive unreachable deliveries after which a
        client is ejected (0: never).
    @param eject: C{eject(client, reason)}, the hub's.
    """

    log = Logger()

    def __init__(
        self, stats: Any, max_failures: int, eject: Callable[[Client, str], None]
    ) -> None:
        self.stats = stats
        self.max_failures = max_failures
        self.eject = eject
        #: clients whose full queue has been logged (until a delivery succeeds)
        self._full_logged: Set[str] = set()

    def delivered(self, client: Client) -> None:
        """
        A callback reached C{client}.
        """
        client.failures = 0
        if self._full_logged:
            self._full_logged.discard(client.public_id)

    def forget(self, client: Client) -> None:
        """
        C{client} left.
        """
        self._full_logged.discard(client.public_id)

    def failed(self, f: Failure, client: Client, what: str, message: Dict[str, Any]) -> str:
        """
        A callback (C{what}: notification, call, response) to C{client}
        failed with C{f}.

        @return: why, for the sender.
        """
        error = f.value if isinstance(f.value, DeliveryFailed) else None
        reason = error.reason if error is not None else f.getErrorMessage()
        if error is not None and error.gone:
            return reason
        self.stats.delivery_failures += 1
        if isinstance(error, QueueFull):
            # A sender flooding a slow client: one line, not one per message.
            if client.public_id in self._full_logged:
                return reason
            self._full_logged.add(client.public_id)
        self.log.warn(
            "{what} {mtype} to {client_id} ({name}) failed: {reason}",
            what=what,
            mtype=message.get("samp.mtype"),
            client_id=client.public_id,
            name=client.name,
            reason=reason,
        )
        if error is not None and error.unreachable and client.registered:
            client.failures += 1
            if self.max_failures and client.failures >= self.max_failures:
                self.eject(
                    client,
                    f"callback failed {client.failures} times in a row (last: {reason})",
                )
        return reason
