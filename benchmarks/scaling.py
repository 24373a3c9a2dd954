"""
The scenarios of issue 16: hub call costs against the number of registered
clients, the shared-cores driver configuration, and real pyvo clients as
receivers.  Each is bounded in time; a hub that cannot keep up is given up
on and the point where that happened is reported.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import statistics
import subprocess
import threading
import time
import xmlrpc.client
from typing import Any, Dict, List, Optional, Sequence

from . import workers
from .hubs import HubProcess, available, cpu_seconds, rss_bytes
from .rpc import EMPTY_RESPONSE, AsyncRpc, serve

#: the crowd subscribes to something nobody sends
CROWD_SUBSCRIPTIONS = {"x-crowd.only": {}, "x-crowd.more.*": {}}
#: samples per call and population size
SAMPLES = 30


def _ms(values: Sequence[float]) -> float:
    return round(1000 * statistics.median(values), 3) if values else float("nan")


async def _grow(hub: HubProcess, have: int, want: int, base: str, deadline: float) -> int:
    """Register clients until C{want} are registered or C{deadline} passes."""
    missing = want - have
    if missing <= 0:
        return have
    done = [0]
    todo = list(range(have, want))

    async def worker() -> None:
        rpc = AsyncRpc(hub.url, timeout=30)
        try:
            while todo and time.monotonic() < deadline:
                i = todo.pop()
                key = (await rpc.call("samp.hub.register", hub.secret))["samp.private-key"]
                await rpc.call("samp.hub.declareMetadata", key, workers.metadata(f"crowd-{i}"))
                await rpc.call("samp.hub.setXmlrpcCallback", key, f"{base}/crowd{i}")
                await rpc.call("samp.hub.declareSubscriptions", key, CROWD_SUBSCRIPTIONS)
                done[0] += 1
        finally:
            rpc.close()

    await asyncio.gather(*(worker() for _ in range(4)))
    return have + done[0]


async def _timed(samples: int, call: Any) -> List[float]:
    out = []
    for i in range(samples):
        t = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - t)
    return out


async def _costs_at(n: int, rpc: AsyncRpc, hub: HubProcess, key: str, receiver: str,
                    base: str) -> Dict[str, float]:
    """@return: the median cost of each kind of call with C{n} clients registered."""
    message = workers.message("0:0".ljust(40))
    new: List[str] = []

    async def register(i: int) -> None:
        k = (await rpc.call("samp.hub.register", hub.secret))["samp.private-key"]
        await rpc.call("samp.hub.declareMetadata", k, workers.metadata(f"new-{n}-{i}"))
        await rpc.call("samp.hub.setXmlrpcCallback", k, f"{base}/new{i}")
        await rpc.call("samp.hub.declareSubscriptions", k, CROWD_SUBSCRIPTIONS)
        new.append(k)

    async def unregister(i: int) -> None:
        await rpc.call("samp.hub.unregister", new[i])

    async def subscribed(i: int) -> None:
        await rpc.call("samp.hub.getSubscribedClients", key, workers.BENCH_MTYPE)

    async def registered(i: int) -> None:
        await rpc.call("samp.hub.getRegisteredClients", key)

    async def notify(i: int) -> None:
        await rpc.call("samp.hub.notify", key, receiver, message)

    async def notify_all(i: int) -> None:
        await rpc.call("samp.hub.notifyAll", key, message)

    async def call(i: int) -> None:
        await rpc.call("samp.hub.call", key, receiver, f"t{i}", message)

    out = {}
    for name, fn in (("register_cycle", register), ("unregister", unregister),
                     ("get_subscribed", subscribed), ("get_registered", registered),
                     ("notify", notify), ("notify_all_1", notify_all), ("call", call)):
        out[f"n{n}_{name}_ms"] = _ms(await _timed(SAMPLES, fn))
    return out


async def _scaling(hub: HubProcess, sizes: Sequence[int], budget: float) -> Dict[str, Any]:
    received = [0]

    async def handle(path: bytes, body: bytes) -> bytes:
        received[0] += 1
        return EMPTY_RESPONSE

    server = await serve(handle)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    rpc = AsyncRpc(hub.url, timeout=30)
    out: Dict[str, Any] = {}
    deadline = time.monotonic() + budget
    try:
        receiver = (await workers.register_many(hub.url, hub.secret, 1, base,
                                                workers.SUBSCRIPTIONS, "target"))[0]
        sender = await rpc.call("samp.hub.register", hub.secret)
        key = sender["samp.private-key"]
        await rpc.call("samp.hub.setXmlrpcCallback", key, f"{base}/sender")
        have = 3  # the hub's own client, the receiver and the sender
        rss0 = rss_bytes(hub.pid)
        for n in sizes:
            have = await _grow(hub, have, n, base, deadline)
            if have < n:
                out["gave_up_at"] = n
                out["reached"] = have
                break
            if time.monotonic() > deadline:
                out["gave_up_at"] = n
                break
            out.update(await _costs_at(n, rpc, hub, key, receiver["samp.self-id"], base))
            out[f"n{n}_rss_mb"] = round(rss_bytes(hub.pid) / 2**20, 1)
            out["largest_n"] = n
            if n >= 1000:
                out["kb_per_client"] = round((rss_bytes(hub.pid) - rss0) / 1024 / n, 2)
        out["callbacks_received"] = received[0]
    finally:
        rpc.close()
        server.close()
    return out


def scaling(hub: HubProcess, s: Any) -> Dict[str, Any]:
    """
    Per-call cost at N registered clients, N in C{s.scaling_sizes}: the
    median of 30 sequential calls of each kind on one connection (register
    + declareMetadata + setXmlrpcCallback + declareSubscriptions as one
    cycle, unregister, getSubscribedClients, getRegisteredClients, notify,
    notifyAll to the one subscriber among N, call).  The crowd is callable
    and subscribed to MTypes nobody sends.  Gives up when the hub's whole
    run would exceed C{s.scaling_budget} seconds.
    """
    return asyncio.run(_scaling(hub, s.scaling_sizes, s.scaling_budget))


def startup(hub: HubProcess, s: Any) -> Dict[str, Any]:
    """
    Cold start: C{s.startup_repeats} fresh hubs of the same kind, each timed
    from exec until its lockfile's URL answers C{samp.hub.ping} (polled every
    5 ms), with the CPU seconds it had used by then (which the machine's
    load does not inflate as it does the wall-clock time), then its RSS
    after one idle second.  Medians.  The hub already started for this
    scenario was the warm-up (bytecode cached, files in the page cache).

    Also: the CPU seconds to nanosecond precision (C{start_cpu_s} counts
    clock ticks of 10 ms), from the scheduler's accounting of every thread
    right after the ping was answered; and the idle RSS split into
    anonymous memory (the heap: the interpreter's objects, a JVM's heap)
    and file-backed pages (shared libraries, C{libpython} and OpenSSL's
    C{libcrypto} for a Python hub).
    """
    times, cpu, precise, rss, anon, mapped = [], [], [], [], [], []
    for _ in range(s.startup_repeats):
        other = HubProcess(hub.kind)
        try:
            other.start(poll=0.005)
            times.append(other.start_seconds)
            cpu.append(other.start_cpu_seconds)
            precise.append(_scheduled_seconds(other.pid))
            time.sleep(1.0)
            rss.append(rss_bytes(other.pid) / 2**20)
            memory = _memory_kb(other.pid)
            anon.append(memory.get("RssAnon", 0) / 1024)
            mapped.append(memory.get("RssFile", 0) / 1024)
        finally:
            other.stop()
    return {"start_s": round(statistics.median(times), 3), "start_min_s": round(min(times), 3),
            "start_cpu_s": round(statistics.median(cpu), 3),
            "start_cpu_precise_s": round(statistics.median(precise), 4),
            "idle_rss_mb": round(statistics.median(rss), 1),
            "idle_rss_anon_mb": round(statistics.median(anon), 1),
            "idle_rss_file_mb": round(statistics.median(mapped), 1)}


def _scheduled_seconds(pid: int) -> float:
    """@return: CPU seconds every thread of C{pid} has run, in nanoseconds
    (the first field of each C{/proc/PID/task/TID/schedstat}); NaN where
    the kernel does not keep them."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return total / 1e9


