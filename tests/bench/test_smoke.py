"""
Keep the benchmark driver working: a few seconds of ``benchmarks.run`` against
our hub only (the full comparison is ``python3 -m benchmarks.run``, not a test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_driver_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cp = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--hubs", "samptwist",
         "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    result = json.loads(out.read_text())
    assert not result["errors"], result["errors"]
    ours = result["raw"]["notify"]["samptwist"][0]
    assert ours["deliveries_per_s"] > 0 and ours["lost"] == 0
    call = result["raw"]["call"]["samptwist"][0]
    assert call["call_failed"] == 0 and call["wait_failed"] == 0
    assert result["echo"]["calls_per_s"][0] > 0
    assert "notify 1-to-1 deliveries/s" in cp.stdout


def test_inprocess_measure_runs_the_whole_path() -> None:
    from benchmarks.inprocess import measure

    us, rig = measure(70)
    assert us > 0
    # every round delivered: the hub counted them, and the last callback went out
    assert rig.service.hub.stats.notifications >= 1 + 300 + 70
