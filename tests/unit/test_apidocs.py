"""
The API documentation build (C{.ci/apidocs}, run by CI after mypy) fails on a
docstring warning, and its links to Twisted and to the standard library
resolve from local inventories.  Checked on a small package of our own, so the
check itself is shown able to fail; CI builds the real docs with the same
script.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Dict

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "apidocs"
PYTHON_INVENTORY = Path("/usr/share/doc/python3/html/objects.inv")

# the first build on a machine also makes Twisted's inventory (about a minute)
pytestmark = pytest.mark.timeout(900)

#: a package with a re-exported class whose docstring links names imported
#: only by its defining module (pydoctor issue #295), a Twisted name and a
#: standard-library name
GOOD: Dict[str, str] = {
    "__init__.py": '''
        """A package.  See L{Thing}."""
        from ._impl import Thing

        __all__ = ["Thing"]
        ''',
    "_impl.py": '''
        """Where L{Thing} is written."""
        from io import StringIO

        from twisted.internet.defer import Deferred


        class Thing:
            """
            Does things.  Example::

                thing = Thing()
            """

            def later(self) -> Deferred:
                """
                @return: a L{Deferred} firing with a L{StringIO}, or failing
                    with L{twisted.internet.defer.TimeoutError}.
                """
                return Deferred()
        ''',
}


def _require_tools() -> None:
    missing = []
    if importlib.util.find_spec("pydoctor") is None:
        missing.append("pydoctor (the dev extra)")
    if not PYTHON_INVENTORY.exists():
        missing.append(f"{PYTHON_INVENTORY} (Debian's python3-doc)")
    if missing:
        msg = "the API docs build needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg + "; .ci/run installs them", pytrace=False)
        pytest.skip(msg)


def _build(tmp_path: Path, files: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    _require_tools()
    package = tmp_path / "docpkg"
    package.mkdir()
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text).lstrip())
    env = dict(os.environ, APIDOCS_OUTPUT=str(tmp_path / "html"))
    return subprocess.run(
        ["bash", str(SCRIPT), str(package)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def test_clean_package_builds_with_offline_links(tmp_path: Path) -> None:
    result = _build(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    page = (tmp_path / "html" / "docpkg.Thing.html").read_text()
    twisted = "https://docs.twistedmatrix.com/en/stable/api/twisted.internet.defer."
    assert f'href="{twisted}Deferred.html"' in page
    assert f'href="{twisted}TimeoutError.html"' in page
    assert 'href="https://docs.python.org/3/library/io.html#io.StringIO"' in page
    assert '<pre class="rst-literal-block">' in page


def test_a_docstring_warning_fails_the_build(tmp_path: Path) -> None:
    bad = dict(GOOD)
    bad["link.py"] = '"""See L{NoSuchThing}."""\n'
    bad["brace.py"] = '"""Reads C{{} as JSON."""\n'
    bad["literal.py"] = '"""\nExample:\n\n    x = 1\n"""\n'
    result = _build(tmp_path, bad)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert 'link.py:1: Cannot find link target for "NoSuchThing"' in output, output
    assert "brace.py:1: bad docstring" in output, output
    assert "literal.py:4: bad docstring" in output, output
