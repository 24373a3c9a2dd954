"""
pyvo.samp's C{SAMPHubServer} and C{WebProfileDialog} (C{pyvo.samp.hub}):
a samptwist hub started and stopped from blocking code.
"""

from ..hub.blocking import SAMPHubServer, WebProfileDialog

__all__ = ["SAMPHubServer", "WebProfileDialog"]
