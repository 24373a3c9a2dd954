"""
Fixtures for the ``samptwist`` command's end-to-end tests: real hubs started by
the test (ours through ``tests/peers.running_hub``, pyvo's and JSAMP's through
its reference-hub mode), the command run as a subprocess with a bounded
timeout, and pyvo.samp clients as peers.  Only processes started here are
ended, by their own PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import xmlrpc.client
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import peers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60.0


def cli_env(env: Dict[str, str]) -> Dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return dict(env, PYTHONPATH=path, PYTHONUNBUFFERED="1")


def run_cli(env: Dict[str, str], *args: str, timeout: float = CLI_TIMEOUT,
            cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """Run ``python -m samptwist ARGS`` to completion (bounded)."""
    cmd = [sys.executable, "-m", "samptwist", *args]
    try:
        return subprocess.run(cmd, env=cli_env(env), cwd=str(cwd or ROOT), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} did not finish within {timeout:.0f}s: {exc.stdout!r} "
                    f"{exc.stderr!r}", pytrace=False)


def one_line_error(cp: subprocess.CompletedProcess, code: int = 1) -> str:
    """Assert the command failed with status ``code`` and exactly one line on stderr."""
    assert cp.returncode == code, peers.describe_run(cp)
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, peers.describe_run(cp)
    assert "Traceback" not in cp.stderr
    return lines[0]


class Running:
    """A long-running ``samptwist`` subprocess (snoop, bridge, hub) whose output
    lines are collected by a reader thread and awaited with bounded waits."""

    def __init__(self, env: Dict[str, str], *args: str) -> None:
        self.cmd = [sys.executable, "-m", "samptwist", *args]
        self.proc = subprocess.Popen(self.cmd, env=cli_env(env), cwd=str(ROOT),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.out = peers.Inbox()
        self.err = peers.Inbox()
        for stream, inbox in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, inbox), daemon=True).start()

    @staticmethod
    def _read(stream: Any, inbox: peers.Inbox) -> None:
        for line in iter(stream.readline, ""):
            inbox.put(line.rstrip("\n"))
        inbox.put(None)

    def wait_line(self, text: str, timeout: float = 30.0, stream: str = "out") -> str:
        inbox = self.out if stream == "out" else self.err
        return inbox.wait_for(lambda line: line is not None and text in line, timeout,
                              what=f"a line with {text!r} from {' '.join(self.cmd[2:4])} "
                              f"(stderr so far: {self.err.snapshot()})")

    def lines(self) -> List[str]:
        return [line for line in self.out.snapshot() if line is not None]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal this one process and wait (bounded); SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
            pytest.fail(f"{' '.join(self.cmd)} ignored signal {sig}", pytrace=False)

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
            pytest.fail(f"{' '.join(self.cmd)} did not exit within {timeout:.0f}s", pytrace=False)


@contextlib.contextmanager
def running(env: Dict[str, str], *args: str) -> Iterator[Running]:
    proc = Running(env, *args)
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            proc.stop()


def wait_registrable(params: Dict[str, str], attempts: int = 2000) -> None:
    """JSAMP writes its lockfile a moment before it takes registrations: retry a
    register/unregister round trip (each attempt is a real request, bounded)."""
    proxy = xmlrpc.client.ServerProxy(params["samp.hub.xmlrpc.url"])
    last: Any = None
    for _ in range(attempts):
        try:
            reg = proxy.samp.hub.register(params["samp.secret"])
            proxy.samp.hub.unregister(reg["samp.private-key"])
            return
        except (OSError, xmlrpc.client.Error) as e:
            last = e
    raise AssertionError(f"hub never accepted a registration: {last}")


@contextlib.contextmanager
def hub_of_kind(kind: str, tmp_path: Path) -> Iterator[peers.HubProcess]:
    """Our hub, pyvo.samp's (astropy's successor) or JSAMP's, as a subprocess."""
    if kind == "pyvo":
        peers.require_samp_module("pyvo.samp")
    elif kind == "jsamp":
        peers.require_jsamp()
    old = os.environ.get("SAMPTWIST_INTEROP_HUB")
    os.environ["SAMPTWIST_INTEROP_HUB"] = kind
    try:
        ctx = peers.running_hub(tmp_path)
        hub = ctx.__enter__()
    finally:
        if old is None:
            os.environ.pop("SAMPTWIST_INTEROP_HUB", None)
        else:
            os.environ["SAMPTWIST_INTEROP_HUB"] = old
    try:
        if kind == "jsamp":
            wait_registrable(hub.params)
        yield hub
    except BaseException:
        if not ctx.__exit__(*sys.exc_info()):
            raise
    else:
        ctx.__exit__(None, None, None)


@pytest.fixture
def our_hub(tmp_path):
    with peers.running_hub(tmp_path) as hub:
        yield hub


class Peer:
    """A pyvo.samp client with handlers that record what they get."""

    def __init__(self, hub: peers.HubProcess, name: str, calls: Dict[str, Any],
                 notes: List[str] = ()) -> None:
        samp = peers.require_samp_module("pyvo.samp")
        self.inbox = peers.Inbox()
        self.client = samp.SAMPIntegratedClient(name=name, addr="127.0.0.1",
                                                metadata={"samp.description.text": f"{name} peer"})
        self.client.connect(hub_params=hub.hub_params)
        for mtype, answer in calls.items():
            self.client.bind_receive_call(mtype, self._call_handler(answer))
        for mtype in notes:
            self.client.bind_receive_notification(
                mtype, lambda k, s, mt, p, e: self.inbox.put(("notify", s, mt, p)))
        self.id = self.client.get_public_id()

    def _call_handler(self, answer: Any) -> Any:
        def handle(key, sender, msg_id, mtype, params, extra):
            self.inbox.put(("call", sender, mtype, params))
            response = answer(params) if callable(answer) else answer
            self.client.reply(msg_id, response)
        return handle

    def close(self) -> None:
        peers.disconnect_quietly(self.client)


@pytest.fixture
def make_peer():
    made: List[Peer] = []

    def make(hub, name, calls=None, notes=()):
        peer = Peer(hub, name, calls or {}, notes)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


def ok(result: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"samp.status": "samp.ok", "samp.result": result or {}}
