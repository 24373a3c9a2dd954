"""
Shared helpers for the real-peer interoperability tests in ``tests/interop``.

A "peer" is third-party SAMP software we test against: JSAMP's command-line tools
(``/usr/bin/jsamp``), ``pyvo.samp`` and ``astropy.samp``.  Missing peers skip the
test on a developer machine and fail it under CI (environment variable ``CI``
non-empty), so CI can never go green by silently skipping the interop suite.

Every hub started here runs as a subprocess with its own temporary HOME and its
own lockfile; nothing touches the real user's ``~/.samp``.

Developer aid: ``SAMPTWIST_INTEROP_HUB=pyvo`` or ``=jsamp`` runs the same tests
against a reference hub (pyvo.samp's or JSAMP's) instead of ours, to check that a
test expects what real hubs do.  CI never sets it.  The reference hubs are started
through ``python tests/peers.py reference-hub KIND LOCKFILE``, which gives them the
same command-line contract as ours (lockfile, "SAMP hub ready" line, SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

HUB_READY_TEXT = "SAMP hub ready"
HUB_START_TIMEOUT = 30.0
HUB_STOP_TIMEOUT = 15.0
JSAMP_TIMEOUT = 120.0
JSAMP = "/usr/bin/jsamp"

_REFERENCE_ENV = "SAMPTWIST_INTEROP_HUB"


# ---------------------------------------------------------------------------
# Peer discovery


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require_peer(name: str, probe: Callable[[], Any]) -> Any:
    """
    Return ``probe()`` if the peer *name* is available.

    *probe* returns the peer (an executable path, a module, ...) or raises
    (ImportError, OSError, LookupError) / returns None when it is missing.
    Missing peer: ``pytest.fail`` under CI, ``pytest.skip`` otherwise.
    """
    import pytest

    try:
        found = probe()
        reason = None if found is not None else "probe returned None"
    except (ImportError, OSError, LookupError) as exc:
        found, reason = None, f"{type(exc).__name__}: {exc}"
    if found is None:
        msg = f"SAMP peer {name!r} is not available ({reason})"
        if in_ci():
            pytest.fail(msg + "; CI must install every peer (see .ci/run)", pytrace=False)
        pytest.skip(msg)
    return found


def _probe_jsamp() -> str:
    exe = shutil.which("jsamp") or (JSAMP if os.access(JSAMP, os.X_OK) else None)
    if exe is None:
        raise LookupError("no jsamp executable on PATH or at /usr/bin/jsamp")
    if shutil.which("java") is None:
        raise LookupError("jsamp found but no java runtime on PATH")
    return exe


def require_jsamp() -> str:
    """Path of the jsamp launcher script."""
    return require_peer("jsamp", _probe_jsamp)


def import_samp_module(modname: str) -> Any:
    """
    Import ``pyvo.samp`` or ``astropy.samp`` quietly, and stop it from probing
    the internet (both libraries' ``conf.use_internet`` otherwise make
    SAMPClient open http://google.com to choose its callback host name).
    """
    with warnings.catch_warnings():
        # astropy >= 8 deprecates astropy.samp in favour of pyvo.samp.
        warnings.filterwarnings("ignore", message=r".*astropy\.samp.*deprecated", category=Warning)
        warnings.filterwarnings("ignore", message=r".*deprecated.*astropy\.samp", category=Warning)
        mod = importlib.import_module(modname)
    mod.conf.use_internet = False
    return mod


def require_samp_module(modname: str) -> Any:
    return require_peer(modname, lambda: import_samp_module(modname))


# ---------------------------------------------------------------------------
# Lockfiles


def parse_lockfile(path: Path) -> dict[str, str]:
    """Parse a Standard Profile lockfile (comments and blank lines ignored)."""
    params: dict[str, str] = {}
    for line in Path(path).read_text(encoding="ascii").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep:
            params[name] = value
    return params


# ---------------------------------------------------------------------------
# Running a hub


def hub_command(lockfile: Path, *extra: str) -> list[str]:
    """Command line that starts a hub honouring our CLI contract."""
    kind = os.environ.get(_REFERENCE_ENV, "samptwist")
    if kind == "samptwist":
        # Not "python -m twisted.scripts.twistd": that module has no __main__ guard,
        # so it exits 0 without doing anything.  Same interpreter as the tests.
        return [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "samphub",
            "--lockfile",
            str(lockfile),
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--no-web",
            "--log-level",
            "debug",
            *extra,
        ]
    if kind in ("pyvo", "jsamp"):
        return [sys.executable, str(Path(__file__).resolve()), "reference-hub", kind, str(lockfile)]
    raise ValueError(f"{_REFERENCE_ENV}={kind!r}: expected samptwist, pyvo or jsamp")


def peer_env(home: Path, lockfile: Path) -> dict[str, str]:
    """Environment for a peer process talking to the hub whose lockfile is *lockfile*."""
    env = dict(os.environ)
    env.pop("SAMP_HUB", None)
    env.update(
        HOME=str(home),
        SAMP_HUB=f"std-lockurl:{lockfile.as_uri()}",
        # Java ignores $HOME for user.home; never let it see the real ~/.samp.
        JAVA_TOOL_OPTIONS=f"-Duser.home={home}",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclasses.dataclass
class HubProcess:
    """
    A hub running as a child process, started by ``running_hub()`` (ours,
    or the one ``SAMPTWIST_INTEROP_HUB`` names): its process, private home,
    lockfile and output.  (Not ``samptwist.RunningHub``, a hub started in
    this process by ``samptwist.start_hub``.)
    """

    proc: subprocess.Popen[bytes]
    home: Path
    lockfile: Path
    env: dict[str, str]
    params: dict[str, str]
    output: list[str]
    _output_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.params["samp.hub.xmlrpc.url"]

    @property
    def secret(self) -> str:
        return self.params["samp.secret"]

    @property
    def hub_params(self) -> dict[str, str]:
        """Lockfile contents, in the form pyvo/astropy ``connect(hub_params=...)`` takes."""
        return dict(self.params)

    def log_text(self) -> str:
        with self._output_lock:
            return "".join(self.output)

    def describe(self, tail: int = 40) -> str:
        """Hub pid, its warnings/errors, and the last *tail* lines it logged (no access log)."""
        lines = [line for line in self.log_text().splitlines() if '"POST /' not in line]
        trouble = [
            line
            for line in lines
            if re.search(r"#(warn|error|critical)\]|Traceback|Unhandled", line)
        ]
        return (
            f"hub pid {self.proc.pid}, lockfile {self.lockfile}\n"
            f"hub warnings/errors ({len(trouble)}):\n"
            + "\n".join(line[:500] for line in trouble[-30:])
            + "\n"
            f"hub log, last {tail} lines:\n" + "\n".join(line[:300] for line in lines[-tail:])
        )


def _read_until_ready(
    proc: subprocess.Popen[bytes], lockfile: Path, deadline: float
) -> tuple[bool, list[str]]:
    """Read the hub's stdout until the ready line (and the lockfile) or EOF/deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    chunks: list[str] = []
    pending = b""
    ready_line = False
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            if ready_line and lockfile.exists():
                if pending:
                    chunks.append(pending.decode("utf-8", "replace"))
                return True, chunks
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, chunks
            if not sel.select(timeout=remaining):
                continue
            data = os.read(fd, 65536)
            if not data:  # EOF: the hub exited or closed stdout
                if pending:
                    chunks.append(pending.decode("utf-8", "replace"))
                return ready_line and lockfile.exists(), chunks
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace") + "\n"
                chunks.append(line)
                if HUB_READY_TEXT in line:
                    ready_line = True
            # The contract says the lockfile exists before the ready line is logged.


def _limit_files(nofile: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))


