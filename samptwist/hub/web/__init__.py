"""
The SAMP Web Profile: browser pages as hub clients (checklist §8).

One module per concept: L{consent} (who may register), L{access} (loopback,
Host and CORS rules), L{profile} (the C{samp.webhub.*} methods),
L{queue} (pull-model callbacks), L{restrict} (MTypes pages may send),
L{urls} and L{translator} (the URL translator), L{site} (the HTTP site)
and L{service} (the service L{samptwist.hub.service.HubService} runs).
"""

from .consent import (
    AllowAll,
    AllowOrigins,
    ConsentRequest,
    DenyAll,
    IConsentPolicy,
    TerminalPrompt,
    consent_from_spec,
)
from .restrict import SAFE_MTYPES, MessageRestriction
from .service import DEFAULT_WEB_LISTEN, WebProfileService

__all__ = [
    "AllowAll",
    "AllowOrigins",
    "ConsentRequest",
    "DEFAULT_WEB_LISTEN",
    "DenyAll",
    "IConsentPolicy",
    "MessageRestriction",
    "SAFE_MTYPES",
    "TerminalPrompt",
    "WebProfileService",
    "consent_from_spec",
]