def _memory_kb(pid: int) -> Dict[str, int]:
    """@return: the C{Rss*} lines of C{/proc/PID/status}, in KB."""
    out: Dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name.startswith("Rss"):
                out[name] = int(value.split()[0])
    return out


# -- one driver process --------------------------------------------------------

async def _shared(url: str, secret: str, pid: int, fanouts: Sequence[int], receivers: int,
                  duration: float, warmup: float) -> Dict[str, Any]:
    received = [0]

    async def handle(path: bytes, body: bytes) -> bytes:
        params, method = xmlrpc.client.loads(body)  # a real client parses every request
        if method == "samp.client.receiveNotification" and isinstance(params[2], dict):
            received[0] += 1
        return EMPTY_RESPONSE

    server = await serve(handle)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    out: Dict[str, Any] = {}
    try:
        regs = await workers.register_many(url, secret, receivers, base,
                                           workers.SUBSCRIPTIONS, "shared")
        setup = AsyncRpc(url)
        key = (await setup.call("samp.hub.register", secret))["samp.private-key"]
        setup.close()
        for fanout in fanouts:
            method = "samp.hub.notify" if fanout == 1 else "samp.hub.notifyAll"
            target = [regs[0]["samp.self-id"]] if fanout == 1 else []
            window = max(200, 4 * fanout)
            sent = [0]
            stop = [False]
            body = (key, *target)
            start0 = received[0]
            tasks = [asyncio.ensure_future(_send(url, method, body, fanout, window, sent,
                                                 received, start0, stop)) for _ in range(4)]
            await asyncio.sleep(warmup)
            r0, c0, t0 = received[0], cpu_seconds(pid), time.monotonic()
            d0 = time.process_time()
            await asyncio.sleep(duration)
            r1, c1, t1 = received[0], cpu_seconds(pid), time.monotonic()
            d1 = time.process_time()
            stop[0] = True
            await asyncio.gather(*tasks, return_exceptions=True)
            drain = time.monotonic() + 15
            while received[0] - start0 < sent[0] * fanout and time.monotonic() < drain:
                await asyncio.sleep(0.01)
            label = "notify" if fanout == 1 else f"fanout{fanout}"
            delivered = max(1, r1 - r0)
            out[f"{label}_deliveries_per_s"] = round((r1 - r0) / (t1 - t0), 1)
            out[f"{label}_hub_cpu_us_per_delivery"] = round(1e6 * (c1 - c0) / delivered, 1)
            out[f"{label}_driver_cpu_us_per_delivery"] = round(1e6 * (d1 - d0) / delivered, 1)
            out[f"{label}_lost"] = max(0, sent[0] * fanout - (received[0] - start0))
    finally:
        server.close()
    return out


