"""
MType restrictions (WEB-SEC-5, ADM-RESV-1), URL translation rules
(WEB-URL-*, notes 17-18), idle expiry, long polls and bounded queues
(WEB-CB-3..6), all on a Clock.
"""

import pytest
from treq.testing import RequestTraversalAgent
from twisted.web.resource import Resource
from twisted.web.util import Redirect

from samptwist._net import translator_host_is_local as is_local_host
from samptwist.errors import SAMPHubError
from samptwist.hub.web.restrict import MessageRestriction

from .harness import Web, now, pending


def msg(mtype, **params):
    return {"samp.mtype": mtype, "samp.params": params}


# -- MType restriction ------------------------------------------------------


def test_restriction_rules():
    """WEB-SEC-5, notes 19: safe list; mostly-harmless "1" allows, "0" blocks."""
    r = MessageRestriction()
    assert r.permits("table.load.votable") and r.permits("samp.app.ping")
    assert r.permits("samp.msg.progress") and not r.permits("samp.hub.event.shutdown")
    assert not r.permits("x-samp.query.by-meta") and not r.permits("script.aladin.send")
    assert r.permits("script.aladin.send", {"samp.mostly-harmless": "1"})
    assert r.permits("script.aladin.send", {"x-samp.mostly-harmless": "1"})
    assert not r.permits("table.load.votable", {"samp.mostly-harmless": "0"})
    assert MessageRestriction(extra=["coverage.*"]).permits("coverage.load.moc.fits")
    assert MessageRestriction(enabled=False).permits("samp.hub.event.shutdown")


def test_web_client_may_not_send_hub_mtypes():
    """ADM-RESV-1, notes 19: web notify/notifyAll/call of samp.hub.* -> fault."""
    web = Web()
    std, rec = web.standard({"*": {}})
    key = web.register()["samp.private-key"]
    before = len(rec.got)
    for method, args in [("notifyAll", (msg("samp.hub.event.shutdown"),)),
                         ("notify", (std.public_id, msg("samp.hub.event.shutdown"))),
                         ("call", (std.public_id, "t", msg("x-samp.query.by-meta"))),
                         ("callAll", ("t", msg("script.aladin.send"))),
                         ("callAndWait", (std.public_id, msg("samp.hub.disconnect"), "1"))]:
        assert "may not send" in web.fault(method, key, *args).faultString
    assert len(rec.got) == before


def test_mostly_harmless_override_and_hidden_subscribers():
    """WEB-SEC-5: "1" lets a recipient opt in, "0" opts out; getSubscribedClients hides
    recipients the page may not send to."""
    web = Web()
    keen, keen_rec = web.standard({"script.aladin.send": {"samp.mostly-harmless": "1"},
                                   "table.load.votable": {"samp.mostly-harmless": "0"}})
    plain, plain_rec = web.standard({"*": {}})
    key = web.register()["samp.private-key"]
    assert web.call("notifyAll", key, msg("script.aladin.send")) == [keen.public_id]
    assert web.call("notifyAll", key, msg("table.load.votable")) == [plain.public_id]
    assert web.call("getSubscribedClients", key, "script.aladin.send") == {
        keen.public_id: {"samp.mostly-harmless": "1"}}
    assert "may not send" in web.fault("notify", key, keen.public_id,
                                       msg("table.load.votable")).faultString


def test_configured_extra_mtypes():
    """WEB-SEC-5 "unless configured": allow_mtypes widens the list."""
    web = Web(allow_mtypes=["x-samp.*"])
    std, rec = web.standard({"*": {}})
    key = web.register()["samp.private-key"]
    assert sorted(web.call("notifyAll", key, msg("x-samp.query.by-meta"))) == sorted(
        ["hub", std.public_id])


# -- URL translator -----------------------------------------------------------


class Upstream(Resource):
    """A fake remote web server for the translator's agent."""

    def __init__(self):
        super().__init__()
        self.putChild(b"table.xml", _Static(b"<VOTABLE/>"))
        self.putChild(b"big", _Static(b"x" * 5000))
        self.putChild(b"to-local", Redirect(b"http://127.0.0.1:9/secret"))
        self.putChild(b"to-public", Redirect(b"http://public.example/table.xml"))


