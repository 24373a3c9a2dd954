"""
pyvo.samp's C{SAMPHubProxy} (C{pyvo.samp.hub_proxy}).
"""

from ..client.blocking import SAMPHubProxy

__all__ = ["SAMPHubProxy"]
