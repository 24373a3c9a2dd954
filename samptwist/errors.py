"""
Exceptions shared by the hub and the client library.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any, Mapping


class SAMPError(Exception):
    """
    Base class of every samptwist error.
    """


class SAMPHubError(SAMPError):
    """
    A hub method refused a request.

    The Standard Profile turns this into an XML-RPC fault whose faultString is
    C{str(error)}; it is what a client sees for a bad private key, an unknown
    recipient, an invalid message and so on.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class SAMPValueError(SAMPHubError, ValueError):
    """
    A value is not a legal SAMP value (string, list or map of those), or a
    string, MType or subscription key is malformed.
    """


class HubAlreadyRunning(SAMPError):
    """
    The lockfile names a hub that answered a ping, so this hub must not start.
    """

    def __init__(self, url: str, lockfile: str) -> None:
        super().__init__(f"a SAMP hub is already running at {url} (lockfile {lockfile})")
        self.url = url
        self.lockfile = lockfile


class LockfileError(SAMPError):
    """
    A lockfile is missing, unreadable or lacks a required key.
    """


class SAMPCallError(SAMPError):
    """
    A call was answered with C{samp.status} = C{samp.error}.

    @ivar response: the whole response map.
    @ivar errortxt: the error map's C{samp.errortxt}.
    @ivar error: the whole error map (may carry C{samp.usertxt},
        C{samp.debugtxt}, C{samp.code} and other keys).
    """

    def __init__(self, response: Mapping[str, Any], responder: str = "") -> None:
        error = response.get("samp.error")
        if not isinstance(error, Mapping):
            error = {}
        self.response = dict(response)
        self.error = dict(error)
        self.responder = responder
        self.errortxt = str(error.get("samp.errortxt", "unspecified SAMP error"))
        prefix = f"{responder}: " if responder else ""
        super().__init__(prefix + self.errortxt)


# -- pyvo.samp's exception names, raised by the blocking facade
# (samptwist.samp); shared here because both its client and its hub raise them.


class SAMPWarning(UserWarning):
    """
    A warning from the blocking facade (pyvo's C{SAMPWarning}): a message
    nobody was subscribed to, a Python value encoded the SAMP way, a Web
    Profile port already taken, ...
    """


class SAMPClientError(SAMPError):
    """
    The blocking facade's client refused an operation (not registered, not
    callable, already registered), as pyvo's C{SAMPClientError}.
    """


class SAMPProxyError(SAMPError, xmlrpc.client.Fault):
    """
    The hub answered a blocking facade call with an XML-RPC fault (pyvo's
    C{SAMPProxyError}); it is an C{xmlrpc.client.Fault}, so code that
    catches C{Fault} keeps working.

    @ivar faultCode: the fault's code.
    @ivar faultString: the hub's message.
    """

    def __init__(self, faultCode: Any, faultString: str, **extra: Any) -> None:
        xmlrpc.client.Fault.__init__(self, faultCode, faultString, **extra)
        Exception.__init__(self, faultCode, faultString)

    def __str__(self) -> str:
        return str(self.faultString)


class SAMPProxyTimeoutError(SAMPProxyError):
    """
    A C{call_and_wait} was not answered in time.
    """
