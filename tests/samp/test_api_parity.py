"""
samptwist.samp has pyvo.samp's public API: every module users import, every
public name in it, and every public method with pyvo's parameters (ours may
add keyword parameters after them).  Names that are internals of pyvo's
threaded servers raise NotProvided, naming the replacement.  Checked against
the installed pyvo, so a new pyvo release that adds a name fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from samptwist.samp._internals import NotProvided
from tests.peers import require_samp_module

MODULES = ["client", "constants", "errors", "hub", "hub_proxy", "integrated_client",
           "lockfile_helpers", "standard_profile", "utils", "vo_helpers", "web_profile"]
CLASSES = [("hub", "SAMPHubServer"), ("hub", "WebProfileDialog"),
           ("hub_proxy", "SAMPHubProxy"), ("client", "SAMPClient"),
           ("integrated_client", "SAMPIntegratedClient"), ("utils", "SAMPMsgReplierWrapper"),
           ("utils", "ServerProxyPool")]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "porting.md"


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }


def defined_here(module):
    """Public functions and classes defined in C{module} itself."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name(name):
    require_samp_module("pyvo.samp")
    theirs = importlib.import_module(f"pyvo.samp.{name}")
    ours = importlib.import_module(f"samptwist.samp.{name}")
    for attribute in sorted(public_names(theirs) | defined_here(theirs)):
        try:
            getattr(ours, attribute)
        except NotProvided as e:
            assert "samptwist" in str(e) and "porting.md" in str(e)
            assert attribute in DOCS.read_text(), f"{name}.{attribute} is not in porting.md"


def test_package_names_and_conf():
    require_samp_module("pyvo.samp")
    import pyvo.samp

    import samptwist.samp

    missing = {n for n in dir(pyvo.samp) if not n.startswith("_")} - set(dir(samptwist.samp))
    # pyvo's package namespace also holds its private modules' names
    assert missing <= {"setup_package", "standard_profile", "web_profile", "lockfile_helpers",
                       "tests"}, missing
    for setting in ("use_internet", "n_retries"):
        assert getattr(samptwist.samp.conf, setting) == getattr(type(pyvo.samp.conf), setting)\
            .defaultvalue


@pytest.mark.parametrize("module, cls", CLASSES)
def test_methods_take_pyvos_parameters(module, cls):
    require_samp_module("pyvo.samp")
    theirs = getattr(importlib.import_module(f"pyvo.samp.{module}"), cls)
    ours = getattr(importlib.import_module(f"samptwist.samp.{module}"), cls)
    for name, member in vars(theirs).items():
        if name.startswith("_") and name != "__init__":
            continue
        assert hasattr(ours, name), f"{cls}.{name}"
        if isinstance(member, property):
            assert isinstance(inspect.getattr_static(ours, name), property), f"{cls}.{name}"
            continue
        if not callable(member) and not isinstance(member, staticmethod):
            continue
        want = list(inspect.signature(getattr(theirs, name)).parameters.items())
        have = list(inspect.signature(getattr(ours, name)).parameters.items())
        assert [p for p, _ in have[:len(want)]] == [p for p, _ in want], f"{cls}.{name}"
        for (p, theirs_p), (_, ours_p) in zip(want, have):
            assert ours_p.default == theirs_p.default, f"{cls}.{name}({p}=...)"
        for _, extra in have[len(want):]:
            assert extra.default is not inspect.Parameter.empty, f"{cls}.{name}: {extra}"


def test_deselected_peer_tests_are_documented():
    from tests.pyhub.test_peer_suites import DESELECTED

    text = DOCS.read_text()
    for test in DESELECTED:
        assert f"`{test}`" in text, test
    documented = re.findall(r"^\| `(test_\w+\.py::[\w:]+)`", text, re.M)
    assert sorted(documented) == sorted(DESELECTED)


CLIENT_SIDE = ["client", "hub_proxy", "integrated_client", "errors", "constants", "utils",
               "vo_helpers", "lockfile_helpers", "_internals"]


def imported_modules(path):
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")


@pytest.mark.parametrize("path", sorted(
    [p for p in (DOCS.parents[1] / "samptwist" / "client").glob("*.py")]
    + [DOCS.parents[1] / "samptwist" / "samp" / f"{m}.py" for m in CLIENT_SIDE]),
    ids=lambda p: f"{p.parent.name}/{p.name}")
def test_client_side_does_not_import_the_hub(path):
    for name in imported_modules(path):
        assert not re.match(r"(samptwist\.hub|\.\.hub|\.\.\.hub)(\.|$)", name), (path, name)
