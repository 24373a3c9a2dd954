"""
Names a package re-exports from its submodules, imported on first use
(PEP 562), so that importing the package loads only what is asked for: a
client script no hub module, a hub no client module.  Imports nothing.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, List, Mapping, Tuple


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """
    @param package: the package's C{__name__}.
    @param exports: public name -> the (relative) module that defines it.
    @return: the package's module-level C{__getattr__} and C{__dir__}.  The
        C{__getattr__} imports a name's module on first use and keeps the
        value in the package's namespace; it raises C{AttributeError} for a
        name not in C{exports}.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
