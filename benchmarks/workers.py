"""
The driver's worker processes: receivers (XML-RPC callback servers hosting
many registered clients each) and senders.  Each runs its own asyncio loop,
talks to the hub over persistent connections where the hub allows them, and
is bounded in time (C{MAX_LIFETIME}) as well as by its stop event.

Counters are shared C{RawValue}s written by one process each.
"""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client
from typing import Any, Dict, List, Optional, Sequence

from .rpc import (
    EMPTY_RESPONSE,
    METHOD_RE,
    PLACEHOLDER,
    TAG_RE,
    AsyncRpc,
    RpcError,
    Template,
    serve,
    tag,
)

MAX_LIFETIME = 300.0
BENCH_MTYPE = "x-bench.ping"
SUBSCRIPTIONS = {"x-bench.*": {}, "table.load.votable": {}, "image.load.fits": {},
                 "coord.pointAt.sky": {}, "x-bench.other.thing": {"note": "annotated"}}


def metadata(name: str) -> Dict[str, str]:
    return {
        "samp.name": name,
        "samp.description.text": "samptwist benchmark client",
        "samp.icon.url": "http://127.0.0.1/icon.png",
        "author.name": "samptwist benchmarks",
        "bench.index": name.rsplit("-", 1)[-1],
    }


def message(k_placeholder: str = PLACEHOLDER, data: Optional[str] = None) -> Dict[str, Any]:
    params = {"bench": k_placeholder}
    if data is not None:
        params["data"] = data
    return {"samp.mtype": BENCH_MTYPE, "samp.params": params}


async def _wait(ev: Any, limit: float = MAX_LIFETIME) -> None:
    deadline = time.monotonic() + limit
    while not ev.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def register_many(
    url: str, secret: str, n: int, callback_base: Optional[str], subscriptions: Dict[str, Any],
    prefix: str, conns: int = 2,
) -> List[Dict[str, str]]:
    """Register C{n} clients with metadata, subscriptions and callbacks."""
    out: List[Optional[Dict[str, str]]] = [None] * n
    queue = list(range(n))

    async def worker() -> None:
        rpc = AsyncRpc(url)
        while queue:
            i = queue.pop()
            reg = await rpc.call("samp.hub.register", secret)
            key = reg["samp.private-key"]
            await rpc.call("samp.hub.declareMetadata", key, metadata(f"{prefix}-{i}"))
            if callback_base is not None:
                await rpc.call("samp.hub.setXmlrpcCallback", key, f"{callback_base}/{i}")
            await rpc.call("samp.hub.declareSubscriptions", key, subscriptions)
            out[i] = reg
        rpc.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return [r for r in out if r is not None]


def receiver_main(cfg: Dict[str, Any], counter: Any, record: Any, ready: Any, stop: Any,
                  results: Any) -> None:
    """
    Host C{cfg["n"]} receiving clients on one port.

    cfg keys: url, secret (hub; absent for a bare echo server), n, slow
    (seconds to hold each message), reply (answer calls), index.
    """
    asyncio.run(_receiver(cfg, counter, record, ready, stop, results))


