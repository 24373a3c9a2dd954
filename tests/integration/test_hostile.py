"""
Hostile and malformed input to the Standard Profile (issue 8): every case gets
a clear fault or HTTP error, and the hub keeps serving everyone else.
"""

import socket
import xmlrpc.client

import pytest
import pytest_twisted
import treq
from twisted.web.xmlrpc import Fault

from samptwist.hub.service import HubService

from .hubtools import Participant


def rpc(method, *params):
    return xmlrpc.client.dumps(params, method).encode()


async def post(url, body, content_type="text/xml", method="POST"):
    headers = {"Content-Type": content_type} if content_type else {}
    response = await treq.request(method, url, data=body, headers=headers)
    return response.code, await response.content()


def fault_text(body):
    with pytest.raises(xmlrpc.client.Fault) as e:
        xmlrpc.client.loads(body)
    return e.value.faultString


async def still_works(hub):
    """A normal round trip after the abuse: register, ping the hub, unregister."""
    c = await Participant(hub.url).register(hub.secret, callable=False)
    r = await c.call("callAndWait", "hub", {"samp.mtype": "samp.app.ping"}, "5")
    assert r["samp.status"] == "samp.ok"
    await c.call("unregister")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<methodCall><methodName>samp.hub.register</methodName><params><param><value>&lol3;</value>
</param></params></methodCall>"""

HIDDEN_DTD = (b"<?xml version='1.0'?><!-- <methodCall> -->" + b" " * 70000
              + BILLION_LAUGHS[BILLION_LAUGHS.index(b"<!DOCTYPE"):])

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>samp.hub.register</methodName><params><param><value>&xxe;</value>
</param></params></methodCall>"""


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"", "deserialize"),
        (b"hello there", "deserialize"),
        (b"<methodCall><methodName>samp.hub.ping", "deserialize"),
        (BILLION_LAUGHS, "DTDs"),
        (EXTERNAL_ENTITY, "DTDs"),
        (HIDDEN_DTD, "DTDs"),
        (b"<?xml version='1.0'?><methodCall><methodName>samp.hub.register</methodName>"
         b"<params><param><value>\xff\xfe</value></param></params></methodCall>",
         "deserialize"),
        (rpc("samp.hub.register", 42), "wrong samp.secret"),
        (rpc("samp.hub.register"), "takes 1 argument(s), got 0"),
        (rpc("samp.hub.nosuch", "x"), "no such method"),
        (rpc("samp.hub.register", "a", "b"), "takes 1 argument(s), got 2"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_bodies(hub, body, expected):
    code, answer = await post(hub.url, body)
    assert code == 200
    assert expected in fault_text(answer)
    await still_works(hub)


@pytest_twisted.ensureDeferred
async def test_deep_nesting(hub, clients):
    """Deep nesting is refused by the SAMP value check, not by a crash."""
    c = await clients(callable=False)
    depth = 5000
    deep = "<value><array><data>" * depth + "<value>x</value>" + "</data></array></value>" * depth
    body = (
        "<?xml version='1.0'?><methodCall><methodName>samp.hub.declareMetadata</methodName>"
        f"<params><param><value>{c.key}</value></param><param><value><struct><member>"
        f"<name>a</name>{deep}</member></struct></value></param></params>"
        "</methodCall>"
    ).encode()
    code, answer = await post(hub.url, body)
    assert "nested more than" in fault_text(answer)
    await still_works(hub)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "image/png"])
@pytest_twisted.ensureDeferred
async def test_wrong_content_type(hub, content_type):
    code, answer = await post(hub.url, rpc("samp.hub.ping"), content_type)
    assert code == 415 and b"text/xml" in answer
    code, answer = await post(hub.url, rpc("samp.hub.ping"), content_type=None)
    assert code == 200  # a missing Content-Type is tolerated


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest_twisted.ensureDeferred
async def test_other_verbs(hub, method):
    code, _ = await post(hub.url, b"", method=method)
    assert code in (405, 501)  # 501 for verbs twisted.web does not know


@pytest_twisted.ensureDeferred
async def test_body_size_limit(tmp_path):
    """Bodies over the limit get 413 before they are buffered; smaller ones pass."""
    from twisted.internet import reactor

    service = HubService(reactor, lockfile=tmp_path / "lock", max_request_size=4096)
    service.startService()
    await service.ready
    try:
        big = rpc("samp.hub.register", "x" * 10_000)
        code, answer = await post(service.url, big)
        assert code == 413 and b"4096 bytes" in answer
        code, answer = await post(service.url, rpc("samp.hub.register", "x" * 100))
        assert code == 200 and "wrong samp.secret" in fault_text(answer)
        await still_works(service)
    finally:
        await service.stopService()


WRONG_TYPES = [1, 1.5, True, ["l"], {"m": "x"}, "é"]