class _Static(Resource):
    isLeaf = True

    def __init__(self, body):
        super().__init__()
        self.body = body

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/xml")
        return self.body


@pytest.fixture
def tweb():
    return Web(agent=RequestTraversalAgent(Upstream()), max_size=1000)


def translate(web, reg, url):
    from urllib.parse import quote

    path = reg["samp.url-translator"].split("/", 3)[3] + quote(url, safe="")
    d = web.request("GET", path, headers={"Origin": "http://127.0.0.1:8000"})
    for _ in range(20):
        web.clock.advance(0)
        web.stub.flush()
    return now(d)


def sent_by_desktop(web, std, reg, url):
    web.hub.notify(std.private_key, reg["samp.self-id"], msg("table.load.votable", url=url))
    web.pull(reg["samp.private-key"])


def test_translator_refuses_unseen_urls(tweb, tmp_path):
    """WEB-URL-3/4, notes 17: file:///etc/passwd, loopback and unseen URLs -> 403."""
    reg = tweb.register(subs={"*": {}})
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/", "http://public.example/table.xml",
                "ftp://public.example/x", "javascript:alert(1)"):
        response, body = translate(tweb, reg, url)
        assert response.code == 403, url
        assert b"refused" in body


def test_translator_fetches_what_a_desktop_client_sent(tweb, tmp_path):
    """WEB-URL-3, WEB-URL-5, notes 3 and 17: after a Standard client sent the URL -> 200
    with content, upstream Content-Type and CORS header."""
    std, _ = tweb.standard()
    reg = tweb.register(subs={"*": {}})
    data = tmp_path / "t.vot"
    data.write_bytes(b"<VOTABLE>local</VOTABLE>")
    for url, expected in ((data.as_uri(), b"<VOTABLE>local</VOTABLE>"),
                          ("http://public.example/table.xml", b"<VOTABLE/>")):
        sent_by_desktop(tweb, std, reg, url)
        response, body = translate(tweb, reg, url)
        assert (response.code, body) == (200, expected)
        assert response.headers.getRawHeaders(b"access-control-allow-origin") == [
            b"http://127.0.0.1:8000"]
    other = tweb.register(subs={"*": {}})
    response, _ = translate(tweb, other, data.as_uri())
    assert response.code == 403  # permitted for the page it was sent to only


def test_url_mentioned_by_web_page_first_stays_blocked(tweb):
    """WEB-SEC-2, notes 17: a URL a web page sent first is never translatable."""
    std, _ = tweb.standard()
    reg = tweb.register(subs={"*": {}})
    url = "file:///etc/hostname"
    tweb.call("notify", reg["samp.private-key"], std.public_id, msg("table.load.votable", url=url))
    sent_by_desktop(tweb, std, reg, url)
    response, body = translate(tweb, reg, url)
    assert response.code == 403 and b"first mentioned by a web page" in body


def test_web_metadata_events_do_not_permit_urls(tweb):
    """WEB-URL-3: a page's own metadata, echoed by the hub, permits nothing."""
    reg = tweb.register(subs={"samp.hub.event.metadata": {}})
    other = tweb.register()
    url = "file:///etc/passwd"
    tweb.call("declareMetadata", other["samp.private-key"], {"samp.icon.url": url})
    tweb.pull(reg["samp.private-key"])
    assert translate(tweb, reg, url)[0].code == 403


def test_translator_redirects_and_limits(tweb):
    """Notes 18: redirects re-checked at every hop; size limit."""
    std, _ = tweb.standard()
    reg = tweb.register(subs={"*": {}})
    for url in ("http://public.example/to-local", "http://public.example/to-public",
                "http://public.example/big"):
        sent_by_desktop(tweb, std, reg, url)
    assert translate(tweb, reg, "http://public.example/to-local")[0].code == 403
    response, body = translate(tweb, reg, "http://public.example/to-public")
    assert (response.code, body) == (200, b"<VOTABLE/>")
    assert translate(tweb, reg, "http://public.example/big")[0].code == 413


def test_translator_bad_requests(tweb):
    """WEB-URL-2/4: wrong token 403; no query 404; a FIFO is never opened blocking."""
    reg = tweb.register()
    response, _ = now(tweb.request("GET", "translator/t-wrong?ref=http%3A%2F%2Fa.b%2F"))
    assert response.code == 403
    path = reg["samp.url-translator"].split("/", 3)[3].split("?")[0]
    assert now(tweb.request("GET", path))[0].code == 404


