"""
A drop-in for pyvo.samp (formerly astropy.samp): the same package layout,
names, arguments and exceptions, on samptwist's Twisted hub and client.
Code written for either ports by changing its imports::

    from pyvo.samp import SAMPHubServer, SAMPIntegratedClient     # before
    from samptwist.samp import SAMPHubServer, SAMPIntegratedClient  # after

    from astropy.samp.hub_proxy import SAMPHubProxy               # before
    from samptwist.samp.hub_proxy import SAMPHubProxy             # after

Everything here is blocking; Twisted programs use L{samptwist.client} and
L{samptwist.hub}.  What differs from pyvo, and why, is in docs/porting.md.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Dict, Iterator

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .client import SAMPClient
    from .constants import (
        SAFE_MTYPES,
        SAMP_ICON,
        SAMP_STATUS_ERROR,
        SAMP_STATUS_OK,
        SAMP_STATUS_WARNING,
    )
    from .errors import (
        SAMPClientError,
        SAMPHubError,
        SAMPProxyError,
        SAMPProxyTimeoutError,
        SAMPWarning,
    )
    from .hub import SAMPHubServer, WebProfileDialog
    from .hub_proxy import SAMPHubProxy
    from .integrated_client import SAMPIntegratedClient
    from .utils import SAMPMsgReplierWrapper, SAMPXXEServerProxy, safe_xmlrpc_loads
    from .vo_helpers import (
        accessible_table,
        connection,
        find_client_id,
        send_image_to,
        send_product_to,
        send_spectrum_to,
        send_table_to,
    )

#: public name -> the submodule that defines it, imported on first use
#: (PEP 562), so that a client script loads no hub module and a hub no client
_LAZY: Dict[str, str] = {
    "SAMPClient": ".client",
    **dict.fromkeys(
        ["SAFE_MTYPES", "SAMP_ICON", "SAMP_STATUS_ERROR", "SAMP_STATUS_OK",
         "SAMP_STATUS_WARNING"],
        ".constants",
    ),
    **dict.fromkeys(
        ["SAMPClientError", "SAMPHubError", "SAMPProxyError", "SAMPProxyTimeoutError",
         "SAMPWarning"],
        ".errors",
    ),
    "SAMPHubServer": ".hub",
    "WebProfileDialog": ".hub",
    "SAMPHubProxy": ".hub_proxy",
    "SAMPIntegratedClient": ".integrated_client",
    **dict.fromkeys(
        ["SAMPMsgReplierWrapper", "SAMPXXEServerProxy", "safe_xmlrpc_loads"], ".utils"
    ),
    **dict.fromkeys(
        ["accessible_table", "connection", "find_client_id", "send_image_to",
         "send_product_to", "send_spectrum_to", "send_table_to"],
        ".vo_helpers",
    ),
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

class Conf:
    """
    pyvo's C{conf} settings, accepted so that code setting them keeps
    working:

      - C{use_internet} (default C{True}): pyvo probes the internet to pick
        a public host name for its servers; samptwist never does, whatever
        the value, and always listens on loopback unless given an C{addr}.
      - C{n_retries} (default 10): pyvo's hub retries a failing callback
        this many times; samptwist's hub has its own policy (a callback
        time-out, and ejection after C{--max-failures} failures), so the
        value is recorded but not used.
    """

    _defaults: Dict[str, Any] = {"use_internet": True, "n_retries": 10}

    def __init__(self) -> None:
        self.reset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._defaults:
            raise AttributeError(
                f"samptwist.samp.conf has no setting {name!r} (it has "
                f"{', '.join(sorted(self._defaults))})"
            )
        object.__setattr__(self, name, value)

    def reset(self, name: Any = None) -> None:
        """Restore one setting (or all) to its default."""
        for key in [name] if name is not None else list(self._defaults):
            setattr(self, key, self._defaults[key])

    @contextlib.contextmanager
    def set_temp(self, name: str, value: Any) -> Iterator[None]:
        """Change a setting for the duration of a C{with} block."""
        before = getattr(self, name)
        setattr(self, name, value)
        try:
            yield
        finally:
            setattr(self, name, before)


#: pyvo's configuration object
conf = Conf()

__all__ = [
    "SAFE_MTYPES",
    "SAMPClient",
    "SAMPClientError",
    "SAMPHubError",
    "SAMPHubProxy",
    "SAMPHubServer",
    "SAMPIntegratedClient",
    "SAMPMsgReplierWrapper",
    "SAMPProxyError",
    "SAMPProxyTimeoutError",
    "SAMPWarning",
    "SAMPXXEServerProxy",
    "SAMP_ICON",
    "SAMP_STATUS_ERROR",
    "SAMP_STATUS_OK",
    "SAMP_STATUS_WARNING",
    "WebProfileDialog",
    "accessible_table",
    "conf",
    "connection",
    "find_client_id",
    "safe_xmlrpc_loads",
    "send_image_to",
    "send_product_to",
    "send_spectrum_to",
    "send_table_to",
]
