"""
samptwist: a SAMP 1.3 hub and client library built on Twisted.

The public API is re-exported here; scripts that want pyvo.samp's blocking
names import them from L{samptwist.samp}.
"""

__version__ = "0.1.0"

from .client import (  # noqa: E402
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
from .errors import (  # noqa: E402
    HubAlreadyRunning,
    LockfileError,
    SAMPCallError,
    SAMPError,
    SAMPHubError,
    SAMPValueError,
)
from .hub.runner import RunningHub, start_hub  # noqa: E402
from .hub.service import HubService  # noqa: E402

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
