"""
What one client may hold in the hub: the bounds the core, the delivery
queues and the profiles apply, in one place (docs/security.md lists each
with its default and fault text).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SAMPHubError

#: Longest callback URL a Standard Profile client may declare (characters).
MAX_CALLBACK_URL = 4096


@dataclass(frozen=True)
class Limits:
    """
    Per-client bounds of a hub.

    @ivar max_clients: registered clients at once, the hub's own excluded
        (0: no limit).
    @ivar max_pending_calls: calls one client may have waiting for replies.
    @ivar max_mtype_length: characters in an MType.
    @ivar max_msg_tag_length: characters in a msg-tag.
    @ivar max_metadata_bytes: size of one client's metadata (see
        L{samptwist.types.samp_size}).
    @ivar max_subscriptions_bytes: size of one client's subscriptions map.
    @ivar max_queue: callbacks waiting for one Standard Profile client.
    @ivar max_queue_bytes: size of the messages waiting for one client; a
        single callback larger than this is still accepted into an empty
        queue (the request size limit bounds it).
    """

    max_clients: int = 0
    max_pending_calls: int = 10_000
    max_mtype_length: int = 256
    max_msg_tag_length: int = 1024
    max_metadata_bytes: int = 256 * 1024
    max_subscriptions_bytes: int = 256 * 1024
    max_queue: int = 10_000
    max_queue_bytes: int = 64 * 1024 * 1024


DEFAULT_LIMITS = Limits()


def over_limit(what: str, size: int, limit: int, unit: str, name: str) -> SAMPHubError:
    """
    @return: the fault for C{what} of C{size} C{unit} over the limit C{name}
        (e.g. C{max-mtype-length}) of C{limit}.
    """
    return SAMPHubError(f"{what} is too large: {size} {unit}, over the hub's limit of "
                        f"{limit} ({name})")