async def _send(url: str, method: str, head: tuple, fanout: int, window: int, sent: List[int],
                received: List[int], start: int, stop: List[bool]) -> None:
    """Send C{method(*head, message)} while at most C{window} deliveries are
    outstanding, serialising every request afresh as a real client does."""
    rpc = AsyncRpc(url, timeout=30)
    k = 0
    try:
        while not stop[0]:
            if sent[0] * fanout - (received[0] - start) > window:
                await asyncio.sleep(0.001)
                continue
            k += 1
            msg = workers.message(f"{k}:{time.monotonic():.6f}")
            await rpc.post(xmlrpc.client.dumps((*head, msg), method).encode())
            sent[0] += 1
    finally:
        rpc.close()


def _shared_main(cfg: Dict[str, Any], results: Any) -> None:
    results.put(asyncio.run(_shared(cfg["url"], cfg["secret"], cfg["pid"], cfg["fanouts"],
                                    cfg["receivers"], cfg["duration"], cfg["warmup"])))


def shared_cores(hub: HubProcess, s: Any) -> Dict[str, Any]:
    """
    The driver as one process sharing the two cores with the hub: one
    asyncio loop hosts 100 receiving clients that parse every request with
    xmlrpc.client and 4 senders that serialise every request afresh (no
    templates); notify 1-to-1, then notifyAll to the 100.  Reports
    deliveries/s and hub CPU microseconds per delivered notification.
    """
    from .scenarios import _stop, ctx

    results: Any = ctx.Queue()
    cfg = {"url": hub.url, "secret": hub.secret, "pid": hub.pid, "fanouts": (1, 100),
           "receivers": 100, "duration": s.duration, "warmup": s.warmup}
    p = ctx.Process(target=_shared_main, args=(cfg, results), daemon=True)
    p.start()
    try:
        return results.get(timeout=4 * (s.duration + s.warmup) + 180)
    except queue.Empty:
        return {"error": "shared-cores driver gave no result"}
    finally:
        _stop([p])


# -- real pyvo clients as receivers -------------------------------------------

def _pyvo_receivers_main(cfg: Dict[str, Any], counter: Any, ready: Any, stop: Any) -> None:
    from astropy.utils.data import conf as data_conf
    from pyvo.samp import SAMPIntegratedClient

    data_conf.use_internet = False  # type: ignore[misc]
    params = {"samp.hub.xmlrpc.url": cfg["url"], "samp.secret": cfg["secret"]}
    clients = []
    ids = []

    def got(private_key: str, sender_id: str, mtype: str, params: Dict, extra: Dict) -> None:
        with counter.get_lock():
            counter.value += 1

    for i in range(cfg["n"]):
        c = SAMPIntegratedClient(name=f"pyvo-receiver-{i}", addr="127.0.0.1")
        c.connect(hub_params=params)
        c.bind_receive_notification(workers.BENCH_MTYPE, got)
        clients.append(c)
        ids.append(c.get_public_id())
    ready.put(ids)
    stop.wait(cfg["max_seconds"])
    for c in clients:
        try:
            c.disconnect()
        except Exception:
            pass


