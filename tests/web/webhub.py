"""
Run C{twistd samphub} with the Web Profile on free loopback ports as a
subprocess (never the shared port 21012), for real-socket tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

READY = re.compile(r"SAMP Web Profile ready at (http://\S+/)")
WEB_FAILED = "Web Profile NOT started"


class WebHub:
    def __init__(self, proc: subprocess.Popen, lockfile: Path, web_url: Optional[str],
                 output: List[str]) -> None:
        self.proc = proc
        self.lockfile = lockfile
        self.web_url = web_url
        self.output = output

    @property
    def params(self) -> dict:
        out = {}
        for line in self.lockfile.read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                out[k] = v
        return out

    def log(self) -> str:
        return "".join(self.output)


def _reader(proc: subprocess.Popen, output: List[str], cond: threading.Condition) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        with cond:
            output.append(raw.decode("utf-8", "replace"))
            cond.notify_all()
    with cond:
        output.append("")
        cond.notify_all()


@contextlib.contextmanager
def web_hub(tmp_path: Path, *args: str, web_listen: str = "tcp:0:interface=127.0.0.1",
            timeout: float = 30.0) -> Iterator[WebHub]:
    """
    Start a hub (stdin closed, private HOME and lockfile); yield once the
    Standard Profile is ready and the Web Profile is ready or has failed.
    Stopped with SIGTERM to its own PID afterwards.
    """
    home = tmp_path / "hubhome"
    home.mkdir(exist_ok=True)
    lockfile = home / ".samp"
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               PYTHONUNBUFFERED="1", PYTHONPATH=path)
    env.pop("SAMP_HUB", None)
    twistd = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
    cmd = [sys.executable, "-c", twistd, "-n", "--pidfile=", "samphub",
           "--lockfile", str(lockfile), "--listen", "tcp:0:interface=127.0.0.1",
           "--web-listen", web_listen, *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path),
                            start_new_session=True)
    output: List[str] = []
    cond = threading.Condition()
    reader = threading.Thread(target=_reader, args=(proc, output, cond), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    web_url = None
    try:
        while time.monotonic() < deadline:
            text = "".join(output)
            match = READY.search(text)
            web_done = match is not None or WEB_FAILED in text
            if web_done and "SAMP hub ready" in text and lockfile.exists():
                web_url = match.group(1) if match else None
                break
            with cond:
                if proc.poll() is not None and output and output[-1] == "":
                    raise AssertionError(f"hub exited early:\n{text}")
                # The lockfile appears just before the ready line is logged.
                cond.wait(0.5)
        else:
            raise AssertionError(f"hub not ready in {timeout}s:\n{''.join(output)}")
        yield WebHub(proc, lockfile, web_url, output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        reader.join(timeout=5)
