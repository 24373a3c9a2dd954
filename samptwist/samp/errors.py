"""
pyvo.samp's exceptions and warning (C{pyvo.samp.errors}).
"""

from ..errors import (
    SAMPClientError,
    SAMPHubError,
    SAMPProxyError,
    SAMPProxyTimeoutError,
    SAMPWarning,
)

__all__ = ["SAMPClientError", "SAMPHubError", "SAMPProxyError", "SAMPWarning"]

# Importable, as in pyvo, though outside __all__.
_ = SAMPProxyTimeoutError
