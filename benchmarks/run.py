"""
Run the hub benchmarks: C{python3 -m benchmarks.run [--quick] [--reps N]
[--hubs samptwist,pyvo,jsamp] [--scenarios ...] [--json PATH]}.

For each repetition, for each scenario, every hub is started afresh (own
temporary HOME and lockfile, loopback only), measured and stopped, in an
order rotated per repetition; the driver's ceiling (a trivial XML-RPC echo
server) is measured once per repetition.  Prints the medians, the ratio of
our hub to the better peer and the issue's target for each figure, and
writes every raw figure to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from . import scenarios
from .hubs import HUBS, HubProcess, available

OURS = "samptwist"

# (scenario, figure, label, higher is better, target: minimum factor ours-vs-best peer)
FIGURES: List[Tuple[str, str, str, bool, Optional[float]]] = [
    ("registration", "cycles_per_s", "registration cycles/s", True, 1.0),
    ("notify", "deliveries_per_s", "notify 1-to-1 deliveries/s", True, 2.0),
    ("notify", "hub_cpu_us_per_delivery", "notify 1-to-1 hub CPU us/delivery", False, 4.0),
    ("fanout10", "deliveries_per_s", "notifyAll->10 deliveries/s", True, None),
    ("fanout10", "last_p50_ms", "notifyAll->10 last receiver p50 ms", False, None),
    ("fanout10", "last_p99_ms", "notifyAll->10 last receiver p99 ms", False, None),
    ("fanout100", "deliveries_per_s", "notifyAll->100 deliveries/s", True, 2.0),
    ("fanout100", "hub_cpu_us_per_delivery", "notifyAll->100 hub CPU us/delivery", False, 4.0),
    ("fanout100", "last_p50_ms", "notifyAll->100 last receiver p50 ms", False, None),
    ("fanout100", "last_p99_ms", "notifyAll->100 last receiver p99 ms", False, 1.0),
    ("call", "call_p50_ms", "call+reply p50 ms", False, None),
    ("call", "call_p99_ms", "call+reply p99 ms", False, 2.0),
    ("call", "wait_p50_ms", "callAndWait p50 ms", False, None),
    ("call", "wait_p99_ms", "callAndWait p99 ms", False, 1.0),
    ("isolation", "fast_p50_ms", "fast receivers p50 ms (one slow)", False, None),
    ("isolation", "fast_p99_ms", "fast receivers p99 ms (one slow)", False, 1.0),
    ("memory", "idle_mb", "RSS idle MB", False, None),
    ("memory", "rss100_mb", "RSS 100 clients MB", False, None),
    ("memory", "rss1000_mb", "RSS 1000 clients MB", False, None),
    ("memory", "kb_per_client", "RSS KB per client (target <= 20)", False, None),
    ("memory", "after_unregister_mb", "RSS after unregistering MB", False, None),
    ("large", "1mb_ms", "1 MB notify ms", False, None),
    ("large", "10mb_ms", "10 MB notify ms", False, 1.0),
    ("fanout1000", "deliveries_per_s", "notifyAll->1000 deliveries/s", True, None),
    ("fanout1000", "last_p50_ms", "notifyAll->1000 last receiver p50 ms", False, None),
    ("fanout1000", "last_p99_ms", "notifyAll->1000 last receiver p99 ms", False, None),
    ("shared", "notify_deliveries_per_s", "one driver: notify 1-to-1 deliveries/s", True, 2.0),
    ("shared", "notify_hub_cpu_us_per_delivery",
     "one driver: notify hub CPU us/delivery", False, 4.0),
    ("shared", "fanout100_deliveries_per_s", "one driver: notifyAll->100 deliveries/s", True,
     2.0),
    ("shared", "fanout100_hub_cpu_us_per_delivery",
     "one driver: notifyAll->100 hub CPU us/delivery", False, 4.0),
    ("shared", "notify_driver_cpu_us_per_delivery",
     "one driver: notify driver CPU us/delivery", False, None),
    ("startup", "start_s", "cold start to pingable lockfile, s (median)", False, None),
    ("startup", "start_min_s", "cold start, fastest of 5, s", False, None),
    ("startup", "start_cpu_s", "cold start, hub CPU s until pingable (median)", False, None),
    ("startup", "idle_rss_mb", "idle RSS after start, MB", False, None),
    ("pyvo_clients", "deliveries_per_s", "pyvo receivers: notifyAll->4 deliveries/s", True,
     1.0),
    ("pyvo_clients", "jsamp_deliveries_per_s", "JSAMP receivers: notifyAll->2 deliveries/s",
     True, 1.0),
    *[("scaling", f"n{n}_{op}_ms", f"N={n:,}: {label} ms", False, None)
      for op, label in [("register_cycle", "register+metadata+callback+subscriptions"),
                        ("unregister", "unregister"), ("get_subscribed", "getSubscribedClients"),
                        ("get_registered", "getRegisteredClients"), ("notify", "notify"),
                        ("notify_all_1", "notifyAll (1 subscriber)"), ("call", "call")]
      for n in (10, 100, 1000, 5000, 10_000)],
    ("scaling", "largest_n", "scaling: largest N measured", True, None),
    ("scaling", "gave_up_at", "scaling: gave up at N", False, None),
    ("scaling", "kb_per_client", "scaling: RSS KB per client at largest N", False, None),
]
#: targets on our hub alone: (scenario, figure, label, most allowed)
ABSOLUTE: List[Tuple[str, str, str, float]] = [
    ("memory", "kb_per_client", "ours: RSS KB per client at 1,000 <= 20", 20.0),
    ("scaling", "kb_per_client", "ours: RSS KB per client at largest N < 5", 5.0),
    ("startup", "start_s", "ours: cold start to pingable lockfile <= 0.3 s", 0.3),
    ("startup", "idle_rss_mb", "ours: idle RSS <= 30 MB", 30.0),
]
ECHO_FIGURES = [
    ("calls_per_s", "driver ceiling: echo calls/s"),
    ("p50_ms", "driver ceiling: echo p50 ms"),
    ("p99_ms", "driver ceiling: echo p99 ms"),
]


def machine() -> Dict[str, Any]:
    def out(*cmd: str) -> str:
        try:
            cp = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (cp.stdout + cp.stderr).strip()
        except OSError:
            return "unavailable"

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "java": out("java", "-version").splitlines()[0] if out("java", "-version") else "",
            "platform": platform.platform(), "loadavg_start": os.getloadavg()}


def settings(args: argparse.Namespace) -> scenarios.Settings:
    if args.smoke:
        s = scenarios.Settings(duration=0.5, warmup=0.2, probes=10, fanout_probes=3,
                               senders=1, conns=2, memory_clients=200,
                               large_sizes=(100_000,), large_repeats=1,
                               scaling_sizes=(10, 100), scaling_budget=20)
    elif args.quick:
        s = scenarios.Settings(duration=1.5, warmup=0.5, probes=60, fanout_probes=15,
                               isolation_seconds=5.5, memory_clients=200,
                               large_sizes=(1_000_000,), large_repeats=1,
                               scaling_sizes=(10, 100, 1000), scaling_budget=60)
    else:
        s = scenarios.Settings()
    if args.duration:
        s.duration = args.duration
    return s


def median(values: List[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def summarise(raw: Dict[str, Any], hubs: List[str]) -> List[Dict[str, Any]]:
    rows = []
    for scen, fig, label, higher, target in FIGURES:
        if scen not in raw:
            continue
        med = {h: median([r.get(fig, float("nan")) for r in raw[scen].get(h, [])]) for h in hubs}
        peers = [med[h] for h in hubs if h != OURS and med[h] == med[h]]
        row: Dict[str, Any] = {"scenario": scen, "figure": fig, "label": label, "medians": med,
                               "target": target}
        if peers and OURS in med and med[OURS] == med[OURS]:
            best = max(peers) if higher else min(peers)
            ours = med[OURS]
            factor = (ours / best if best else float("inf")) if higher else (
                best / ours if ours else float("inf"))
            row["best_peer"] = best
            row["factor"] = round(factor, 2)  # > 1: ours is better
            if target is not None:
                row["met"] = factor >= target * 0.999
        rows.append(row)
    for scen, fig, label, limit in ABSOLUTE:
        if scen in raw and OURS in raw[scen]:
            value = median([r.get(fig, float("nan")) for r in raw[scen][OURS]])
            rows.append({"scenario": scen, "figure": fig + "_target", "label": label,
                         "medians": {OURS: value}, "target": limit, "absolute": True,
                         "met": value <= limit})
    return rows


def fmt(x: Any) -> str:
    if isinstance(x, float):
        if x != x:
            return "-"
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"
    return str(x)


def table(rows: List[Dict[str, Any]], hubs: List[str], echo: Dict[str, List[float]]) -> str:
    head = ["figure"] + hubs + ["ours vs best peer", "target", "met"]
    lines = [head]
    for r in rows:
        factor = r.get("factor")
        lines.append([r["label"]] + [fmt(r["medians"].get(h, float("nan"))) for h in hubs] + [
            f"{factor:.2f}x" if factor is not None else "",
            (f"<= {r['target']:g}" if r.get("absolute") else f">= {r['target']:g}x")
            if r.get("target") is not None else "",
            {True: "yes", False: "NO"}.get(r.get("met"), ""),
        ])
    for fig, label in ECHO_FIGURES:
        if fig in echo:
            lines.append([label, fmt(median(echo[fig]))] + [""] * (len(head) - 2))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    out = []
    for n, row in enumerate(lines):
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short windows, smaller sizes")
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds: notify, call and the echo server only (the test)")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    p.add_argument("--hubs", default=",".join(HUBS))
    p.add_argument("--scenarios", default=",".join(scenarios.SCENARIOS) + ",echo")
    p.add_argument("--duration", type=float, default=None, help="throughput window, seconds")
    p.add_argument("--json", default="benchmarks/results.json", help="where to write results")
    p.add_argument("--time-limit", type=float, default=3600.0,
                   help="stop starting new measurements after this many seconds")
    args = p.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    s = settings(args)
    hubs = []
    for h in args.hubs.split(","):
        why = available(h)
        if why:
            print(f"skipping {h}: {why}", file=sys.stderr)
        else:
            hubs.append(h)
    if args.smoke:
        args.scenarios = "notify,call,echo"
    names = [n for n in args.scenarios.split(",") if n]
    unknown = [n for n in names if n not in scenarios.SCENARIOS and n != "echo"]
    if unknown:
        p.error(f"unknown scenarios {unknown}")
    info = machine()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
          f"{info['java']}; load {info['loadavg_start']}", flush=True)
    raw: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    echo: Dict[str, List[float]] = {}
    errors: List[str] = []
    started = time.monotonic()
    for rep in range(reps):
        for si, name in enumerate(names):
            if time.monotonic() - started > args.time_limit:
                errors.append("time limit reached; later measurements skipped")
                break
            if name == "echo":
                r = scenarios.echo(None, s)
                print(f"rep {rep + 1} echo: {r}", flush=True)
                for k, v in r.items():
                    echo.setdefault(k, []).append(v)
                continue
            shift = (rep + si) % len(hubs)
            for hub_name in hubs[shift:] + hubs[:shift]:
                hub = HubProcess(hub_name)
                try:
                    hub.start()
                    r = scenarios.SCENARIOS[name](hub, s)
                    raw.setdefault(name, {}).setdefault(hub_name, []).append(r)
                    print(f"rep {rep + 1} {name} {hub_name}: {r}", flush=True)
                except Exception as e:  # one failed measurement must not end the run
                    msg = f"rep {rep + 1} {name} {hub_name}: {type(e).__name__}: {e}"
                    errors.append(msg)
                    print("ERROR " + msg, flush=True)
                finally:
                    hub.stop()
    rows = summarise(raw, hubs)
    print()
    print(table(rows, hubs, echo))
    for e in errors:
        print("error:", e)
    info["loadavg_end"] = os.getloadavg()
    result = {"machine": info, "settings": vars(s), "reps": reps, "hubs": hubs, "raw": raw,
              "echo": echo, "summary": rows, "errors": errors,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=list)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
