"""
Idle connections and the connection cap of the hub's sites
(samptwist.hub.httpguard), on a task.Clock with in-memory transports.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from samptwist.hub.httpguard import ConnectionLimiter, GuardedSite


class Slow(Resource):
    """Answers only when told (a long poll)."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.waiting = []

    def render(self, request):
        self.waiting.append(request)
        return NOT_DONE_YET


class Transport(StringTransport):
    aborted = False

    def abortConnection(self):
        self.aborted = True
        self.loseConnection()


def make(limit=3, timeout=60.0):
    clock = Clock()
    site = GuardedSite(Slow(), reactor=clock, timeout=timeout)
    site.limiter = ConnectionLimiter(limit)
    return clock, site


def connect(site, port=40000):
    addr = IPv4Address("TCP", "127.0.0.1", port)
    channel = site.buildProtocol(addr)
    transport = Transport(peerAddress=addr)
    channel.makeConnection(transport)
    return channel, transport


def lost(channel, transport):
    if transport.disconnecting and channel.transport is not None:
        channel.connectionLost(None)


GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_idle_keepalive_connection_is_closed():
    clock, site = make(timeout=30)
    channel, transport = connect(site)
    clock.advance(29)
    assert not transport.disconnecting
    channel.dataReceived(b"GET / HT")  # activity resets the idle clock
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.aborted


def test_a_request_being_answered_is_never_idle():
    clock, site = make(timeout=30)
    channel, transport = connect(site)
    channel.dataReceived(GET)
    clock.advance(3600)  # a long poll
    assert not transport.disconnecting
    site.resource.waiting[0].finish()
    clock.advance(31)  # idle again once answered
    assert transport.aborted


def test_flood_closes_longest_idle_and_keeps_room():
    clock, site = make(limit=3)
    limiter = site.limiter
    busy, busy_t = connect(site)
    busy.dataReceived(GET)  # being answered: never evicted
    conns = [connect(site, 40001 + i) for i in range(2)]
    conns[0][0].dataReceived(b"G")  # the first idle one was active more recently
    newcomer, newcomer_t = connect(site, 40100)
    assert conns[1][1].aborted and not conns[0][1].aborted and not busy_t.disconnecting
    assert len(limiter) == 3 and limiter.flooded and limiter.evicted == 1
    lost(*conns[1])
    newcomer.dataReceived(GET)
    conns[0][0].dataReceived(GET)
    # every connection is busy: the next one is refused with a readable 503
    refused, refused_t = connect(site, 40200)
    assert refused_t.value().startswith(b"HTTP/1.1 503 ") and refused_t.disconnecting
    assert limiter.refused == 1 and len(limiter) == 3
    lost(refused, refused_t)
    assert len(limiter) == 3


def test_flood_is_logged_once():
    from twisted.logger import globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        clock, site = make(limit=2)
        conns = [connect(site, 41000 + i) for i in range(50)]
        assert sum(t.aborted for _, t in conns) == 48
        for channel, _ in conns:
            channel.connectionLost(None)  # the flooder gives up
        assert len(site.limiter) == 0
    finally:
        globalLogPublisher.removeObserver(events.append)
    texts = [e.get("log_format", "") for e in events if e.get("log_namespace", "").endswith(
        "ConnectionLimiter")]
    assert len([t for t in texts if "connection flood?" in t]) == 1
    assert len([t for t in texts if "flood over" in t]) == 1
    assert not [e for e in events if "Timing out" in e.get("log_format", "")]
