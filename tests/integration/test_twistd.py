"""
`twistd -n samphub` as users run it: plugin discovery after a plain
`pip install .`, signals, and refusing to start beside a live hub.
"""

import os
import pstats
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from tests.peers import _read_until_ready, hub_command, peer_env, running_hub

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_clean_exit(tmp_path):
    """STD-LOCKSEC-5, STD-SHUT-1: SIGTERM removes the lockfile and exits 0.

    (running_hub checks the exit status and the lockfile when it stops the hub.)
    """
    with running_hub(tmp_path) as hub:
        assert hub.lockfile.exists()
        assert hub.url.startswith("http://127.0.0.1:")
        assert (hub.lockfile.stat().st_mode & 0o077) == 0


def test_sigint_clean_exit(tmp_path):
    with running_hub(tmp_path) as hub:
        hub.proc.send_signal(signal.SIGINT)
        assert hub.proc.wait(timeout=15) == 0
        assert not hub.lockfile.exists()


def test_second_hub_refused(tmp_path):
    """STD-LOCKSEC-2: one clear line and exit status 1 when a live hub owns the lockfile."""
    with running_hub(tmp_path) as hub:
        cmd = hub_command(hub.lockfile)
        if "samphub" not in cmd:
            pytest.skip("only meaningful for our hub")
        done = subprocess.run(cmd, env=peer_env(hub.home, hub.lockfile), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 1, done.stdout + done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines == [f"samphub: a SAMP hub is already running at {hub.url} "
                         f"(lockfile {hub.lockfile})"]
        assert "Traceback" not in done.stdout
        assert hub.lockfile.exists()


def test_bad_option_is_one_line(tmp_path):
    cmd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
           "--pidfile=", "samphub", "--callback-timeout", "soon"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode != 0
    assert "--callback-timeout needs a number of seconds" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_plugin_found_after_plain_install(tmp_path):
    """The plugin is packaged: a fresh venv with a plain `pip install .` lists samphub."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    build = tmp_path / "src"
    build.mkdir()
    # Build from a copy so no build artefacts land in the source tree.
    for name in ("pyproject.toml", "setup.cfg", "README.md", "samptwist", "twisted"):
        subprocess.run(["cp", "-r", str(ROOT / name), str(build)], check=True)
    env = dict(os.environ, PIP_NO_INDEX="1", PYTHONNOUSERSITE="1")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
         str(build)],
        env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(python), "-c", purelib],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert (Path(site) / "twisted" / "plugins" / "samptwist_plugin.py").exists()
    out = subprocess.run([str(python), "-c", "from twisted.scripts.twistd import run; run()",
                          "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=dict(env, PYTHONPATH=""))
    assert "samphub" in out.stdout, out.stdout + out.stderr


def test_every_package_is_packaged():
    """pyproject lists every package under samptwist/ (setuptools is told explicitly,
    because twisted/plugins must not get an __init__.py)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "samptwist").rglob("__init__.py")}
    assert found <= listed, f"not packaged: {sorted(found - listed)}"
    assert "twisted.plugins" in listed
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_profile_written_on_sigint(tmp_path, sigint):
    """twistd --profile=FILE --profiler=cprofile --savestats samphub writes
    its profile when SIGINT stops the hub, also when it was started the way
    a script's `&` starts it (SIGINT inherited ignored, as a non-interactive
    shell leaves it for background jobs)."""
    home = tmp_path / "home"
    home.mkdir()
    lockfile, profile = home / ".samp", tmp_path / "hub.prof"
    twistd = hub_command(lockfile)
    if "samphub" not in twistd:
        pytest.skip("only meaningful for our hub")
    at = twistd.index("samphub")
    cmd = twistd[:at] + [f"--profile={profile}", "--profiler=cprofile", "--savestats"] + twistd[at:]
    if sigint == "ignored":
        cmd = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"] + cmd
    proc = subprocess.Popen(cmd, env=peer_env(home, lockfile), cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready, chunks = _read_until_ready(proc, lockfile, time.monotonic() + 60)
        assert ready, "".join(chunks)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child, by PID
            proc.wait(10)
        proc.stdout and proc.stdout.close()
    assert not lockfile.exists()
    stats = pstats.Stats(str(profile))
    profiled = {filename for filename, _, _ in stats.stats}  # type: ignore[attr-defined]
    assert any(name.endswith(os.path.join("samptwist", "hub", "service.py")) for name in profiled)
