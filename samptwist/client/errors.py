"""
Exceptions raised only by the client library; they extend the shared ones in
L{samptwist.errors} so that C{except SAMPHubError} catches them too.
"""

from __future__ import annotations

from typing import Any, Dict, List

from twisted.internet.defer import TimeoutError

from ..errors import SAMPError, SAMPHubError


class HubUnreachable(SAMPHubError):
    """
    The hub could not be reached at all (connection refused, no answer,
    an HTTP error or an answer that is not XML-RPC).
    """


class NotConnected(SAMPHubError):
    """
    The client is not registered with a hub (never connected, disconnected,
    or the hub went away).
    """


class BroadcastTimeout(TimeoutError, SAMPError):
    """
    A C{callAll} did not collect every response before its timeout.

    @ivar responses: the responses that did arrive, recipient id to response
        map.
    @ivar missing: recipient ids that never answered.
    """

    def __init__(self, responses: Dict[str, Any], missing: List[str]) -> None:
        super().__init__(
            f"no response from {', '.join(sorted(missing)) or 'unknown recipients'} in time"
        )
        self.responses = responses
        self.missing = missing
