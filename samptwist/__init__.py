"""
samptwist: a SAMP 1.3 hub and client library built on Twisted.

The public API is re-exported here; scripts that want pyvo.samp's blocking
names import them from L{samptwist.samp}.

The client library and the hub are imported on first use of one of their
names (PEP 562), so that a hub process (C{twistd samphub}) never imports the
client library, and a client never imports the hub.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


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
