"""
The blocking SAMPHubServer (issue 9), exercised the way scripts and notebooks
use it: in separate interpreters (the test process runs its own reactor).
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.peers import require_samp_module

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).resolve().parents[2]


def run(script: Path, *args, home: Path, timeout=120):
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("SAMP_HUB", None)
    done = subprocess.run([sys.executable, str(script), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=home)
    assert done.returncode == 0, done.stdout + done.stderr
    # pyvo's hub logs INFO lines to stdout; compare what the script prints
    return "".join(line for line in done.stdout.splitlines(True)
                   if not line.startswith(("INFO:", "WARNING:")))


def test_notebook_sequence(tmp_path, isolated_home):
    """Start/stop cycles leak no lockfile or thread; a second hub gets the clear error;
    the interpreter exits promptly with a hub still running, removing its lockfile."""
    lockfile = tmp_path / "nb.samp"
    out = run(SCRIPTS / "notebook.py", lockfile, home=isolated_home, timeout=60)
    assert "cycles ok" in out
    assert "second: HubAlreadyRunning a SAMP hub is already running at" in out
    assert not lockfile.exists()
    assert not (isolated_home / ".samp").exists()


def test_pyvo_script_ports_by_import(tmp_path, isolated_home):
    """A pyvo.samp script runs unchanged but for its import, with the same output."""
    require_samp_module("pyvo.samp")
    original = (SCRIPTS / "pyvo_style.py").read_text()
    ported = original.replace("from pyvo.samp import", "from samptwist.samp import")
    assert ported != original
    port = tmp_path / "ported.py"
    port.write_text(ported)
    ours = run(port, home=isolated_home)
    theirs = run(SCRIPTS / "pyvo_style.py", home=isolated_home)
    assert ours == theirs
    assert "reply samp.ok {'echo': '42'}" in ours
    assert not (isolated_home / ".samp").exists()


def test_pyvo_clients_against_samphubserver(isolated_home):
    require_samp_module("pyvo.samp")
    out = run(SCRIPTS / "pyvo_clients.py", home=isolated_home)
    assert "delivered to 1" in out
