"""
The eight scenarios of issue 7.  Each function takes a started hub (or
C{None} for the driver-ceiling scenario) and a L{Settings}, runs its worker
processes, stops them by PID and returns a flat dict of figures.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import statistics
import time
import xmlrpc.client
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from . import scaling, workers
from .hubs import HubProcess, cpu_seconds, rss_bytes

ctx = mp.get_context("fork")


@dataclass
class Settings:
    duration: float = 5.0        # seconds of each throughput measurement window
    warmup: float = 1.0
    probes: int = 300            # call / callAndWait round trips
    fanout_probes: int = 60      # notifyAll latency probes
    senders: int = 2             # sender processes
    conns: int = 4               # connections per sender process
    isolation_seconds: float = 6.0
    memory_clients: int = 1000
    large_sizes: Sequence[int] = (1_000_000, 10_000_000)
    large_repeats: int = 3
    scaling_sizes: Sequence[int] = (10, 100, 1000, 5000, 10_000)
    scaling_budget: float = 240.0  # seconds per hub before the scaling run gives up
    startup_repeats: int = 5


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def _ms(x: float) -> float:
    return round(x * 1000, 3)


def _stop(procs: Sequence[Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()  # by PID: these are our own children
            p.join(5)


class Receivers:
    """Receiver processes hosting C{counts[i]} clients each."""

    def __init__(self, hub: Optional[HubProcess], counts: Sequence[int], slow: float = 0,
                 reply: bool = False) -> None:
        self.counters = [ctx.RawValue("q", 0) for _ in counts]
        self.record = ctx.RawValue("b", 0)
        self.stop_ev = ctx.Event()
        self.ready: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.procs = []
        self.ids: List[str] = []
        self.bases: List[str] = []
        for i, n in enumerate(counts):
            cfg = {"n": n, "index": i, "slow": slow, "reply": reply,
                   "url": hub.url if hub else "", "secret": hub.secret if hub else ""}
            p = ctx.Process(target=workers.receiver_main, daemon=True, args=(
                cfg, self.counters[i], self.record, self.ready, self.stop_ev, self.results))
            p.start()
            self.procs.append(p)
        got = sorted(self.ready.get(timeout=180) for _ in counts)
        for _, base, ids in got:
            self.bases.append(base)
            self.ids.extend(ids)

    def total(self) -> int:
        return sum(c.value for c in self.counters)

    def wait_total(self, target: int, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while self.total() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.total() >= target

    def stop(self) -> Dict[int, List[float]]:
        self.stop_ev.set()
        merged: Dict[int, List[float]] = {}
        for _ in self.procs:
            try:
                _, lat = self.results.get(timeout=10)
            except queue.Empty:
                break
            for k, v in lat.items():
                merged.setdefault(k, []).extend(v)
        _stop(self.procs)
        return merged


def _client(hub: HubProcess, name: str) -> Dict[str, str]:
    proxy = xmlrpc.client.ServerProxy(hub.url)
    reg = proxy.samp.hub.register(hub.secret)
    proxy.samp.hub.declareMetadata(reg["samp.private-key"], workers.metadata(name))
    return reg


def _latency_run(cfg: Dict[str, Any], received: Sequence[Any],
                 failures: Optional[List[str]] = None) -> List[float]:
    """@return: round-trip times; failed probes are appended to C{failures}."""
    results: Any = ctx.Queue()
    p = ctx.Process(target=workers.latency_main, args=(cfg, received, results), daemon=True)
    p.start()
    try:
        times, failed = results.get(timeout=cfg.get("max_seconds", 30) + 60)
    except queue.Empty:
        times, failed = [], ["latency worker gave no result"]
    _stop([p])
    if failures is not None:
        failures.extend(failed)
    return times


def _throughput(hub: HubProcess, s: Settings, params: tuple, method: str, fanout: int,
                receivers: Receivers, window: int, senders: int, conns: int) -> Dict[str, float]:
    sent = [ctx.RawValue("q", 0) for _ in range(senders)]
    go, stop = ctx.Event(), ctx.Event()
    procs = []
    for i in range(senders):
        cfg = {"url": hub.url, "method": method, "params": params, "fanout": fanout,
               "window": window, "conns": conns, "index": i,
               "max_seconds": s.warmup + s.duration + 30}
        p = ctx.Process(target=workers.throughput_sender_main, daemon=True,
                        args=(cfg, sent[i], sent, receivers.counters, go, stop))
        p.start()
        procs.append(p)
    go.set()
    time.sleep(s.warmup)
    r0, c0, t0 = receivers.total(), cpu_seconds(hub.pid), time.monotonic()
    time.sleep(s.duration)
    r1, c1, t1 = receivers.total(), cpu_seconds(hub.pid), time.monotonic()
    stop.set()
    _stop(procs)
    total_sent = sum(x.value for x in sent)
    receivers.wait_total(total_sent * fanout, 15)  # drain before whatever comes next
    return {
        "deliveries_per_s": round((r1 - r0) / (t1 - t0), 1),
        "hub_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
        "hub_cpu_us_per_delivery": round(1e6 * (c1 - c0) / max(1, r1 - r0), 1),
        "lost": max(0, total_sent * fanout - receivers.total()),
    }


# -- the scenarios ---------------------------------------------------------

def registration(hub: HubProcess, s: Settings) -> Dict[str, float]:
    cycles = [ctx.RawValue("q", 0) for _ in range(s.senders)]
    go, stop = ctx.Event(), ctx.Event()
    procs = []
    echo = Receivers(None, [0])  # callbacks are set, never called
    try:
        for i in range(s.senders):
            cfg = {"url": hub.url, "secret": hub.secret, "conns": 2, "callback": echo.bases[0],
                   "max_seconds": s.warmup + s.duration + 30}
            p = ctx.Process(target=workers.registration_main, args=(cfg, cycles[i], go, stop),
                            daemon=True)
            p.start()
            procs.append(p)
        go.set()
        time.sleep(s.warmup)
        n0, c0, t0 = sum(c.value for c in cycles), cpu_seconds(hub.pid), time.monotonic()
        time.sleep(s.duration)
        n1, c1, t1 = sum(c.value for c in cycles), cpu_seconds(hub.pid), time.monotonic()
    finally:
        stop.set()
        _stop(procs)
        echo.stop()
    return {"cycles_per_s": round((n1 - n0) / (t1 - t0), 1),
            "hub_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1)}


def notify(hub: HubProcess, s: Settings) -> Dict[str, float]:
    rec = Receivers(hub, [1])
    try:
        key = _client(hub, "sender")["samp.private-key"]
        params = (key, rec.ids[0], workers.message())
        return _throughput(hub, s, params, "samp.hub.notify", 1, rec, window=400,
                           senders=s.senders, conns=s.conns)
    finally:
        rec.stop()


def fanout(n: int):
    def scenario(hub: HubProcess, s: Settings) -> Dict[str, float]:
        per = [n // 2, n - n // 2] if n > 1 else [n]
        rec = Receivers(hub, per)
        try:
            key = _client(hub, "sender")["samp.private-key"]
            out = _throughput(hub, s, (key, workers.message()), "samp.hub.notifyAll", n, rec,
                              window=max(400, 4 * n), senders=s.senders, conns=2)
            rec.record.value = 1
            _latency_run({"mode": "notifyAll", "url": hub.url, "key": key, "expect": n,
                          "count": s.fanout_probes, "max_seconds": 60}, rec.counters)
            rec.record.value = 0
        finally:
            lat = rec.stop()
        last = [max(v) for v in lat.values() if len(v) == n]
        out.update({"last_p50_ms": _ms(percentile(last, 50)),
                    "last_p99_ms": _ms(percentile(last, 99)), "probes": len(last)})
        return out

    scenario.__name__ = f"fanout{n}"
    return scenario


def call_reply(hub: HubProcess, s: Settings) -> Dict[str, float]:
    rec = Receivers(hub, [1], reply=True)
    try:
        recipient = rec.ids[0]
        call_failed: List[str] = []
        wait_failed: List[str] = []
        call = _latency_run({"mode": "call", "url": hub.url, "secret": hub.secret,
                             "recipient": recipient, "count": s.probes + 20,
                             "max_seconds": 40}, [], call_failed)[20:]
        key = _client(hub, "waiter")["samp.private-key"]
        wait = _latency_run({"mode": "callAndWait", "url": hub.url, "key": key,
                             "recipient": recipient, "count": s.probes + 20,
                             "max_seconds": 40}, [], wait_failed)[20:]
    finally:
        rec.stop()
    return {"call_p50_ms": _ms(percentile(call, 50)), "call_p99_ms": _ms(percentile(call, 99)),
            "wait_p50_ms": _ms(percentile(wait, 50)), "wait_p99_ms": _ms(percentile(wait, 99)),
            "probes": min(len(call), len(wait)), "call_failed": len(call_failed),
            "wait_failed": len(wait_failed), "failures": (call_failed + wait_failed)[:3]}


def isolation(hub: HubProcess, s: Settings) -> Dict[str, float]:
    slow = Receivers(hub, [1], slow=5.0)
    fast = Receivers(hub, [10])
    try:
        key = _client(hub, "sender")["samp.private-key"]
        fast.record.value = 1
        pause = 0.05
        times = _latency_run({"mode": "notifyAll", "url": hub.url, "key": key, "expect": 10,
                              "count": int(s.isolation_seconds / pause), "pause": pause,
                              "max_seconds": s.isolation_seconds + 5}, fast.counters)
        fast.record.value = 0
        held = slow.total()
    finally:
        lat = fast.stop()
        slow.stop()
    every = [x for v in lat.values() for x in v]
    return {"fast_p50_ms": _ms(percentile(every, 50)), "fast_p99_ms": _ms(percentile(every, 99)),
            "notifyAll_p99_ms": _ms(percentile(times, 99)), "deliveries": len(every),
            "slow_received": held}


def memory(hub: HubProcess, s: Settings) -> Dict[str, float]:
    echo = Receivers(None, [0])
    out: Dict[str, float] = {}
    procs: List[Any] = []
    unregister = ctx.Event()
    done: Any = ctx.Queue()
    try:
        time.sleep(1.0)
        idle = rss_bytes(hub.pid)
        out["idle_mb"] = round(idle / 2**20, 1)
        ready: Any = ctx.Queue()
        total = 0
        for n in (100, s.memory_clients - 100):
            for _i in range(2):
                cfg = {"url": hub.url, "secret": hub.secret, "n": n // 2,
                       "callback": echo.bases[0], "index": len(procs)}
                p = ctx.Process(target=workers.clients_main, args=(cfg, ready, unregister, done),
                                daemon=True)
                p.start()
                procs.append(p)
            for _ in range(2):
                total += ready.get(timeout=300)
            time.sleep(1.0)
            out[f"rss{total}_mb"] = round(rss_bytes(hub.pid) / 2**20, 1)
        out["kb_per_client"] = round((rss_bytes(hub.pid) - idle) / 1024 / total, 1)
        unregister.set()
        for _ in procs:
            done.get(timeout=300)
        time.sleep(2.0)
        out["after_unregister_mb"] = round(rss_bytes(hub.pid) / 2**20, 1)
    finally:
        unregister.set()
        _stop(procs)
        echo.stop()
    return out


def large(hub: HubProcess, s: Settings) -> Dict[str, float]:
    rec = Receivers(hub, [1])
    out: Dict[str, float] = {}
    try:
        key = _client(hub, "sender")["samp.private-key"]
        for size in s.large_sizes:
            times = _latency_run({"mode": "notify", "url": hub.url, "key": key,
                                  "recipient": rec.ids[0], "size": size,
                                  "count": s.large_repeats, "pause": 0.2,
                                  "max_seconds": 60}, rec.counters)
            label = f"{size // 1_000_000}mb" if size >= 1_000_000 else f"{size // 1000}kb"
            out[f"{label}_ms"] = _ms(statistics.median(times)) if times else float("nan")
    finally:
        rec.stop()
    return out


def echo(hub: Optional[HubProcess], s: Settings) -> Dict[str, float]:
    """The driver against a trivial XML-RPC echo server (the driver's ceiling)."""
    server = Receivers(None, [0])
    try:
        url = server.bases[0] + "/"
        sent = [ctx.RawValue("q", 0) for _ in range(s.senders)]
        go, stop = ctx.Event(), ctx.Event()
        procs = []
        params = ("key", "c1", workers.message())
        for i in range(s.senders):
            cfg = {"url": url, "method": "samp.client.receiveNotification", "params": params,
                   "conns": s.conns, "index": i, "max_seconds": s.warmup + s.duration + 30}
            p = ctx.Process(target=workers.throughput_sender_main, daemon=True,
                            args=(cfg, sent[i], sent, server.counters, go, stop))
            p.start()
            procs.append(p)
        go.set()
        time.sleep(s.warmup)
        r0, t0 = server.total(), time.monotonic()
        time.sleep(s.duration)
        r1, t1 = server.total(), time.monotonic()
        stop.set()
        _stop(procs)
        times = _latency_run({"mode": "echo", "url": url, "count": s.probes + 20,
                              "max_seconds": 30}, [])[20:]
    finally:
        server.stop()
    return {"calls_per_s": round((r1 - r0) / (t1 - t0), 1),
            "p50_ms": _ms(percentile(times, 50)), "p99_ms": _ms(percentile(times, 99))}


SCENARIOS = {
    "registration": registration,
    "notify": notify,
    "fanout10": fanout(10),
    "fanout100": fanout(100),
    "fanout1000": fanout(1000),
    "scaling": scaling.scaling,
    "shared": scaling.shared_cores,
    "pyvo_clients": scaling.real_clients,
    "startup": scaling.startup,
    "call": call_reply,
    "isolation": isolation,
    "memory": memory,
    "large": large,
}
