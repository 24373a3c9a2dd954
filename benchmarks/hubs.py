"""
Starting and stopping the hubs under test, each in its own temporary HOME
with its own lockfile, bound to loopback.  Every process started here is
stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path
from typing import Dict, List, Optional

HUBS = ("samptwist", "pyvo", "jsamp")
START_TIMEOUT = 60.0


def read_lockfile(path: Path) -> Dict[str, str]:
    info = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            info[k.strip()] = v.strip()
    return info


def available(kind: str) -> Optional[str]:
    """@return: why hub C{kind} cannot run here, or C{None}."""
    if kind == "jsamp":
        return None if shutil.which("jsamp") or os.path.exists("/usr/bin/jsamp") else "no jsamp"
    if kind == "pyvo":
        try:
            import pyvo.samp  # noqa: F401
        except ImportError:
            return "pyvo is not installed (pip install .[bench])"
    return None


def twistd_script() -> Optional[str]:
    """
    @return: the C{twistd} script installed beside this interpreter (what a
        virtualenv's or pip's user runs), else the first on C{PATH}.  Not a
        shim in front of it (pyenv's C{shims/twistd} runs bash and C{pyenv
        exec} first, ~0.1 s that is no hub's cost), if the real one is found.
    """
    beside = Path(sys.executable).parent / "twistd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("twistd")


class HubProcess:
    """One running hub.  C{url}, C{secret}, C{pid} once L{start} returns."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.home = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
        self.lockfile = self.home / ".samp"
        self.popen: Optional[subprocess.Popen] = None
        self.url = ""
        self.secret = ""
        #: seconds from exec until the lockfile's hub answered samp.hub.ping
        self.start_seconds = float("nan")
        #: CPU seconds the hub process had used by then (user + system): what
        #: the start costs, whatever else the machine is doing
        self.start_cpu_seconds = float("nan")

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def command(self) -> List[str]:
        lock = str(self.lockfile)
        if self.kind == "samptwist":
            twistd = twistd_script()
            base = [twistd] if twistd else [sys.executable, "-m", "twisted.scripts.twistd"]
            return base + ["-n", "--pidfile=", "samphub", "--lockfile", lock, "--no-web"]
        if self.kind == "pyvo":
            return [sys.executable, "-m", "benchmarks.pyvo_hub", lock]
        if self.kind == "jsamp":
            return [shutil.which("jsamp") or "/usr/bin/jsamp", "hub", "-mode", "no-gui",
                    "-profiles", "std"]
        raise ValueError(self.kind)

    def start(self, poll: float = 0.05) -> HubProcess:
        env = dict(os.environ)
        # As after `pip install`, which compiles every module: the hubs read
        # cached bytecode (written by the first start of each) instead of
        # compiling their sources at every start, as they would where the
        # environment sets PYTHONDONTWRITEBYTECODE (this one does).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["HOME"] = str(self.home)
        env.pop("SAMP_HUB", None)
        env["JAVA_TOOL_OPTIONS"] = f"-Duser.home={self.home} -Djsamp.localhost=127.0.0.1"
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.home / "hub.log", "wb")
        self.popen = subprocess.Popen(
            self.command(), env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        started = time.monotonic()
        deadline = started + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.kind} hub exited: {self.log_tail()}")
            if self.lockfile.exists():
                try:
                    info = read_lockfile(self.lockfile)
                    self.url, self.secret = info["samp.hub.xmlrpc.url"], info["samp.secret"]
                    xmlrpc.client.ServerProxy(self.url).samp.hub.ping()
                    self.start_seconds = time.monotonic() - started
                    self.start_cpu_seconds = cpu_seconds(self.pid)
                    return self
                except (KeyError, OSError, xmlrpc.client.Error):
                    pass
            time.sleep(poll)
        self.stop()
        raise RuntimeError(f"{self.kind} hub did not start in {START_TIMEOUT}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.home / "hub.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, grace: float = 3.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)


def rss_bytes(pid: int) -> int:
    """@return: resident set size of process C{pid}, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """@return: user+system CPU seconds used so far by process C{pid}."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
