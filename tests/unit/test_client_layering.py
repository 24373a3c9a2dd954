"""
The library's layering (issue 12): no samptwist.client module imports the
hub, no samptwist.hub module imports the client, and the modules of
samptwist.client import each other without cycles (type-checking-only and
function-level imports included, as a cycle there is still two modules
knowing each other's internals).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "samptwist" / "client"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Set[str]:
    """
    @return: every module C{path} imports, anywhere in it, as absolute
        dotted names (C{from .x import y} gives C{pkg.x} and C{pkg.x.y}:
        y may be a submodule).
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def client_graph() -> Dict[str, Set[str]]:
    modules = {module_name(p): p for p in CLIENT.rglob("*.py")}
    return {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """@return: one import cycle as a path of module names, or C{[]}."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_graph_sees_the_imports():
    """The parser finds what is there (so an empty answer means something)."""
    graph = client_graph()
    assert "samptwist.client.tracker" in graph["samptwist.client.connection"]
    assert "samptwist.client.reconnect" in graph["samptwist.client.connection"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_client_package():
    assert find_cycle(client_graph()) == []


def test_client_modules_do_not_import_the_hub_statically():
    offenders = {
        module_name(path): sorted(m for m in imported_modules(path)
                                  if m == "samptwist.hub" or m.startswith("samptwist.hub."))
        for path in CLIENT.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


HUB = ROOT / "samptwist" / "hub"


def test_hub_modules_do_not_import_the_client_statically():
    """
    The other direction: no samptwist.hub module (the pyvo-style
    SAMPHubServer facade included, which shares the reactor thread through
    samptwist._reactorthread) imports the client library.
    """
    assert "samptwist._reactorthread" in imported_modules(HUB / "blocking.py")
    offenders = {
        module_name(path): sorted(m for m in imported_modules(path)
                                  if m == "samptwist.client" or m.startswith("samptwist.client."))
        for path in HUB.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_client_package_loads_no_hub_module():
    """
    In a fresh interpreter, import every samptwist.client module.  The
    package root (samptwist/__init__.py) is replaced by an empty package
    object, so this pins the client package itself whatever the root
    re-exports (the root's own lazy imports are pinned in test_imports).
    """
    code = (
        "import importlib, json, pkgutil, sys, types\n"
        f"root = types.ModuleType('samptwist'); root.__path__ = [{str(ROOT / 'samptwist')!r}]\n"
        "sys.modules['samptwist'] = root\n"
        "import samptwist.client\n"
        "for info in pkgutil.iter_modules(samptwist.client.__path__, 'samptwist.client.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "samptwist.client.connection" in loaded and "samptwist.client.blocking" in loaded
    assert {m for m in loaded if m.startswith("samptwist.hub")} == set()
