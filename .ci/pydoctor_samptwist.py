"""
pydoctor configuration code for samptwist's API docs (used by C{.ci/apidocs}).

pydoctor documents a name re-exported through a package's C{__all__} (e.g.
C{samptwist.SAMPClient}) where users import it, by moving it there; but it
then resolves the links in its docstrings (C{L{Deferred}}) in the package's
namespace instead of the module that defines it (pydoctor issue #295), so
every link to a name imported by the defining module breaks.  L{System}
resolves a name the new place does not know where the object is written.
"""

from __future__ import annotations

from typing import Any, Optional

from pydoctor import extensions, model


class _ResolveWhereDefined(extensions.DocumentableMixin):
    """
    Remembers where an object was defined before pydoctor moved it, and
    resolves there the names its new parent does not define.
    """

    _defined_in: Optional[model.Documentable] = None

    def reparent(self, new_parent: model.Module, new_name: str) -> None:
        if self._defined_in is None:
            self._defined_in = self.parent
        super().reparent(new_parent, new_name)

    def _localNameToFullName(self, name: str) -> str:
        full: str = super()._localNameToFullName(name)
        if full == name and self._defined_in is not None:
            return self._defined_in._localNameToFullName(name)
        return full


def setup_pydoctor_extension(r: Any) -> None:
    r.register_mixin(_ResolveWhereDefined)


class System(model.System):
    """pydoctor's system, with the extension above."""

    custom_extensions = [__name__]
