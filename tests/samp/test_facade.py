"""
The blocking pyvo-style facade (samptwist.samp): runs facade_cases.py in a
separate interpreter, without pytest-twisted (the facade runs the reactor in
a thread of its own, which this suite's pytest-twisted reactor forbids).
Every case must pass; none may be skipped.
"""

from __future__ import annotations

from pathlib import Path

from tests.peers import require_samp_module
from tests.subpytest import run_pytest

HERE = Path(__file__).parent


def test_facade_cases(tmp_path):
    require_samp_module("pyvo.samp")  # one case drives a real pyvo client
    suite = run_pytest([str(HERE / "facade_cases.py")], rootdir=HERE, cwd=tmp_path,
                       report=tmp_path / "report.xml",
                       extra=["--noconftest", "-o", "timeout=120"], timeout=600)
    assert int(suite.get("tests", 0)) >= 30
