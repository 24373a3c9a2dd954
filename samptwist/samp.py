"""
Drop-in names for scripts written for pyvo.samp (formerly astropy.samp).

A script ports by changing its import::

    from pyvo.samp import SAMPHubServer, SAMPIntegratedClient   # before
    from samptwist.samp import SAMPHubServer, SAMPIntegratedClient  # after

Everything here is blocking, backed by one Twisted reactor in a background
thread; Twisted programs use L{samptwist.client.SAMPClient} and
L{samptwist.hub.runner.start_hub} instead.
"""

from .client.blocking import SAMPIntegratedClient
from .client.helpers import (
    accessible_table,
    connection,
    find_client_id,
    send_image_to,
    send_product_to,
    send_spectrum_to,
    send_table_to,
)
from .errors import SAMPError, SAMPHubError
from .hub.blocking import SAMPHubServer

#: pyvo's name for errors raised on the client side.
SAMPClientError = SAMPError
#: pyvo's name for errors of the hub proxy.
SAMPProxyError = SAMPHubError

SAMP_STATUS_OK = "samp.ok"
SAMP_STATUS_WARNING = "samp.warning"
SAMP_STATUS_ERROR = "samp.error"

__all__ = [
    "SAMPClientError",
    "SAMPHubError",
    "SAMPHubServer",
    "SAMPIntegratedClient",
    "SAMPProxyError",
    "SAMP_STATUS_ERROR",
    "SAMP_STATUS_OK",
    "SAMP_STATUS_WARNING",
    "accessible_table",
    "connection",
    "find_client_id",
    "send_image_to",
    "send_product_to",
    "send_spectrum_to",
    "send_table_to",
]