METHOD_ARGS = {
    "declareMetadata": [{"samp.name": "x"}],
    "getMetadata": ["hub"],
    "declareSubscriptions": [{"a.b": {}}],
    "getSubscriptions": ["hub"],
    "getSubscribedClients": ["samp.app.ping"],
    "notify": ["hub", {"samp.mtype": "samp.app.ping"}],
    "notifyAll": [{"samp.mtype": "samp.app.ping"}],
    "call": ["hub", "tag", {"samp.mtype": "samp.app.ping"}],
    "callAll": ["tag", {"samp.mtype": "samp.app.ping"}],
    "callAndWait": ["hub", {"samp.mtype": "samp.app.ping"}, "5"],
    "reply": ["m-none", {"samp.status": "samp.ok", "samp.result": {}}],
    "setXmlrpcCallback": ["http://127.0.0.1:9/"],
}


@pytest_twisted.ensureDeferred
async def test_wrong_types_everywhere(hub, clients):
    """Wrong types at every argument position of every method: a fault, never a crash."""
    c = await clients(callable=False)
    checked = 0
    for method, args in METHOD_ARGS.items():
        for position in range(len(args)):
            for bad in WRONG_TYPES:
                if type(bad) is type(args[position]) and bad != "é":
                    continue
                wrong = list(args)
                wrong[position] = bad
                try:
                    await c.call(method, *wrong)
                except Fault as f:
                    assert f.faultString and f.faultString != "error", (method, position, bad)
                    checked += 1
                else:
                    if method == "callAndWait" and position == 2 and type(bad) is int:
                        continue  # an XML-RPC <int> timeout is tolerated (README)
                    raise AssertionError(f"{method} accepted {bad!r} at {position}")
    assert checked > 60
    await still_works(hub)


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3:8000/", "http://192.168.0.1/", "http://example.com/x", "ftp://127.0.0.1/",
     "not a url", "http://127.0.0.1:99999/",
     # a name that only starts with this machine's name is someone else's
     f"http://{socket.gethostname()}.example.invalid:8000/"],
)
@pytest_twisted.ensureDeferred
async def test_non_local_callbacks_refused(hub, clients, url):
    c = await clients(callable=False)
    with pytest.raises(Fault) as e:
        await c.call("setXmlrpcCallback", url)
    assert "callback URL" in e.value.faultString


@pytest_twisted.ensureDeferred
async def test_local_callback_names_accepted(hub, clients):
    c = await clients(callable=False)
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "[::1]", socket.gethostname()):
        assert await c.call("setXmlrpcCallback", f"http://{host}:9/") == ""


@pytest_twisted.ensureDeferred
async def test_replies_to_others_messages(hub, clients):
    """Bogus msg-ids and replies to calls addressed to someone else are refused."""
    r = await clients(subs={"a.b": {}})
    intruder = await clients(subs={"a.b": {}})
    sender = await clients()
    msg_id = await sender.call("call", r.id, "t", {"samp.mtype": "a.b"})
    ok = {"samp.status": "samp.ok", "samp.result": {}}
    for who, mid in ((intruder, msg_id), (r, msg_id + "x"), (r, "")):
        with pytest.raises(Fault, match="no call"):
            await who.call("reply", mid, ok)
    await r.call("reply", msg_id, ok)
    await sender.recorder.wait_for(lambda c: c[0] == "receiveResponse")


@pytest_twisted.ensureDeferred
async def test_secrets_never_logged(tmp_path):
    """Keys and the secret never appear in the log, even at debug level."""
    from twisted.internet import reactor
    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    from samptwist._log import get_level, set_level

    events = []
    old = get_level()
    set_level(LogLevel.debug)
    globalLogPublisher.addObserver(events.append)
    try:
        service = HubService(reactor, lockfile=tmp_path / "lock")
        service.startService()
        await service.ready
        a = await Participant(service.url).register(service.secret, subs={"a.b": {}}, name="A")
        b = await Participant(service.url).register(service.secret)
        await b.call("notifyAll", {"samp.mtype": "a.b", "samp.params": {"k": "v"}})
        await a.recorder.wait_for(lambda c: c[0] == "receiveNotification" and
                                  c[-1]["samp.mtype"] == "a.b")
        await Participant(service.url).hub.callRemote("samp.hub.register", "bad").addErrback(
            lambda _: None)
        await a.close()
        await b.close()
        await service.stopService()
    finally:
        globalLogPublisher.removeObserver(events.append)
        set_level(old)
    text = "\n".join(formatEvent(e) + repr(e) for e in events)
    assert "notify a.b" in text  # debug traffic logging is on
    for secret in (service.secret, a.key, b.key):
        assert secret not in text




@pytest.mark.parametrize(
    "body, content_type, text",
    [
        (rpc("samp.hub.ping"), "application/json", "non-XML request"),
        (EXTERNAL_ENTITY, "text/xml", "DTD or entity"),
        (rpc("samp.hub.register", "wrong"), "text/xml", "wrong secret"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_refusals_logged_once(hub, body, content_type, text):
    """Each refusal is logged exactly once, at warn level."""
    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        await post(hub.url, body, content_type)
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [formatEvent(e) for e in events if e.get("log_level") == LogLevel.warn]
    assert len(warnings) == 1 and text in warnings[0], warnings
