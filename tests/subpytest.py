"""
Run a pytest session in a separate interpreter, with the settings the
blocking facade and the peers' own suites need: no pytest-twisted reactor
(C{-p no:twisted}), no cache, our worktree first on C{sys.path}, and a
JUnit report read back so that a skip is caught as well as a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(targets: Sequence[str], *, rootdir: Path, cwd: Path, report: Path,
               extra: Iterable[str] = (), drop_env: Iterable[str] = (),
               timeout: float = 1200) -> ET.Element:
    """
    @return: the JUnit C{testsuite} element of a session that passed with
        nothing skipped (the assertion message shows pytest's output).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for name in ("SAMP_HUB", "PYTEST_ADDOPTS", *drop_env):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:twisted", "-p", "no:cacheprovider",
         "-q", "-rA", "-o", "addopts=", "--rootdir", str(rootdir), f"--junitxml={report}",
         *extra, *targets],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout[-8000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    suite = ET.parse(report).getroot()
    found = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert found is not None, output
    assert int(found.get("failures", 0)) == 0 and int(found.get("errors", 0)) == 0, output
    assert int(found.get("skipped", 0)) == 0, "a test was skipped:\n" + output
    return found
