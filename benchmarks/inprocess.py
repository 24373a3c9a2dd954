"""
The CPU cost of the hub's message path without the network: C{python3 -m
benchmarks.inprocess [--count 7000] [--profile]}.

A real L{HubService} on a L{MemoryReactorClock}, its Standard Profile site
and its callback client on L{StringTransport}s: each round feeds one
C{notify} request from one client to another in, takes the callback the hub
writes, and feeds the callback's answer back.  Prints the CPU microseconds
per round (the best of 7 batches: the least disturbed by the rest of the
machine), which is the hub's own Python work per 1-to-1 delivery; the
kernel and the reactor's share come on top in a real hub (see
C{benchmarks.profile}).  With C{--profile}, cProfile's top functions too.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Tuple

from twisted.internet.testing import MemoryReactorClock, StringTransport

from samptwist.hub.service import HubService

from .workers import BENCH_MTYPE, message

_ANSWER = xmlrpc.client.dumps(("",), methodresponse=True).encode()
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_ANSWER), _ANSWER
)


def request(method: str, *args: Any) -> bytes:
    body = xmlrpc.client.dumps(args, method).encode()
    return (
        b"POST /xmlrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
        b"User-Agent: bench\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


class Rig:
    """A hub with a sender and a receiver, and one notify ready to feed in."""

    def __init__(self) -> None:
        self.reactor = MemoryReactorClock()
        home = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
        self.service = HubService(reactor=self.reactor, lockfile=home / ".samp")
        self.channel = self.service.site.buildProtocol(None)
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)
        secret = self.service.secret
        sender = self.call("samp.hub.register", secret)["samp.private-key"]
        receiver = self.call("samp.hub.register", secret)
        key = receiver["samp.private-key"]
        self.call("samp.hub.declareMetadata", key, {"samp.name": "receiver"})
        self.call("samp.hub.setXmlrpcCallback", key, "http://127.0.0.1:9/callback")
        self.call("samp.hub.declareSubscriptions", key, {BENCH_MTYPE: {}})
        self.notify = request(
            "samp.hub.notify", sender, receiver["samp.self-id"], message("12345:1700000000.1")
        )
        # The first notify makes the hub connect to the receiver's callback URL.
        self.channel.dataReceived(self.notify)
        factory = self.reactor.tcpClients[-1][2]
        self.callback = factory.buildProtocol(None)
        self.callback_transport = StringTransport()
        self.callback.makeConnection(self.callback_transport)
        assert b"receiveNotification" in self.callback_transport.value()

    def call(self, method: str, *args: Any) -> Any:
        self.transport.clear()
        self.channel.dataReceived(request(method, *args))
        body = self.transport.value().split(b"\r\n\r\n", 1)[1]
        return xmlrpc.client.loads(body)[0][0]

    def rounds(self, n: int) -> None:
        for _ in range(n):
            self.callback_transport.clear()
            self.callback.dataReceived(ANSWER)  # answers the callback in flight
            self.transport.clear()
            self.channel.dataReceived(self.notify)  # whose successor goes out at once


def measure(count: int) -> Tuple[float, Rig]:
    """
    @return: the best CPU microseconds per round of 7 batches of
        C{count // 7} rounds, and the rig.
    """
    rig = Rig()
    rig.rounds(300)
    batch = max(1, count // 7)
    best = min(_cpu(rig.rounds, batch) for _ in range(7))
    assert b"receiveNotification" in rig.callback_transport.value()
    return 1e6 * best / batch, rig


def _cpu(f: Any, n: int) -> float:
    start = time.process_time()
    f(n)
    return time.process_time() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=7000, help="rounds in all")
    p.add_argument("--profile", action="store_true", help="also print cProfile's top 30")
    args = p.parse_args()
    us, rig = measure(args.count)
    print(f"1-to-1 notify (request in, callback out, answer in): {us:.1f} us CPU each")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        rig.rounds(args.count // 7)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
