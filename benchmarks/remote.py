"""
``samptwist remote`` throughput and latency, on the simulated remote machine
of the test suite (tests/remote/farside.py: namespaces + a real sshd on its
loopback; needs root, openssh-server, socat).

    python3 -m benchmarks.remote                 # 100 MB, 300 calls, 3 repetitions
    python3 -m benchmarks.remote --smoke         # 5 MB, 20 calls, 1 repetition
    python3 -m benchmarks.remote --profile DIR   # py-spy on both agents (figures not clean)

1. Bandwidth: a file of SIZE random bytes that exists only remotely, read by
   plain ssh, ``ssh remote cat FILE``, into /dev/null and into this process
   (1 MiB reads through a 1 MiB pipe, as the relay's receiver reads), both
   timed from the login (the remote command first says it runs; ``ssh_setup_s``
   is the login itself, which the relay's link has paid already), and fetched
   by a pyvo client on the desktop from the URL of a message that crossed the
   relay (``bench.fetch``: the receiver downloads the URL and reports the
   time).  The other way (``up_``): a desktop file written by this process
   into ``ssh remote 'cat > /dev/null'``, and fetched on the far side through
   the relay.  TRANSFERS of each, interleaved, per repetition; their medians
   count.  The ratios relay/ssh are the relay's share of the stream's
   throughput.
2. Latency: COUNT sequential ``callAndWait`` (test.echo) from a desktop pyvo
   client to another desktop client (one hub), and to a remote client
   through the relay; p50/p99 of each, and the difference of the medians
   (the relay's added latency per call, ssh included).

Writes a JSON report (default benchmarks/results-remote.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import peers  # noqa: E402

from samptwist.remote.link import enlarge_pipe  # noqa: E402
from tests.cli.conftest import Running  # noqa: E402
from tests.remote.farside import remote_machine  # noqa: E402
from tests.remote.peerproc import desktop_peer, remote_peer  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> Tuple[int, float]:
    """
    @return: the parent and the CPU seconds so far of process C{pid}.
    @raise OSError: if it is gone.
    """
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _cmdline(pid: int) -> str:
    """
    @return: the command line of process C{pid}, its arguments joined by spaces.
    @raise OSError: if it is gone.
    """
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


class _Processes:
    """
    The processes below this one, as few files read as can be: each
    process's command line and parent once, when it is first seen (the
    command lines of those below this one without a role again, as they
    may exec or rename themselves); then only the CPU time of those with a
    role (L{_role}).
    """

    def __init__(self) -> None:
        self.seen: Dict[int, Tuple[str, int]] = {}  # pid -> (command line, parent)

    def scan(self) -> None:
        """
        Note the processes that appeared since the last scan.
        """
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in self.seen:
                continue
            pid = int(name)
            try:
                parent, _ = _stat(pid)
                self.seen[pid] = (_cmdline(pid), parent)
            except OSError:
                continue

    def ours(self) -> Dict[int, str]:
        """
        @return: pid -> command line of the processes with a role below this
            one (the namespaces' included: their PIDs are visible here).
        """
        children: Dict[int, List[int]] = {}
        for pid, (_, parent) in self.seen.items():
            children.setdefault(parent, []).append(pid)
        found: Dict[int, str] = {}
        todo = [os.getpid()]
        while todo:
            for kid in children.get(todo.pop(), []):
                cmd, parent = self.seen[kid]
                if _role(cmd) is None:
                    # (read again: first seen between its fork and its exec,
                    # or before it named itself, as sshd does)
                    try:
                        cmd = _cmdline(kid)
                    except OSError:
                        continue
                    self.seen[kid] = (cmd, parent)
                if _role(cmd) is not None:
                    found[kid] = cmd
                todo.append(kid)
        return found


def _cpu_tree() -> Dict[int, Tuple[str, float]]:
    """
    @return: pid -> (command line, CPU seconds so far) of the processes with
        a role below this one.
    """
    processes = _Processes()
    processes.scan()
    return _cpu_of(processes.ours())


def _cpu_of(pids: Dict[int, str]) -> Dict[int, Tuple[str, float]]:
    out: Dict[int, Tuple[str, float]] = {}
    for pid, cmd in pids.items():
        try:
            out[pid] = (cmd, _stat(pid)[1])
        except OSError:
            continue
    return out


def _role(cmd: str) -> Optional[str]:
    argv = cmd.split()
    program = os.path.basename(argv[0]).rstrip(":") if argv else ""  # "sshd: root@notty"
    if program in ("ssh", "sshd", "cat", "socat"):
        return program
    if "remote-agent" in argv:
        return "remote agent"
    if argv[2:4] == ["samptwist", "remote"] or "--via" in argv:
        return "desktop agent"
    if "bench-desk" in argv:
        return "receiver"
    return None


class CPUWatch:
    """
    CPU seconds used by the agents, ssh, sshd, socat, cat and the receiver
    while it runs: those processes sampled every 50 ms in a thread (so that
    processes that end meanwhile are counted up to their last sample), new
    processes looked for every 0.2 s (only their command lines are read, once
    each: reading every process's files every time took a quarter of a core
    from what it measures).
    """

    def __init__(self) -> None:
        self.processes = _Processes()
        self.processes.scan()
        self.pids = self.processes.ours()
        self.before = _cpu_of(self.pids)
        self.last: Dict[int, Tuple[str, float]] = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        n = 0
        while True:
            if n % 4 == 0:
                self.processes.scan()
                self.pids = self.processes.ours()
            self.last.update(_cpu_of(self.pids))
            n += 1
            if self._stop.wait(0.05):
                return

    def used(self) -> Dict[str, float]:
        """
        @return: CPU seconds by role since this watch started.
        """
        self._stop.set()
        self._thread.join()
        self.processes.scan()
        self.last.update(_cpu_of(self.processes.ours()))
        used: Dict[str, float] = {}
        for pid, (cmd, cpu) in self.last.items():
            role = _role(cmd)
            if role is not None:
                used[role] = used.get(role, 0.0) + cpu - self.before.get(pid, (cmd, 0.0))[1]
        return {role: round(seconds, 2) for role, seconds in sorted(used.items())}


class Profile:
    """
    py-spy (by PID, from this namespace) on both agents while one phase
    runs: C{DIR/PHASE-ROLE.txt}, collapsed stacks (C{--format raw}).
    """

    def __init__(self, where: Optional[Path], phase: str) -> None:
        self.spies: List[subprocess.Popen] = []
        if where is None:
            return
        where.mkdir(parents=True, exist_ok=True)
        for pid, (cmd, _) in _cpu_tree().items():
            role = _role(cmd)
            if role in ("desktop agent", "remote agent"):
                out = where / f"{phase}-{role.replace(' ', '-')}.txt"
                self.spies.append(subprocess.Popen(
                    ["py-spy", "record", "--nonblocking", "--threads", "--rate", "250",
                     "--format", "raw", "-o", str(out), "-p", str(pid)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)
        for spy in self.spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=10)


def _pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(size: int, count: int, work: Path, profile: Optional[Path] = None,
            repeat: int = 3) -> Dict[str, Any]:
    with contextlib.ExitStack() as stack:
        hub = stack.enter_context(peers.running_hub(work / "desk"))
        machine = stack.enter_context(remote_machine(work))
        link = Running(hub.env, "remote", "remote", "--ssh", shlex.join(machine.ssh),
                       "--remote-python", sys.executable)
        stack.callback(lambda: link.proc.poll() is None and link.stop())
        link.wait_line("linked to", 90)
        near = desktop_peer(hub.env, "bench-desk")
        stack.callback(near.close)
        echo = desktop_peer(hub.env, "bench-echo")
        stack.callback(echo.close)
        far = remote_peer(machine, "bench-far")
        stack.callback(far.close)
        near.wait_names(lambda n: "bench-far" in n, 30, "remote peer mirrored")
        far.wait_names(lambda n: "bench-desk" in n, 30, "desktop peer mirrored")

        data = machine.home / "big.bin"
        made = machine.run(["dd", "if=/dev/urandom", f"of={data}", "bs=1M",
                            f"count={max(1, size // (1 << 20))}"], timeout=300)
        assert made.returncode == 0, made.stderr
        actual = int(machine.run(["stat", "-c", "%s", str(data)]).stdout)

        up = Path(hub.env["HOME"]) / "up.bin"  # on the desktop only (the far side reads it)
        with open(up, "wb") as f:
            for _ in range(max(1, size // (1 << 20))):
                f.write(os.urandom(1 << 20))
        transfers = []
        for n in range(repeat):
            spy = Profile(profile if n == 0 else None, "transfer")
            transfers.append(_transfers(machine, far, data, actual))
            spy.stop()
            transfers[-1].update(_uploads(machine, near, up))

        local = near.ask("timings", op="bench_calls", to="bench-echo", count=count,
                         timeout=600)["seconds"][count // 10:]
        spy = Profile(profile, "calls")
        relayed = near.ask("timings", op="bench_calls", to="bench-far", count=count,
                           timeout=600)["seconds"][count // 10:]
        spy.stop()
        stopped = _stop_link(link, work)
    mb = actual / 1e6
    ssh_seconds = statistics.median(t["ssh_cat_s"] for t in transfers)
    read_seconds = statistics.median(t["ssh_read_s"] for t in transfers)
    relay_seconds = statistics.median(t["relay_s"] for t in transfers)
    return {
        "bytes": actual,
        "ssh_setup_s": statistics.median(t["ssh_setup_s"] for t in transfers),
        "ssh_cat_s": ssh_seconds, "ssh_cat_MB_per_s": mb / ssh_seconds,
        "ssh_read_s": read_seconds, "ssh_read_MB_per_s": mb / read_seconds,
        "relay_s": relay_seconds, "relay_MB_per_s": mb / relay_seconds,
        "relay_over_ssh": ssh_seconds / relay_seconds,
        "relay_over_ssh_read": read_seconds / relay_seconds,
        "local_call_ms_p50": 1000 * statistics.median(local),
        "local_call_ms_p99": 1000 * _pct(local, 0.99),
        "relayed_call_ms_p50": 1000 * statistics.median(relayed),
        "relayed_call_ms_p99": 1000 * _pct(relayed, 0.99),
        "added_ms_p50": 1000 * (statistics.median(relayed) - statistics.median(local)),
        "ssh_cpu_s": _median_cpu([t["ssh_cpu_s"] for t in transfers]),
        "ssh_read_cpu_s": _median_cpu([t["ssh_read_cpu_s"] for t in transfers]),
        "relay_cpu_s": _median_cpu([t["relay_cpu_s"] for t in transfers]),
        "up_ssh_s": statistics.median(t["up_ssh_s"] for t in transfers),
        "up_relay_s": statistics.median(t["up_relay_s"] for t in transfers),
        "up_ssh_MB_per_s": mb / statistics.median(t["up_ssh_s"] for t in transfers),
        "up_relay_MB_per_s": mb / statistics.median(t["up_relay_s"] for t in transfers),
        "up_relay_over_ssh": statistics.median(t["up_ssh_s"] for t in transfers)
        / statistics.median(t["up_relay_s"] for t in transfers),
        "up_ssh_cpu_s": _median_cpu([t["up_ssh_cpu_s"] for t in transfers]),
        "up_relay_cpu_s": _median_cpu([t["up_relay_cpu_s"] for t in transfers]),
        "transfers": transfers,
        "link_stopped": stopped,
    }


def _stop_link(link: Running, work: Path) -> str:
    """
    End C{samptwist remote} with SIGINT, as a user's Ctrl-C.

    @return: C{"exit N"}, or what it was doing when it ignored the signal
        for 20 s (a py-spy dump; it is then killed): the figures still count.
    """
    link.proc.send_signal(signal.SIGINT)
    try:
        return f"exit {link.proc.wait(timeout=20)}"
    except subprocess.TimeoutExpired:
        pass
    dump = subprocess.run(["py-spy", "dump", "--pid", str(link.proc.pid)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    text = dump.stdout + dump.stderr
    (work.parent / f"samptwist-remote-hang-{link.proc.pid}.txt").write_text(
        text + "\n--- stderr ---\n" + "\n".join(map(str, link.err.snapshot())))
    print(f"samptwist remote ignored SIGINT for 20 s; stacks:\n{text}", file=sys.stderr)
    link.proc.kill()
    link.proc.wait(timeout=20)
    return "ignored SIGINT: " + text[-2000:]


#: the far side's reader for plain ssh uploads: as the far agent reads its
#: standard input (a 1 MiB pipe, 1 MiB reads); C{cat} through ssh's default
#: 64 KiB pipe made ssh itself a quarter slower (116-125 against 138-160 MB/s)
_FAR_READER = ("import fcntl, os\n"
               "fcntl.fcntl(0, getattr(fcntl, 'F_SETPIPE_SZ', 1031), 1 << 20)\n"
               "os.write(1, b'\\n')\n"
               "while os.read(0, 1 << 20):\n    pass\n"
               "os.write(1, b'\\n')\n")


def _uploads(machine: Any, near: Any, up: Path) -> Dict[str, Any]:
    """
    The other way: a desktop file sent by plain ssh (into a far-side Python
    reader that reads as the far agent does, L{_FAR_READER}; written by this
    process once the remote command said it runs, in 1 MiB writes through a
    1 MiB pipe, until the remote side says it read it all) and fetched on the
    far side through the relay.
    """
    size = up.stat().st_size
    cpu = CPUWatch()
    sent = subprocess.Popen(machine.ssh + ["remote", shlex.join([sys.executable, "-c",
                                                                 _FAR_READER])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    assert sent.stdin is not None and sent.stdout is not None
    enlarge_pipe(sent.stdin.fileno())
    sent.stdout.readline()  # logged in: the command runs
    start = time.monotonic()
    with open(up, "rb") as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                break
            sent.stdin.write(piece)
    sent.stdin.close()
    sent.stdout.readline()  # the remote cat read it all (not: until ssh has closed)
    ssh_seconds = max(1e-3, time.monotonic() - start)
    assert sent.wait(timeout=600) == 0
    ssh_cpu = cpu.used()
    relay_seconds, relay_cpu = _relay_fetch(near, "bench-far", up, size)
    return {"up_ssh_s": ssh_seconds, "up_ssh_cpu_s": ssh_cpu,
            "up_relay_s": relay_seconds, "up_relay_cpu_s": relay_cpu}


def _relay_fetch(asker: Any, to: str, path: Path, size: int) -> Tuple[float, Dict[str, float]]:
    """C{to} fetches C{path} through the relay (C{bench.fetch}, asked by
    C{asker}); @return: the seconds it reports and the CPU seconds used."""
    cpu = CPUWatch()
    answer = asker.ask("result", op="call_and_wait", to=to, mtype="bench.fetch",
                       params={"url": path.as_uri()}, timeout=600)
    result = answer["response"]["samp.result"]
    assert int(result["bytes"]) == size, result
    return float(result["seconds"]), cpu.used()


def _median_cpu(runs: List[Dict[str, float]]) -> Dict[str, float]:
    roles = sorted({role for run in runs for role in run})
    return {role: statistics.median(run.get(role, 0.0) for run in runs) for role in roles}


def _transfers(machine: Any, far: Any, data: Path, actual: int) -> Dict[str, Any]:
    """
    One of each: C{ssh remote cat FILE > /dev/null} (timed from the login:
    the remote command first writes a line to standard error), C{ssh remote
    cat FILE} read
    here in 1 MiB reads through a 1 MiB pipe (from its first byte to its
    end: the stream into a reader, as the relay's receiver reads), and the
    file fetched through the relay.
    """
    start = time.monotonic()
    subprocess.run(machine.ssh + ["remote", "true"], check=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    setup = time.monotonic() - start
    cpu = CPUWatch()
    with open(os.devnull, "wb") as sink:
        cat = subprocess.Popen(machine.ssh + ["remote", f"echo >&2; exec cat {data}"],
                               stdout=sink, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               bufsize=0)
        assert cat.stderr is not None
        cat.stderr.readline()  # logged in: the command runs
        start = time.monotonic()
        error = cat.stderr.read()
        assert cat.wait(timeout=600) == 0, error
    ssh_seconds = max(1e-3, time.monotonic() - start)
    ssh_cpu = cpu.used()

    cpu = CPUWatch()
    reader = subprocess.Popen(machine.ssh + ["remote", "cat", str(data)], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, bufsize=0)
    assert reader.stdout is not None
    enlarge_pipe(reader.stdout.fileno())
    got = len(reader.stdout.read(1 << 20))
    first = time.monotonic()
    while True:
        piece = reader.stdout.read(1 << 20)
        if not piece:
            break
        got += len(piece)
    read_seconds = max(1e-3, time.monotonic() - first)
    assert reader.wait(timeout=60) == 0 and got == actual, got
    read_cpu = cpu.used()

    relay_seconds, relay_cpu = _relay_fetch(far, "bench-desk", data, actual)
    return {"ssh_setup_s": setup, "ssh_cat_s": ssh_seconds, "ssh_cpu_s": ssh_cpu,
            "ssh_read_s": read_seconds, "ssh_read_cpu_s": read_cpu,
            "relay_s": relay_seconds, "relay_cpu_s": relay_cpu}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.remote")
    parser.add_argument("--size", type=int, default=100 * 1024 * 1024, help="bytes (100 MiB)")
    parser.add_argument("--count", type=int, default=300, help="calls per latency series")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--transfers", type=int, default=3,
                        help="transfers of each kind per repetition (their medians count)")
    parser.add_argument("--smoke", action="store_true", help="5 MiB, 20 calls, 1 repetition")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="run py-spy on both agents during the transfer and the relayed "
                        "calls; collapsed stacks in DIR (the figures are then not clean)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results-remote.json"))
    args = parser.parse_args(argv)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Run in the background by a shell: SIGINT is ignored, and so it would
        # be by samptwist remote (Twisted then leaves it alone), which is
        # stopped with it as with a user's Ctrl-C.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.smoke:
        args.size, args.count, args.reps, args.transfers = 5 * 1024 * 1024, 20, 1, 1
    runs = []
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="samptwist-remote-bench-") as work:
            runs.append(measure(args.size, args.count, Path(work),
                                None if args.profile is None else Path(args.profile),
                                repeat=args.transfers))
        print(f"repetition {rep + 1}: " + ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in runs[-1].items() if k not in ("transfers", "link_stopped")),
            flush=True)
        if not runs[-1]["link_stopped"].startswith("exit 0"):
            print(f"  samptwist remote did not end cleanly: {runs[-1]['link_stopped'][:300]}",
                  flush=True)
    summary: Dict[str, Any] = {}
    for key, value in runs[0].items():
        if key in ("transfers", "link_stopped"):
            continue
        if isinstance(value, dict):
            summary[key] = _median_cpu([run[key] for run in runs])
        else:
            summary[key] = statistics.median(run[key] for run in runs)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(),
                          "load": os.getloadavg()},
              "settings": {"size": args.size, "count": args.count, "reps": args.reps,
                           "transfers": args.transfers},
              "runs": runs, "summary": summary}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.size / 1e6:.0f} MB: ssh cat > /dev/null {summary['ssh_cat_MB_per_s']:.1f} MB/s, "
          f"ssh cat into a reader {summary['ssh_read_MB_per_s']:.1f} MB/s, "
          f"through the relay {summary['relay_MB_per_s']:.1f} MB/s "
          f"({100 * summary['relay_over_ssh']:.0f}% / "
          f"{100 * summary['relay_over_ssh_read']:.0f}% of ssh)")
    print(f"the other way: ssh into a reader {summary['up_ssh_MB_per_s']:.1f} MB/s, "
          f"through the relay {summary['up_relay_MB_per_s']:.1f} MB/s "
          f"({100 * summary['up_relay_over_ssh']:.0f}%)")
    print(f"CPU seconds: ssh cat {summary['ssh_cpu_s']}; into a reader "
          f"{summary['ssh_read_cpu_s']}; relay {summary['relay_cpu_s']}")
    print(f"callAndWait p50: one hub {summary['local_call_ms_p50']:.2f} ms, through the relay "
          f"{summary['relayed_call_ms_p50']:.2f} ms (added {summary['added_ms_p50']:.2f} ms); "
          f"p99 {summary['local_call_ms_p99']:.2f} / {summary['relayed_call_ms_p99']:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
