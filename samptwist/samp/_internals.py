"""
Names of pyvo.samp that belong to its thread-per-server design and have no
counterpart here: looking one up raises L{NotProvided}, which says what to
use instead (rather than a bare C{AttributeError}).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping


class NotProvided(NotImplementedError):
    """
    A pyvo.samp internal that samptwist does not have; the message names the
    replacement.
    """


def refuse(module: str, replacements: Mapping[str, str]) -> Callable[[str], Any]:
    """
    @return: a module C{__getattr__} raising L{NotProvided} for the names in
        C{replacements} (name to advice) and C{AttributeError} for others.
    """

    def __getattr__(name: str) -> Any:
        if name in replacements:
            raise NotProvided(
                f"{module}.{name} is an internal of pyvo.samp's threaded servers and has no "
                f"samptwist counterpart: {replacements[name]} (see docs/porting.md)"
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
