"""
Calls waiting for replies: L{PendingCall} and L{PendingCalls}, indexed by
msg-id, by sender and by recipient, so that ending one client's calls (it
left) costs O(that client's calls), never O(all pending calls).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Dict, List, Optional

from twisted.internet.defer import Deferred

from .registry import Client


@dataclass(eq=False)
class PendingCall:
    """
    A call that has been (or is being) delivered and is waiting for a reply.

    @ivar number: the hub's count of calls when this one was made (for
        status displays).
    @ivar started: when it was made, in reactor seconds.
    @ivar delivery: the delivery of the call while it is under way; it is
        cancelled when the call ends first, so a queued callback of an
        ended call does not linger.
    """

    msg_id: str
    sender: Client
    recipient: Client
    msg_tag: Optional[str]
    mtype: str = ""
    waiter: Optional[Deferred] = None  # set for callAndWait
    number: int = 0
    started: float = 0.0
    delivery: Optional[Deferred] = None


def new_msg_id() -> str:
    """
    @return: a fresh, unguessable msg-id.
    """
    return "m-" + secrets.token_urlsafe(18)


class PendingCalls:
    """
    The pending calls of a hub, in the order they were made.
    """

    def __init__(self) -> None:
        self._by_id: Dict[str, PendingCall] = {}
        self._by_sender: Dict[Client, Dict[str, PendingCall]] = {}
        self._by_recipient: Dict[Client, Dict[str, PendingCall]] = {}

    def add(self, pending: PendingCall) -> None:
        self._by_id[pending.msg_id] = pending
        self._by_sender.setdefault(pending.sender, {})[pending.msg_id] = pending
        self._by_recipient.setdefault(pending.recipient, {})[pending.msg_id] = pending

    def remove(self, pending: PendingCall) -> bool:
        """
        Forget C{pending}.

        @return: whether it was pending.
        """
        if self._by_id.pop(pending.msg_id, None) is None:
            return False
        for index, client in (
            (self._by_sender, pending.sender), (self._by_recipient, pending.recipient),
        ):
            calls = index.get(client)
            if calls is not None:
                calls.pop(pending.msg_id, None)
                if not calls:
                    del index[client]
        return True

    def get(self, msg_id: str) -> Optional[PendingCall]:
        return self._by_id.get(msg_id)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def count_from(self, sender: Client) -> int:
        """
        @return: how many calls C{sender} has waiting for replies.
        """
        calls = self._by_sender.get(sender)
        return len(calls) if calls else 0

    def from_sender(self, sender: Client) -> List[PendingCall]:
        """
        @return: the calls C{sender} made that wait for replies, oldest first.
        """
        return list(self._by_sender.get(sender, {}).values())

    def to_recipient(self, recipient: Client) -> List[PendingCall]:
        """
        @return: the calls waiting for C{recipient}'s reply, oldest first.
        """
        return list(self._by_recipient.get(recipient, {}).values())

    def all(self) -> List[PendingCall]:
        """
        @return: every pending call, oldest first (a new list).
        """
        return list(self._by_id.values())

    def sender_count(self) -> int:
        """
        @return: how many clients have calls waiting (for leak hunting).
        """
        return len(self._by_sender)

    def clear(self) -> None:
        self._by_id.clear()
        self._by_sender.clear()
        self._by_recipient.clear()
