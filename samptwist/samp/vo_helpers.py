"""
pyvo.samp's helpers for sending data products (C{pyvo.samp.vo_helpers}).
They take a connected L{SAMPIntegratedClient} (or a Deferred
L{samptwist.client.SAMPClient}) and return, for each recipient, its
response, a L{samptwist.errors.SAMPCallError} (refused) or a
C{TimeoutError} (no answer).
"""

from ..client.helpers import (
    accessible_table,
    connection,
    find_client_id,
    send_image_to,
    send_product_to,
    send_spectrum_to,
    send_table_to,
)

__all__ = [
    "accessible_table",
    "connection",
    "find_client_id",
    "send_image_to",
    "send_product_to",
    "send_spectrum_to",
    "send_table_to",
]