def _drain(hub: HubProcess) -> None:
    assert hub.proc.stdout is not None
    fd = hub.proc.stdout.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        with hub._output_lock:
            hub.output.append(data.decode("utf-8", "replace"))


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, bool]:
    """SIGTERM this one process, wait (bounded), SIGKILL if needed. Returns (rc, killed)."""
    if proc.poll() is not None:
        return proc.returncode, False
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=HUB_STOP_TIMEOUT), False
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=HUB_STOP_TIMEOUT), True


@contextlib.contextmanager
def running_hub(
    tmp_path: Path, *extra_args: str, nofile: Optional[int] = None
) -> Iterator[HubProcess]:
    """
    Start our hub as a subprocess with HOME=tmp_path/home and lockfile
    tmp_path/home/.samp (and, with C{nofile}, that soft RLIMIT_NOFILE); yield
    a HubProcess.  On exit: SIGTERM (this PID only),
    bounded wait, SIGKILL if needed; then assert exit status 0 and that the
    lockfile was removed (STD-LOCKSEC-4, STD-SHUT-1).
    """
    import pytest

    home = Path(tmp_path) / "home"
    home.mkdir(parents=True, exist_ok=True)
    lockfile = home / ".samp"
    env = peer_env(home, lockfile)
    proc = subprocess.Popen(
        hub_command(lockfile, *extra_args),
        cwd=str(tmp_path),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C in the terminal must not hit the hub first
        preexec_fn=None if nofile is None else functools.partial(_limit_files, nofile),
    )
    try:
        ready, chunks = _read_until_ready(proc, lockfile, time.monotonic() + HUB_START_TIMEOUT)
    except BaseException:
        _stop(proc)
        raise
    if not ready:
        rc, killed = _stop(proc)
        rest = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
        proc.stdout and proc.stdout.close()
        pytest.fail(
            f"hub did not become ready within {HUB_START_TIMEOUT:.0f}s "
            f"(ready line seen: {any(HUB_READY_TEXT in c for c in chunks)}, "
            f"lockfile exists: {lockfile.exists()}, exit status {rc}"
            f"{' after SIGKILL' if killed else ''}).\n"
            f"command: {' '.join(hub_command(lockfile, *extra_args))}\n"
            f"output:\n{''.join(chunks)}{rest}",
            pytrace=False,
        )
    hub = HubProcess(
        proc=proc,
        home=home,
        lockfile=lockfile,
        env=env,
        params=parse_lockfile(lockfile),
        output=chunks,
    )
    drainer = threading.Thread(
        target=_drain, args=(hub,), name=f"hub-{proc.pid}-stdout", daemon=True
    )
    drainer.start()
    body_failed: BaseException | None = None
    try:
        yield hub
    except BaseException as exc:
        body_failed = exc
        raise
    finally:
        rc, killed = _stop(proc)
        drainer.join(timeout=5)
        if proc.stdout:
            proc.stdout.close()
        problems = []
        if killed:
            problems.append(f"hub ignored SIGTERM for {HUB_STOP_TIMEOUT:.0f}s and was killed")
        elif rc != 0:
            problems.append(f"hub exited with status {rc} after SIGTERM (expected 0)")
        if lockfile.exists():
            problems.append(f"hub left its lockfile {lockfile} behind")
        if problems and body_failed is None:
            pytest.fail("; ".join(problems) + "\n" + hub.describe(), pytrace=False)
        elif problems:
            body_failed.add_note("also at hub shutdown: " + "; ".join(problems))


