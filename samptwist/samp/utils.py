"""
pyvo.samp's utilities (C{pyvo.samp.utils}): the safe XML-RPC proxy and its
pool, and the decorator that turns a handler's result or exception into a
reply.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from typing import Any, Callable, Tuple

from ..client.blocking import SAMP_STATUS_ERROR
from ..client.serverproxy import SAMPXXEServerProxy, ServerProxyPool, safe_xmlrpc_loads
from ..client.serverproxy import _Transport as _SafeParsing
from ._internals import refuse

__all__ = ["SAMPMsgReplierWrapper", "SAMPXXEServerProxy", "safe_xmlrpc_loads"]

_ = ServerProxyPool  # importable, as in pyvo


def internet_on() -> bool:
    """
    @return: C{False}: samptwist never probes the internet (pyvo pings
        google.com here to choose a host name); callback servers listen on
        loopback unless given C{addr}.
    """
    return False


def get_safe_parser(use_datetime: bool = False, use_builtin_types: bool = False) -> Tuple[Any, Any]:
    """
    @return: C{(parser, unmarshaller)} for XML-RPC, refusing document type
        declarations.
    """
    return _SafeParsing(use_datetime, use_builtin_types).getparser()


def getattr_recursive(variable: Any, attribute: str) -> Any:
    """
    @return: C{variable.a.b.c} for C{attribute="a.b.c"}.
    """
    for part in attribute.split("."):
        variable = getattr(variable, part)
    return variable


def get_num_args(f: Callable[..., Any]) -> int:
    """
    @return: how many positional arguments C{f} takes (not counting C{self}
        of a bound method).
    @raise TypeError: if C{f} is neither a function nor a method.
    """
    if not (inspect.isfunction(f) or inspect.ismethod(f)):
        raise TypeError("f should be a function or a method")
    return sum(
        1 for p in inspect.signature(f).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


class SAMPMsgReplierWrapper:
    """
    Decorate a handler bound with C{bind_receive_call} (or
    C{bind_receive_message}) so that it need not reply itself: what it
    returns (if anything) is sent as the C{samp.result} of the reply, and an
    exception becomes a reply carrying the traceback.  Notifications (5
    arguments, or C{msg_id} C{None}) are simply passed through.

    As in pyvo, the reply carries C{samp.status} C{samp.error} in both
    cases.

    @param cli: the client (L{SAMPIntegratedClient} or L{SAMPClient}) that
        replies.
    """

    def __init__(self, cli: Any) -> None:
        self.cli = cli

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapped_f(*args: Any) -> None:
            if get_num_args(f) == 5 or args[2] is None:
                f(*args)
                return
            msg_id = args[2]
            try:
                result = f(*args)
            except Exception:
                result = {"txt": traceback.format_exc()}
            else:
                if not result:
                    return
            self.cli.hub.reply(
                self.cli.get_private_key(),
                msg_id,
                {"samp.status": SAMP_STATUS_ERROR, "samp.result": result},
            )

        return wrapped_f


__getattr__ = refuse(__name__, {
    "_HubAsClient": "the hub's own client is samptwist.hub.hubclient",
    "_HubAsClientMethod": "the hub's own client is samptwist.hub.hubclient",
})
