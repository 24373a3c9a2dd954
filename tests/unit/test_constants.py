"""
samptwist.constants is the one definition of the SAMP names both sides use;
the modules that used to define them re-export the same objects.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from samptwist import constants

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module, name, value",
    [
        ("samptwist.hub.core", "HUB_ID", constants.HUB_ID),
        ("samptwist.hub.core", "SHUTDOWN", constants.SHUTDOWN),
        ("samptwist.hub.core", "DISCONNECT", constants.DISCONNECT),
        ("samptwist.hub.web", "DEFAULT_WEB_LISTEN", constants.DEFAULT_WEB_LISTEN),
        ("samptwist.hub.web.service", "DEFAULT_WEB_LISTEN", constants.DEFAULT_WEB_LISTEN),
        ("samptwist.hub.runner", "DEFAULT_WEB_LISTEN", constants.DEFAULT_WEB_LISTEN),
        ("samptwist.tap", "DEFAULT_WEB_LISTEN", constants.DEFAULT_WEB_LISTEN),
        ("samptwist.hub.service", "DEFAULT_LISTEN", constants.DEFAULT_LISTEN),
        ("samptwist.client.connection", "DEFAULT_LISTEN", constants.DEFAULT_LISTEN),
        ("samptwist.client.connection", "PING", constants.PING),
        ("samptwist.client.tracker", "EVENTS", constants.CLIENT_EVENTS),
        ("samptwist.client.helpers", "TABLE_MTYPE", constants.TABLE_LOAD_VOTABLE),
    ],
)
def test_old_names_still_importable(module: str, name: str, value: object) -> None:
    mod = __import__(module, fromlist=[name])
    assert getattr(mod, name) == value


def test_values() -> None:
    assert constants.HUB_ID == "hub"
    assert constants.DEFAULT_WEB_LISTEN == "tcp:21012:interface=127.0.0.1"
    assert constants.WEB_PORT == 21012
    assert constants.HUB_PREFIX == "samp.hub."
    assert (constants.QUERY_BY_META, constants.QUERY_BY_META_X) == (
        "samp.query.by-meta", "x-samp.query.by-meta",
    )
    assert constants.CLIENT_EVENTS == (
        "samp.hub.event.register", "samp.hub.event.unregister",
        "samp.hub.event.metadata", "samp.hub.event.subscriptions",
    )


def test_endpoint_defaults_defined_once() -> None:
    """No module but constants assigns DEFAULT_LISTEN / DEFAULT_WEB_LISTEN / HUB_ID."""
    defined = []
    for path in (ROOT / "samptwist").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in (
                        "DEFAULT_LISTEN", "DEFAULT_WEB_LISTEN", "HUB_ID",
                    ):
                        defined.append((path.relative_to(ROOT).as_posix(), target.id))
    assert sorted(defined) == [
        ("samptwist/constants.py", "DEFAULT_LISTEN"),
        ("samptwist/constants.py", "DEFAULT_WEB_LISTEN"),
        ("samptwist/constants.py", "HUB_ID"),
    ]


def test_mtypes_and_statuses_spelled_once() -> None:
    """
    No module but constants assigns or compares against an MType or status
    string of its own (the command line included): they use the names.
    """
    values = {
        value for name, value in vars(constants).items()
        if name.isupper() and isinstance(value, str) and "." in value and ":" not in value
    }
    assert {constants.PING, constants.STATUS_OK, constants.SHUTDOWN} <= values
    found = []
    for path in (ROOT / "samptwist").rglob("*.py"):
        if path.name == "constants.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                candidates = [node.value]
            elif isinstance(node, ast.Compare):
                candidates = [node.left, *node.comparators]
            else:
                continue
            for value in candidates:
                items = value.elts if isinstance(value, (ast.Tuple, ast.List, ast.Set)) else [value]
                found += [
                    (path.relative_to(ROOT).as_posix(), node.lineno, item.value)
                    for item in items
                    if isinstance(item, ast.Constant) and item.value in values
                ]
    assert found == []
