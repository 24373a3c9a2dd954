"""
samptwist: a SAMP 1.3 hub and client library built on Twisted.

The public API is re-exported here; scripts that want pyvo.samp's blocking
names import them from L{samptwist.samp}.

The client library and the hub are imported on first use of one of their
names (PEP 562), so that a hub process (C{twistd samphub}) never imports the
client library, and a client never imports the hub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from ._lazy import lazy_exports
from ._version import __version__
from .errors import (
    HubAlreadyRunning,
    LockfileError,
    SAMPCallError,
    SAMPError,
    SAMPHubError,
    SAMPValueError,
)

if TYPE_CHECKING:
    from .client import (
        BroadcastTimeout,
        HubUnreachable,
        Message,
        NotConnected,
        ResponseError,
        SAMPClient,
        error,
        find_hub,
        make_message,
        ok,
        warning,
    )
    from .hub.runner import RunningHub, start_hub
    from .hub.service import HubService

#: public name -> the module that defines it, imported on first use
_LAZY: Dict[str, str] = {
    **dict.fromkeys(
        [
            "BroadcastTimeout", "HubUnreachable", "Message", "NotConnected", "ResponseError",
            "SAMPClient", "error", "find_hub", "make_message", "ok", "warning",
        ],
        ".client",
    ),
    "RunningHub": ".hub.runner",
    "start_hub": ".hub.runner",
    "HubService": ".hub.service",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "BroadcastTimeout",
    "HubAlreadyRunning",
    "HubService",
    "HubUnreachable",
    "LockfileError",
    "Message",
    "NotConnected",
    "ResponseError",
    "RunningHub",
    "SAMPCallError",
    "SAMPClient",
    "SAMPError",
    "SAMPHubError",
    "SAMPValueError",
    "__version__",
    "error",
    "find_hub",
    "make_message",
    "ok",
    "start_hub",
    "warning",
]