def test_is_local_host():
    for host in ("localhost", "a.localhost", "127.0.0.5", "[::1]", "10.1.2.3", "192.168.0.1",
                 "169.254.1.1", "0.0.0.0", ""):
        assert is_local_host(host), host
    assert not is_local_host("example.org") and not is_local_host("8.8.8.8")



def test_translator_lets_a_page_that_left_go():
    """
    WEB-URL-2: a page whose connection drops while the translator fetches
    its URL: the fetch is cancelled, nothing is written to the lost request
    and nothing is logged as a failure (the check goes through the public
    notifyFinish(), not request._disconnected).
    """
    from collections import OrderedDict
    from types import SimpleNamespace

    from twisted.internet.defer import Deferred
    from twisted.internet.error import ConnectionDone
    from twisted.internet.task import Clock
    from twisted.logger import LogLevel, capturedLogs
    from twisted.python.failure import Failure
    from twisted.web.server import NOT_DONE_YET
    from twisted.web.test.requesthelper import DummyRequest

    from samptwist.hub.web.translator import Translator
    from samptwist.hub.web.urls import UrlTracker

    fetches = []

    class NeverAnswers:
        def request(self, method, uri, headers=None, body=None):
            fetches.append(Deferred())
            return fetches[-1]

    url = "http://public.example/table.xml"
    state = SimpleNamespace(permitted=OrderedDict({url: None}),
                            client=SimpleNamespace(public_id="c9"))
    translator = Translator(Clock(), UrlTracker(), lambda token: state, agent=NeverAnswers())
    request = DummyRequest([b"t-key"])
    request.args = {b"ref": [url.encode()]}
    with capturedLogs() as events:
        assert translator.render_GET(request) is NOT_DONE_YET
        assert len(fetches) == 1 and not fetches[0].called
        request.processingFailed(Failure(ConnectionDone()))  # the page went away
    assert fetches[0].called  # cancelled
    assert request.written == [] and not request.finished
    assert [e for e in events if e["log_level"] >= LogLevel.warn] == []


# -- long polls, idle expiry, queue bounds ------------------------------------


def test_pull_waits_and_is_released_early():
    """WEB-CB-3, notes 9: nothing queued -> waits; a callback releases it at once."""
    web = Web()
    std, _ = web.standard()
    reg = web.register(subs={"*": {}})
    web.pull(reg["samp.private-key"])  # hub events about itself
    d = web.call_d("pullCallbacks", reg["samp.private-key"], "30")
    web.clock.advance(10)
    assert pending(d)
    assert web.call("ping") == ""  # other requests are served meanwhile
    web.hub.notify(std.private_key, reg["samp.self-id"], msg("x.y"))
    web.flush()
    assert [c["samp.methodName"] for c in now(d)] == ["receiveNotification"]


def test_pull_times_out_empty():
    """WEB-CB-3: after timeout-secs the poll returns []; capped at max_pull_wait."""
    web = Web(max_pull_wait=20)
    key = web.register()["samp.private-key"]
    d = web.call_d("pullCallbacks", key, "1000")
    web.clock.advance(19.9)
    assert pending(d)
    web.clock.advance(0.1)
    web.stub.flush()
    assert now(d) == []


def test_unregister_releases_parked_poll():
    """WEB-CB-6: unregister ends a pending long poll with []."""
    web = Web()
    key = web.register()["samp.private-key"]
    d = web.call_d("pullCallbacks", key, "30")
    web.call("unregister", key)
    web.flush()
    assert now(d) == []