def _notify_all_rate(hub: HubProcess, s: Any, counter: Any, n: int) -> Dict[str, Any]:
    """notifyAll to the C{n} receivers counting into C{counter}, at most 40
    deliveries outstanding; deliveries/s over the window."""
    from .scenarios import _stop, ctx

    proxy = xmlrpc.client.ServerProxy(hub.url)
    key = proxy.samp.hub.register(hub.secret)["samp.private-key"]
    sent = [ctx.RawValue("q", 0)]
    go, halt = ctx.Event(), ctx.Event()
    scfg = {"url": hub.url, "method": "samp.hub.notifyAll",
            "params": (key, workers.message()), "fanout": n, "window": 40, "conns": 2,
            "max_seconds": s.warmup + s.duration + 30}
    sender = ctx.Process(target=workers.throughput_sender_main, daemon=True,
                         args=(scfg, sent[0], sent, [_Reader(counter)], go, halt))
    sender.start()
    try:
        go.set()
        time.sleep(s.warmup)
        r0, c0, t0 = counter.value, cpu_seconds(hub.pid), time.monotonic()
        time.sleep(s.duration)
        r1, c1, t1 = counter.value, cpu_seconds(hub.pid), time.monotonic()
    finally:
        halt.set()
        _stop([sender])
    return {"deliveries_per_s": round((r1 - r0) / (t1 - t0), 1),
            "hub_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1)}


def real_clients(hub: HubProcess, s: Any) -> Dict[str, Any]:
    """
    Receivers are real clients whose callback servers close the connection
    after every callback: 4 pyvo C{SAMPIntegratedClient}s in one process,
    then 2 JSAMP clients (C{jsamp snooper}, one JVM each), each set measured
    with notifyAll from one sender process.
    """
    from .scenarios import _stop, ctx

    n = 4
    counter = ctx.Value("q", 0)
    ready: Any = ctx.Queue()
    stop = ctx.Event()
    cfg = {"url": hub.url, "secret": hub.secret, "n": n,
           "max_seconds": s.warmup + s.duration + 120}
    p = ctx.Process(target=_pyvo_receivers_main, args=(cfg, counter, ready, stop), daemon=True)
    p.start()
    try:
        ready.get(timeout=120)
        out = _notify_all_rate(hub, s, counter, n)
    finally:
        stop.set()
        _stop([p], timeout=30)
    if available("jsamp") is None:
        out.update({f"jsamp_{k}": v for k, v in _jsamp_receivers(hub, s).items()})
    return out


def _jsamp_receivers(hub: HubProcess, s: Any, n: int = 2) -> Dict[str, Any]:
    from .scenarios import ctx

    env = dict(os.environ, HOME=str(hub.home), SAMP_HUB=f"std-lockurl:{hub.lockfile.as_uri()}",
               JAVA_TOOL_OPTIONS=f"-Duser.home={hub.home} -Djsamp.localhost=127.0.0.1")
    counter = ctx.Value("q", 0)
    procs = [subprocess.Popen(
        [shutil.which("jsamp") or "/usr/bin/jsamp", "snooper", "-clientname",
         f"jsamp-receiver-{i}", "-mtype", workers.BENCH_MTYPE],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    ) for i in range(n)]

    def count(stream: Any) -> None:
        for line in stream:
            if b"--- notify" in line:
                with counter.get_lock():
                    counter.value += 1

    readers = [threading.Thread(target=count, args=(p.stdout,), daemon=True) for p in procs]
    for r in readers:
        r.start()
    try:
        proxy = xmlrpc.client.ServerProxy(hub.url)
        key = proxy.samp.hub.register(hub.secret)["samp.private-key"]
        deadline = time.monotonic() + 120
        while len(proxy.samp.hub.getSubscribedClients(key, workers.BENCH_MTYPE)) < n:
            if time.monotonic() > deadline:
                return {"error": "JSAMP receivers did not subscribe in 120 s"}
            time.sleep(0.2)
        return _notify_all_rate(hub, s, counter, n)
    finally:
        for p in procs:  # our own children, by PID
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


class _Reader:
    """A C{RawValue}-like view of a locked C{Value} (the sender reads C{.value})."""

    def __init__(self, value: Any) -> None:
        self._value = value

    @property
    def value(self) -> int:
        return int(self._value.value)


def pyvo_available() -> Optional[str]:
    try:
        import pyvo.samp  # noqa: F401
    except ImportError:
        return "pyvo is not installed"
    return None
