"""
pyvo.samp's C{SAMPIntegratedClient} (C{pyvo.samp.integrated_client}).
"""

from ..client.blocking import SAMPIntegratedClient

__all__ = ["SAMPIntegratedClient"]
