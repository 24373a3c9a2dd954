"""
Profile our hub under load with py-spy: C{python3 -m benchmarks.profile
[--fanout 1] [--seconds 20] [--out hub-profile.txt]}.

Starts a fresh hub (as the benchmarks do), drives it with the one-driver
configuration of the C{shared} scenario (one process, 100 receivers that
parse every request, 4 senders that serialise every request afresh) doing
C{notify} 1-to-1 (C{--fanout 1}) or C{notifyAll} to the 100 (C{--fanout
100}), while C{py-spy record} samples the hub's process.  Prints the
functions that dominate the samples in which the hub was busy (py-spy drops
the idle ones), inclusive and self, and keeps the raw collapsed stacks.
Needs py-spy (C{pip install .[bench]}) and the right to ptrace the hub.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Tuple

from . import scaling
from .hubs import HubProcess, cpu_seconds

#: a sample whose innermost frame is this is the hub waiting in epoll_wait
#: (py-spy counts a short wait as active)
WAITING = "EPollReactor.doPoll"


def aggregate(path: str) -> Tuple[int, Dict[str, int], Dict[str, int]]:
    """
    Read py-spy's raw (collapsed) output: one stack per line, frames
    separated by C{;}, then the sample count.  Samples of the reactor
    waiting for events (innermost frame L{WAITING}) are left out.

    @return: the number of samples, and per function (C{name (file)}) the
        samples it is on the stack of (inclusive) and at the top of (self).
    """
    total = 0
    inclusive: Dict[str, int] = collections.Counter()
    own: Dict[str, int] = collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_function(frame) for frame in stack.split(";")]
            if frames[-1].startswith(WAITING + " "):
                continue
            n = int(count)
            total += n
            for name in set(frames):
                inclusive[name] += n
            own[frames[-1]] += n
    return total, inclusive, own


def _function(frame: str) -> str:
    # "render_POST (/w/samptwist/hub/standard.py:123)" -> "render_POST
    # (samptwist/hub/standard.py)": no line number, paths from the package
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    if "/samptwist/" in where:
        where = "samptwist/" + where.rsplit("/samptwist/", 1)[1]
    else:
        where = _PREFIX.sub("", where)
    return f"{name} ({where})"


_PREFIX = re.compile(r"^.*(site-packages/|lib/python3\.\d+/)")


def report(path: str, top: int = 30) -> str:
    """@return: the functions that dominate C{path}'s samples, as text; the
    frames on (nearly) every stack (twistd, the reactor loop) are left out."""
    total, inclusive, own = aggregate(path)
    lines = [f"{total} samples of the busy hub (waiting in epoll left out)"]
    for title, counts in (("inclusive", inclusive), ("self", own)):
        lines.append(f"\n{title} %:")
        ranked = [(name, n) for name, n in sorted(counts.items(), key=lambda kv: -kv[1])
                  if title == "self" or n < 0.97 * total]
        for name, n in ranked[:top]:
            lines.append(f"{100 * n / max(1, total):6.1f}  {name}")
    return "\n".join(lines)


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.profile", description=__doc__)
    p.add_argument("--fanout", type=int, default=1, choices=(1, 100))
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--out", default="hub-profile.txt", help="py-spy's raw output")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        p.error("py-spy is not installed (pip install .[bench])")
    hub = HubProcess("samptwist").start()
    record = None
    try:
        record = subprocess.Popen(
            [spy, "record", "-r", str(args.rate), "-f", "raw", "-o", args.out, "-d",
             str(int(args.seconds + 2)), "-p", str(hub.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        c0 = cpu_seconds(hub.pid)
        result = asyncio.run(scaling._shared(hub.url, hub.secret, hub.pid, [args.fanout], 100,
                                             args.seconds, 1.0))
        print(result, f"(hub CPU {cpu_seconds(hub.pid) - c0:.1f} s in all)")
        record.wait(60)
    finally:
        if record is not None and record.poll() is None:
            record.terminate()  # our own child, by PID
            record.wait(10)
        hub.stop()
    if not os.path.exists(args.out):
        print("py-spy wrote nothing:", record.stderr.read().decode() if record else "",
              file=sys.stderr)
        return 1
    print(report(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
