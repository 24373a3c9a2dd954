"""
The status page's address and credentials, shared by the hub that serves
the page (L{samptwist.hub.status}) and the CLI commands that print or read
it (C{samptwist clients --status-url}, C{samptwist doctor}, C{samptwist
web}), so that those import no hub module.  Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac

#: header carrying the page token of a consent answer
TOKEN_HEADER = b"x-samp-status-token"


def status_key(secret: str) -> str:
    """
    @return: the key of the status page of the hub whose lockfile secret is
        C{secret} (it does not reveal the secret).
    """
    digest = hmac.new(secret.encode("utf-8"), b"samptwist status page", hashlib.sha256)
    return digest.hexdigest()[:32]


def status_url(hub_url: str, secret: str) -> str:
    """
    @return: the status page URL of the hub at C{hub_url} (its XML-RPC URL).
    """
    base = hub_url.rsplit("/", 1)[0]
    return f"{base}/status?key={status_key(secret)}"
