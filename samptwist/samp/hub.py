"""
pyvo.samp's C{SAMPHubServer} and C{WebProfileDialog} (C{pyvo.samp.hub}):
a samptwist hub started and stopped from blocking code.
"""

from ..hub.blocking import SAMPHubServer, WebProfileDialog
from ._internals import refuse

__all__ = ["SAMPHubServer", "WebProfileDialog"]

__getattr__ = refuse(__name__, {
    "get_mtype_subtypes": "MType matching is samptwist.mtype.matches(pattern, mtype)",
})
