"""
The SAMP client library: a Deferred-based client for Twisted programs
(L{SAMPClient}), a blocking facade for scripts and notebooks
(L{samptwist.client.blocking}) and helpers to send tables, images and
spectra (L{samptwist.client.helpers}).
"""

from .connection import SAMPClient
from .discovery import find_hub
from .errors import BroadcastTimeout, HubUnreachable, NotConnected
from .handlers import (
    Message,
    ResponseError,
    error,
    make_message,
    ok,
    warning,
)
from .proxy import HTTPPoster, HubProxy, IPoster, TreqPoster
from .tracker import ClientInfo, ClientTracker, TrackerEvent

__all__ = [
    "BroadcastTimeout",
    "ClientInfo",
    "ClientTracker",
    "HTTPPoster",
    "HubProxy",
    "HubUnreachable",
    "IPoster",
    "Message",
    "NotConnected",
    "ResponseError",
    "SAMPClient",
    "TrackerEvent",
    "TreqPoster",
    "error",
    "find_hub",
    "make_message",
    "ok",
    "warning",
]