async def _receiver(cfg: Dict[str, Any], counter: Any, record: Any, ready: Any, stop: Any,
                    results: Any) -> None:
    latencies: Dict[int, List[float]] = {}
    slow = float(cfg.get("slow", 0))
    reply_rpc = AsyncRpc(cfg["url"]) if cfg.get("reply") else None
    keys: Dict[bytes, str] = {}
    reply_lock = asyncio.Lock()
    tasks = set()

    async def reply(path: bytes, body: bytes) -> None:
        assert reply_rpc is not None
        params, _ = xmlrpc.client.loads(body)
        msg_id = params[2]
        async with reply_lock:
            await reply_rpc.call("samp.hub.reply", keys[path], msg_id,
                                 {"samp.status": "samp.ok", "samp.result": {}})

    async def handle(path: bytes, body: bytes) -> bytes:
        m = METHOD_RE.search(body, 0, 400)
        method = m.group(1) if m else b""
        if method in (b"samp.client.receiveNotification", b"samp.client.receiveCall"):
            found = TAG_RE.search(body)
            if found:
                now = time.monotonic()
                counter.value += 1
                if record.value:
                    latencies.setdefault(int(found.group(1)), []).append(
                        now - float(found.group(2)))
                if slow:
                    await asyncio.sleep(slow)
            if method == b"samp.client.receiveCall" and reply_rpc is not None:
                task = asyncio.get_running_loop().create_task(reply(path, body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        return EMPTY_RESPONSE

    server = await serve(handle)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    regs: List[Dict[str, str]] = []
    if cfg.get("n"):
        regs = await register_many(cfg["url"], cfg["secret"], cfg["n"], base, SUBSCRIPTIONS,
                                   f"recv{cfg.get('index', 0)}")
        for i, r in enumerate(regs):
            keys[f"/{i}".encode()] = r["samp.private-key"]
    ready.put((cfg.get("index", 0), base, [r["samp.self-id"] for r in regs]))
    await _wait(stop)
    server.close()
    results.put((cfg.get("index", 0), latencies))


def throughput_sender_main(cfg: Dict[str, Any], sent: Any, all_sent: Sequence[Any],
                           received: Sequence[Any], go: Any, stop: Any) -> None:
    """
    Send C{cfg["method"]} requests as fast as the window allows on
    C{cfg["conns"]} connections: at most C{cfg["window"]} deliveries may be
    outstanding (sent x fanout - received).
    """
    asyncio.run(_throughput_sender(cfg, sent, all_sent, received, go, stop))


async def _throughput_sender(cfg: Dict[str, Any], sent: Any, all_sent: Sequence[Any],
                             received: Sequence[Any], go: Any, stop: Any) -> None:
    template = Template(cfg["method"], tuple(cfg["params"]))
    fanout = cfg.get("fanout", 1)
    window = cfg.get("window", 0)
    k0 = cfg.get("index", 0) * 10_000_000
    await _wait(go, 60)
    deadline = time.monotonic() + min(MAX_LIFETIME, cfg.get("max_seconds", 60))

    async def worker(j: int) -> None:
        rpc = AsyncRpc(cfg["url"])
        k = k0 + j * 1_000_000
        while not stop.is_set() and time.monotonic() < deadline:
            if window:
                outstanding = sum(s.value for s in all_sent) * fanout - sum(
                    r.value for r in received)
                if outstanding > window:
                    await asyncio.sleep(0.001)
                    continue
            k += 1
            chunks = template.fill(k, time.monotonic())
            try:
                await rpc.post(*chunks)
            except Exception:
                await asyncio.sleep(0.01)
                continue
            sent.value += 1
        rpc.close()

    await asyncio.gather(*(worker(j) for j in range(cfg.get("conns", 1))))


def registration_main(cfg: Dict[str, Any], cycles: Any, go: Any, stop: Any) -> None:
    """Register/declareMetadata/declareSubscriptions/unregister in a loop."""
    asyncio.run(_registration(cfg, cycles, go, stop))


async def _registration(cfg: Dict[str, Any], cycles: Any, go: Any, stop: Any) -> None:
    await _wait(go, 60)
    deadline = time.monotonic() + min(MAX_LIFETIME, cfg.get("max_seconds", 60))

    async def worker(j: int) -> None:
        rpc = AsyncRpc(cfg["url"])
        i = 0
        while not stop.is_set() and time.monotonic() < deadline:
            i += 1
            key = (await rpc.call("samp.hub.register", cfg["secret"]))["samp.private-key"]
            # JSAMP refuses subscriptions from a client without a callback
            await rpc.call("samp.hub.setXmlrpcCallback", key, f"{cfg['callback']}/{j}")
            await rpc.call("samp.hub.declareMetadata", key, metadata(f"reg-{j}-{i}"))
            await rpc.call("samp.hub.declareSubscriptions", key, SUBSCRIPTIONS)
            await rpc.call("samp.hub.unregister", key)
            cycles.value += 1
        rpc.close()

    await asyncio.gather(*(worker(j) for j in range(cfg.get("conns", 1))))


def latency_main(cfg: Dict[str, Any], received: Sequence[Any], results: Any) -> None:
    """
    Sequential latency probes (one message in flight):

    - C{mode="call"}: call + reply delivered back through receiveResponse;
    - C{mode="callAndWait"}: callAndWait;
    - C{mode="notifyAll"}: notifyAll, waiting until C{cfg["expect"]} receivers
      have it (the receivers record the per-receiver latencies);
    - C{mode="notify"}: notify (e.g. a large one), waiting until it arrived;
    - C{mode="echo"}: a plain call to an XML-RPC echo server.

    Sends C{cfg["count"]} probes within C{cfg["max_seconds"]}; puts the list
    of client-side round-trip times on C{results}.
    """
    asyncio.run(_latency(cfg, received, results))


async def _latency(cfg: Dict[str, Any], received: Sequence[Any], results: Any) -> None:
    mode = cfg["mode"]
    rpc = AsyncRpc(cfg["url"])
    times: List[float] = []
    failures: List[str] = []
    responses: Dict[str, asyncio.Future] = {}
    key = cfg.get("key", "")
    server = None
    if mode == "call":
        async def handle(path: bytes, body: bytes) -> bytes:
            m = METHOD_RE.search(body, 0, 400)
            if m and m.group(1) == b"samp.client.receiveResponse":
                params, _ = xmlrpc.client.loads(body)
                fut = responses.pop(params[2].strip(), None)
                if fut is not None and not fut.done():
                    fut.set_result(params[3])
            return EMPTY_RESPONSE

        server = await serve(handle)
        port = server.sockets[0].getsockname()[1]
        reg = await rpc.call("samp.hub.register", cfg["secret"])
        key = reg["samp.private-key"]
        await rpc.call("samp.hub.declareMetadata", key, metadata("caller-0"))
        await rpc.call("samp.hub.setXmlrpcCallback", key, f"http://127.0.0.1:{port}/")
        await rpc.call("samp.hub.declareSubscriptions", key, {})
    data = "x" * cfg["size"] if cfg.get("size") else None
    msg = message(PLACEHOLDER, data)
    if mode == "call":
        template = Template("samp.hub.call", (key, cfg["recipient"], PLACEHOLDER, msg))
    elif mode == "callAndWait":
        template = Template("samp.hub.callAndWait",
                            (key, cfg["recipient"], msg, str(cfg.get("timeout", 10))))
    elif mode == "notifyAll":
        template = Template("samp.hub.notifyAll", (key, msg))
    elif mode == "notify":
        template = Template("samp.hub.notify", (key, cfg["recipient"], msg))
    else:
        template = Template("samp.client.receiveNotification", (key, "c0", msg))
    expect = cfg.get("expect", 1)
    deadline = time.monotonic() + min(MAX_LIFETIME, cfg.get("max_seconds", 30))
    loop = asyncio.get_running_loop()
    for k in range(1, cfg["count"] + 1):
        if time.monotonic() > deadline:
            break
        base = sum(r.value for r in received)
        t0 = time.monotonic()
        chunks = template.fill(k, t0)
        if mode == "call":
            fut = loop.create_future()
            responses[tag(k, t0).strip()] = fut
        try:
            answer = await rpc.post(*chunks)
            if mode == "call":
                await asyncio.wait_for(fut, cfg.get("timeout", 10))
            elif mode == "callAndWait":
                xmlrpc.client.loads(answer)
        except (xmlrpc.client.Fault, asyncio.TimeoutError, RpcError) as e:
            failures.append(f"{type(e).__name__}: {e}"[:200])
            responses.clear()
            continue
        if mode in ("notifyAll", "notify"):
            wait_until = time.monotonic() + 30
            while sum(r.value for r in received) < base + expect and time.monotonic() < wait_until:
                await asyncio.sleep(0.0005)
        times.append(time.monotonic() - t0)
        if cfg.get("pause"):
            await asyncio.sleep(cfg["pause"])
    rpc.close()
    if server is not None:
        server.close()
    results.put((times, failures))


def clients_main(cfg: Dict[str, Any], ready: Any, unregister: Any, done: Any) -> None:
    """Register C{cfg["n"]} clients, hold them until C{unregister}, then unregister them."""
    asyncio.run(_clients(cfg, ready, unregister, done))


async def _clients(cfg: Dict[str, Any], ready: Any, unregister: Any, done: Any) -> None:
    regs = await register_many(cfg["url"], cfg["secret"], cfg["n"], cfg["callback"],
                               SUBSCRIPTIONS, f"mem{cfg['index']}")
    ready.put(len(regs))
    await _wait(unregister)
    rpc = AsyncRpc(cfg["url"])
    for r in regs:
        await rpc.call("samp.hub.unregister", r["samp.private-key"])
    rpc.close()
    done.put(len(regs))