# ---------------------------------------------------------------------------
# JSAMP command-line tools


def run_jsamp(
    hub: HubProcess, *args: str, timeout: float = JSAMP_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``jsamp ARGS`` against *hub* with a bounded timeout; never hangs the suite."""
    import pytest

    cmd = [require_jsamp(), *args]
    try:
        return subprocess.run(
            cmd,
            env=hub.env,
            cwd=str(hub.home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(
            f"{' '.join(cmd)} did not finish within {timeout:.0f}s\n"
            f"stdout:\n{out}\nstderr:\n{err}\n"
            + hub.describe(),
            pytrace=False,
        )


def jsamp_stderr(cp: subprocess.CompletedProcess[str]) -> str:
    """stderr without the JVM's 'Picked up JAVA_TOOL_OPTIONS' notice."""
    return "\n".join(
        line
        for line in cp.stderr.splitlines()
        if not line.startswith("Picked up JAVA_TOOL_OPTIONS")
    )


def describe_run(cp: subprocess.CompletedProcess[Any], hub: HubProcess | None = None) -> str:
    args = cp.args if isinstance(cp.args, str) else " ".join(map(str, cp.args))
    text = f"{args} -> exit status {cp.returncode}\nstdout:\n{cp.stdout}\nstderr:\n{cp.stderr}"
    if hub is not None:
        text += "\n" + hub.describe()
    return text


def is_private_lockfile(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------
# pyvo.samp / astropy.samp clients

SOCKET_TIMEOUT = 30.0


def disconnect_quietly(client: Any) -> None:
    """Unregister and stop a SAMPIntegratedClient if it is still up; never raises."""
    try:
        if client.client is not None and client.is_connected:
            client.disconnect()
            return
    except Exception:
        pass
    with contextlib.suppress(Exception):
        if client.client is not None and client.client.is_running:
            client.client.stop()
    with contextlib.suppress(Exception):
        client.hub.disconnect()


class Inbox:
    """
    Thread-safe record of what a client's callbacks received, with waits on a
    condition variable (no sleep loops).  Items are whatever the handlers put().
    """

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def put(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[Any], bool], timeout: float = 10.0, what: str = "item"
    ) -> Any:
        """Return the first item matching *predicate*, waiting up to *timeout* seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; received: {self.items!r}")
                self._cond.wait(remaining)

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self.items)


class Outcome:
    """Result of :func:`call_in_thread`: ``value`` or ``error``, and how long it took."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.elapsed: float | None = None
        self.done = threading.Event()


def call_in_thread(fn: Callable[..., Any], *args: Any) -> Outcome:
    """
    Run a blocking peer call (e.g. call_and_wait) in a daemon thread so the test can
    act meanwhile and wait for it with a bound: ``outcome.done.wait(timeout)``.
    """
    outcome = Outcome()

    def run() -> None:
        start = time.monotonic()
        try:
            outcome.value = fn(*args)
        except BaseException as exc:  # reported to the test, not lost in the thread
            outcome.error = exc
        finally:
            outcome.elapsed = time.monotonic() - start
            outcome.done.set()

    threading.Thread(
        target=run, name=f"peer-call-{getattr(fn, '__name__', 'fn')}", daemon=True
    ).start()
    return outcome


# ---------------------------------------------------------------------------
# Reference hubs (developer aid, see module docstring)


def _reference_hub(kind: str, lockfile: Path) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if kind == "pyvo":
        samp = import_samp_module("pyvo.samp")
        hub = samp.SAMPHubServer(lockfile=str(lockfile), web_profile=False, addr="127.0.0.1")
        hub.start(wait=False)
        print(f"{HUB_READY_TEXT} (pyvo reference hub)", flush=True)
        stop.wait()
        hub.stop()
        return 0
    if kind == "jsamp":
        env = dict(os.environ, SAMP_HUB=f"std-lockurl:{lockfile.as_uri()}")
        child = subprocess.Popen(
            [_probe_jsamp(), "hub", "-mode", "no-gui", "-profiles", "std"], env=env
        )
        # JSAMP announces nothing; watch for its lockfile (dev aid only).  JSAMP
        # writes it in place, not atomically: wait until it is complete, or a
        # reader finds a file without its URL (seen under load).
        def complete() -> bool:
            try:
                params = parse_lockfile(lockfile)
            except (OSError, ValueError):  # absent, or half-written bytes
                return False
            return "samp.secret" in params and "samp.hub.xmlrpc.url" in params

        while not complete() and child.poll() is None and not stop.wait(0.05):
            pass
        if child.poll() is None and not stop.is_set():
            print(f"{HUB_READY_TEXT} (jsamp reference hub)", flush=True)
            stop.wait()
        child.send_signal(signal.SIGTERM)
        rc = child.wait(timeout=HUB_STOP_TIMEOUT)
        return 0 if rc in (0, 143, -signal.SIGTERM) else rc
    raise SystemExit(f"unknown reference hub {kind!r}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "reference-hub":
        sys.exit(_reference_hub(sys.argv[2], Path(sys.argv[3])))
    sys.exit(f"usage: {sys.argv[0]} reference-hub pyvo|jsamp LOCKFILE")
