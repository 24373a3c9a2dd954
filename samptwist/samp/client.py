"""
pyvo.samp's lower-level C{SAMPClient} (C{pyvo.samp.client}): the blocking
facade's client over a L{samptwist.samp.hub_proxy.SAMPHubProxy}.  (Twisted
programs use the Deferred L{samptwist.client.SAMPClient}.)
"""

from ..client.blocking import SAMPClient

__all__ = ["SAMPClient"]
