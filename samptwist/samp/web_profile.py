"""
pyvo.samp's C{web_profile} module: the legacy cross-domain policy texts, and
a terminal consent dialog.  The Web Profile itself is
L{samptwist.hub.web}, a twisted.web site; its request handler and server
classes have no counterpart here.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..hub.web.site import CLIENTACCESSPOLICY, CROSSDOMAIN
from ._internals import refuse

#: the Flash cross-domain policy samptwist serves only when asked to
#: (C{legacy_policies}); by default it refuses it (docs/web-profile.md).
CROSS_DOMAIN: str = CROSSDOMAIN.decode("utf-8")
#: the Silverlight client access policy, likewise.
CLIENT_ACCESS_POLICY: str = CLIENTACCESSPOLICY.decode("utf-8")


def web_profile_text_dialog(request: Any, queue: Any,
                            ask: Optional[Callable[[str], str]] = None) -> None:
    """
    Ask on the terminal whether a web page may register, and put the answer
    (C{True}/C{False}) on C{queue}.

    @param request: C{(identity, client, origin)} as taken from a
        L{samptwist.samp.hub.WebProfileDialog}'s C{queue_request}.
    @param ask: reads the answer (default C{input}).
    """
    identity, _, origin = request
    name = identity.get("samp.name", "") if isinstance(identity, dict) else str(identity)
    question = (
        "A web page asks to register with the SAMP hub.\n"
        f"  name (claimed by the page): {ascii(name)}\n"
        f"  origin: {ascii(origin)}\n"
        "If you allow it, the page can send messages to your desktop applications.\n"
        "Allow? [y/N] "
    )
    answer = (ask or input)(question)
    queue.put(answer.strip().lower() in ("y", "yes"))


__getattr__ = refuse(__name__, {
    "WebProfileRequestHandler": "the Web Profile is samptwist.hub.web.site.WebRoot",
    "WebProfileXMLRPCServer": "the Web Profile is samptwist.hub.web.service.WebProfileService",
})
