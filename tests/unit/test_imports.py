"""
What each entry point imports (issue 16): the hub process (C{twistd
samphub}, which imports L{samptwist.tap}) loads neither the client library
nor treq, Twisted's HTTP client, the endpoint machinery (which pulls in
pyOpenSSL and cryptography) nor the Web Profile; the client does not import
the hub.  Checked in fresh interpreters, so nothing this test process has
imported already hides a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: every samptwist module `import samptwist.tap` may load
TAP_MODULES = {
    "samptwist", "samptwist._http", "samptwist._httpclient", "samptwist._log",
    "samptwist._oneshot", "samptwist._version", "samptwist._xmlrpc", "samptwist.errors",
    "samptwist.constants", "samptwist.hub", "samptwist.hub.activity", "samptwist.hub.callbacks",
    "samptwist.hub.checks", "samptwist.hub.core", "samptwist.hub.events",
    "samptwist.hub.failures", "samptwist.hub.pending",
    "samptwist.hub.policy", "samptwist.hub.registry", "samptwist.hub.subscriptions",
    "samptwist.hub.delivery", "samptwist.hub.httpguard", "samptwist.hub.limits",
    "samptwist.hub.pages",
    "samptwist.hub.service", "samptwist.hub.standard", "samptwist.hub.status",
    "samptwist.lockfile", "samptwist.mtype", "samptwist.tap", "samptwist.types",
    "samptwist._net",
}
#: third-party distributions it may load: Twisted and what twisted.web needs
TAP_THIRD_PARTY = {
    "twisted", "zope", "attr", "attrs", "constantly", "incremental", "hyperlink", "idna",
    "typing_extensions", "automat",
}
#: never in a Standard Profile hub until it needs them
FORBIDDEN = (
    "samptwist.client", "samptwist.hub.web", "samptwist._agentpost", "samptwist.samp",
    "treq", "OpenSSL", "cryptography", "service_identity", "twisted.web.client",
    "twisted.internet.endpoints", "twisted.internet.ssl", "requests",
)


#: run in the fresh interpreter: print its modules, and the top-level ones
#: installed in site-packages (third-party distributions)
_REPORT = """
import json, sys, sysconfig
paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
def installed(name):
    where = getattr(sys.modules[name], "__file__", None) or ""
    return any(where.startswith(p) for p in paths)
tops = {m for m in sys.modules if "." not in m and sys.modules[m] is not None}
print(json.dumps([sorted(sys.modules), sorted(t for t in tops if installed(t))]))
"""


def _run(statement: str) -> list:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", statement + "\n" + _REPORT], env=env, capture_output=True,
        text=True, timeout=120, check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def modules_after(statement: str) -> Set[str]:
    """@return: sys.modules of a fresh interpreter after C{statement}."""
    return set(_run(statement)[0])


def installed_after(statement: str) -> Set[str]:
    """@return: the top-level site-packages modules loaded by C{statement}."""
    return set(_run(statement)[1])


def third_party(statement: str, baseline: Set[str]) -> Set[str]:
    """@return: the other distributions C{statement} imports (samptwist itself
    may be installed or on the path)."""
    return installed_after(statement) - baseline - {"samptwist"}


@pytest.fixture(scope="module")
def baseline() -> Set[str]:
    """Site-packages modules a bare interpreter has already (.pth files)."""
    return installed_after("pass")


def forbidden_in(modules: Set[str]) -> Set[str]:
    return {m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}


def test_hub_plugin_imports(baseline):
    loaded = modules_after("import samptwist.tap")
    assert forbidden_in(loaded) == set()
    assert {m for m in loaded if m.startswith("samptwist")} == TAP_MODULES
    assert third_party("import samptwist.tap", baseline) <= TAP_THIRD_PARTY


def test_twistd_plugin_imports(baseline):
    """The plugin module twistd loads, and the parsed options of a
    --no-web hub, import no more than samptwist.tap."""
    loaded = modules_after(
        "from twisted.plugins.samptwist_plugin import *\n"
        "import samptwist.tap\n"
        "samptwist.tap.Options().parseOptions(['--no-web', '--lockfile', '/nonexistent/.samp'])"
    )
    assert forbidden_in(loaded) == set()
    assert {m for m in loaded if m.startswith("samptwist")} == TAP_MODULES


def test_web_profile_imported_when_asked_for():
    loaded = modules_after(
        "import samptwist.tap\n"
        "samptwist.tap.Options().parseOptions(['--lockfile', '/nonexistent/.samp'])"
    )
    assert "samptwist.hub.web.consent" in loaded


def test_package_root_imports_nothing_heavy(baseline):
    """import samptwist: the version and the exceptions; the rest on use."""
    loaded = modules_after("import samptwist")
    assert {m for m in loaded if m.startswith("samptwist")} == {
        "samptwist", "samptwist._version", "samptwist.errors",
    }
    assert third_party("import samptwist", baseline) == set()
    loaded = modules_after("from samptwist import SAMPClient, start_hub, __version__")
    assert "samptwist.client" in loaded and "samptwist.hub.runner" in loaded


def test_client_does_not_import_the_hub():
    loaded = modules_after("import samptwist.client")
    assert {m for m in loaded if m.startswith("samptwist.hub")} == set()


def test_constants_import_nothing_of_ours(baseline):
    """Both sides import samptwist.constants: it needs neither (nor Twisted)."""
    loaded = modules_after("import samptwist.constants")
    assert {m for m in loaded if m.startswith("samptwist")} == {"samptwist", "samptwist._version",
                                                                "samptwist.errors",
                                                                "samptwist.constants"}
    assert third_party("import samptwist.constants", baseline) == set()
