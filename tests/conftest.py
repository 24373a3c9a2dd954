"""
Fixtures shared by the whole suite.

Every test runs with HOME pointing at a fresh temporary directory and without
SAMP_HUB, so nothing ever reads or writes the user's real ~/.samp.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """
    Give each test its own HOME (and USERPROFILE) and clear SAMP_HUB.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    java = os.environ.get("JAVA_TOOL_OPTIONS", "")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"{java} -Duser.home={home}".strip())
    return home