def test_idle_client_ejected_with_disconnect():
    """WEB-CB-5, ADM-DISC-1: no request for idle_timeout -> ejected, told why."""
    web = Web(idle_timeout=300)
    std, rec = web.standard({"samp.hub.event.unregister": {}})
    reg = web.register(subs={"samp.hub.disconnect": {}})
    web.clock.advance(299)
    assert web.call("ping", reg["samp.private-key"]) == ""
    web.call("getRegisteredClients", reg["samp.private-key"])  # activity resets the clock
    web.clock.advance(299)
    assert reg["samp.self-id"] in web.hub.get_registered_clients(std.private_key)
    web.clock.advance(1)
    assert reg["samp.self-id"] not in web.hub.get_registered_clients(std.private_key)
    assert rec.got[-1][1][1]["samp.params"] == {"id": reg["samp.self-id"]}
    (last,) = web.pull(reg["samp.private-key"])  # one last pull learns why
    assert last["samp.params"][1]["samp.mtype"] == "samp.hub.disconnect"
    assert "stopped polling" in last["samp.params"][1]["samp.params"]["reason"]
    assert "private key" in web.fault("pullCallbacks", reg["samp.private-key"], "0").faultString


def test_parked_poll_keeps_client_alive():
    """WEB-CB-5: a client waiting in pullCallbacks is not idle."""
    web = Web(idle_timeout=60, max_pull_wait=600)
    reg = web.register()
    d = web.call_d("pullCallbacks", reg["samp.private-key"], "500")
    web.clock.advance(500)
    web.stub.flush()
    assert now(d) == []
    assert web.hub.client_by_id(reg["samp.self-id"]).registered
    web.clock.advance(60)
    with pytest.raises(SAMPHubError):
        web.hub.client_by_id(reg["samp.self-id"])


def test_queue_overflow_ejects_and_is_reported():
    """WEB-CB-5: a full queue fails the delivery (the sender's call gets an error
    response) and ejects the client with a samp.hub.disconnect reason."""
    web = Web(max_queue=3)
    std, rec = web.standard()
    reg = web.register(subs={"*": {}})
    with pytest.raises(SAMPHubError, match="queue is full.*max-queue"):
        for _ in range(4):  # a directed notification that does not fit is a fault
            web.hub.notify(std.private_key, reg["samp.self-id"], msg("x.y"))
    web.hub.call(std.private_key, reg["samp.self-id"], "tag", msg("x.y"))
    response = rec.got[-1]
    assert response[0] == "receiveResponse"
    assert "queue is full" in response[1][2]["samp.error"]["samp.errortxt"]
    web.clock.advance(0)
    assert reg["samp.self-id"] not in web.hub.get_registered_clients(std.private_key)
    left = web.pull(reg["samp.private-key"])
    assert len(left) == 4 and "overflow" in left[-1]["samp.params"][1]["samp.params"]["reason"]


def test_pages_learn_only_subscriptions_they_may_use():
    """ADM-SUBS-1 (practice), WEB-SEC-5: getSubscriptions and samp.hub.event.subscriptions
    show a page only the entries it may send to; Standard clients see everything."""
    web = Web()
    key = web.register(subs={"samp.hub.event.subscriptions": {}})["samp.private-key"]
    watcher, watcher_rec = web.standard({"samp.hub.event.subscriptions": {}})
    subs = {"table.load.votable": {}, "x-private.thing": {}, "script.aladin.send": {},
            "script.other": {"samp.mostly-harmless": "1"}, "image.*": {}, "*": {}}
    desktop, _ = web.standard(subs)
    web.flush()
    visible = {"table.load.votable": {}, "script.other": {"samp.mostly-harmless": "1"},
               "image.*": {}}
    assert web.call("getSubscriptions", key, desktop.public_id) == visible
    events = [c["samp.params"][1]["samp.params"] for c in web.pull(key)
              if c["samp.methodName"] == "receiveNotification"
              and c["samp.params"][1]["samp.mtype"] == "samp.hub.event.subscriptions"
              and c["samp.params"][1]["samp.params"]["id"] == desktop.public_id]
    assert events[-1]["subscriptions"] == visible
    std_events = [args[-1] for name, args in watcher_rec.got
                  if name == "receiveNotification"
                  and (m := args[-1])["samp.mtype"] == "samp.hub.event.subscriptions"
                  and m["samp.params"]["id"] == desktop.public_id]
    assert std_events[-1]["samp.params"]["subscriptions"] == subs


def test_identity_info_size_is_bounded():
    """A page cannot park megabytes in the consent queue: identity-info is bounded."""
    web = Web()
    fault = web.fault("register", {"samp.name": "page", "x": "y" * 300_000})
    assert "identity-info is too large" in fault.faultString
    assert "max-metadata-bytes" in fault.faultString
    assert web.register()["samp.self-id"]
