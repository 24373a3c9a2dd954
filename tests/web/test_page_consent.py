"""
Consent on the hub's status page, in memory (L{Clock}, L{StubTreq}): the
pending list with what the hub knows, Allow once / Deny / Always allow,
the bounded wait, limits per origin, the remembered-origins file (mode 0600,
re-read when changed, ignored when others may write it), the desktop
notification, and the protections of C{POST /status/consent} (loopback,
Host, key, POST only, JSON, same origin, page token).
"""

from __future__ import annotations

import json
import os
import stat
import xmlrpc.client

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.defer import TimeoutError
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.resource import Resource
from zope.interface.verify import verifyObject

from samptwist.hub.core import Hub
from samptwist.hub.status import StatusMonitor, StatusResource
from samptwist.hub.web.consent import ConsentRequest, IConsentPolicy
from samptwist.hub.web.pageconsent import StatusPageConsent
from samptwist.hub.web.remembered import RememberedOrigins, config_dir, default_path
from samptwist.statuspage import status_key

from .harness import Web, now, pending

ORIGIN = "http://127.0.0.1:8000"


def ask(name="page", origin=ORIGIN, referer=None):
    return ConsentRequest(name=name, origin=origin, referer=referer)


@pytest.fixture
def store(tmp_path):
    return RememberedOrigins(tmp_path / "cfg" / "samptwist" / "web-origins.json")


def make(store, clock=None, **kw):
    spawned = []
    consent = StatusPageConsent(
        clock or Clock(), remembered=store, notifier=kw.pop("notifier", "/bin/notify-send"),
        spawn=lambda proto, exe, argv, env: spawned.append(argv), **kw)
    return consent, spawned


def test_interface_and_default_paths(monkeypatch, tmp_path):
    consent = StatusPageConsent(Clock(), notifier=None)
    assert verifyObject(IConsentPolicy, consent)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "samptwist"
    assert default_path() == tmp_path / "xdg" / "samptwist" / "web-origins.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    assert default_path() == tmp_path.parent / default_path().relative_to(tmp_path.parent)
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert str(default_path()).endswith(".config/samptwist/web-origins.json")


def test_pending_view_and_allow_once(store):
    clock = Clock()
    consent, spawned = make(store, clock, timeout=100)
    changes = []
    consent.observe(lambda: changes.append(len(consent.pending())))
    d = consent.request(ask("My page", referer="http://127.0.0.1:8000/p.html"))
    assert pending(d)
    clock.advance(30)
    [view] = consent.pending()
    assert view == {
        "id": "1", "name": "My page", "origin": ORIGIN, "origin_known": True,
        "referer": "http://127.0.0.1:8000/p.html", "referer_mismatch": False,
        "peer": "127.0.0.1", "time_left": 70.0, "can_remember": True,
    }
    # The desktop notification names the origin and where to answer.
    [argv] = spawned
    assert argv[0] == "/bin/notify-send" and ORIGIN in argv[-1] and "status page" in argv[-1]
    assert consent.answer("1", True) is True
    assert now(d) is True
    assert consent.pending() == [] and changes == [1, 0]
    assert consent.answer("1", True) is False  # answered already
    assert store.entries() == []  # allow once remembers nothing


def test_deny_timeout_and_withdraw(store):
    clock = Clock()
    consent, _ = make(store, clock, timeout=10)
    denied = consent.request(ask())
    consent.answer("1", False)
    assert now(denied) is False
    late = consent.request(ask())
    clock.advance(10)
    with pytest.raises(TimeoutError):
        now(late)  # the profile turns this into "no answer in time"
    assert consent.pending() == []
    gone = consent.request(ask())
    gone.addErrback(lambda f: None)
    gone.cancel()  # the page hung up
    assert consent.pending() == [] and not clock.getDelayedCalls()


def test_limits_several_pending_and_rate(store):
    clock = Clock()
    consent, _ = make(store, clock, max_pending=4, max_per_origin=2, rate_limit=3,
                      rate_window=60)
    a = [consent.request(ask(origin=ORIGIN)) for _ in range(2)]
    assert all(pending(d) for d in a)
    assert now(consent.request(ask(origin=ORIGIN))) is False  # 2 of this origin wait
    b = consent.request(ask(origin="https://other.example"))
    c = consent.request(ask(origin=None))  # unknown origins share one budget
    assert pending(b) and pending(c)
    assert len(consent.pending()) == 4
    assert now(consent.request(ask(origin="https://third.example"))) is False  # full
    for view in consent.pending():
        consent.answer(view["id"], False)
    # ORIGIN asked 3 times within the minute: the 4th is refused at once ...
    assert now(consent.request(ask(origin=ORIGIN))) is False
    clock.advance(61)
    late = consent.request(ask(origin=ORIGIN))  # ... and welcome again later
    assert pending(late)
    consent.close()
    assert now(late) is False


def test_always_allow_is_remembered_in_a_private_file(store):
    consent, _ = make(store)
    d = consent.request(ask("Aladin Lite"))
    consent.answer("1", True, remember=True)
    assert now(d) is True
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    [entry] = consent.origins()
    assert entry["origin"] == ORIGIN and entry["name"] == "Aladin Lite"
    # A new hub (new objects) reads the same file: no question asked.
    again, spawned = make(RememberedOrigins(store.path))
    assert now(again.request(ask())) is True and spawned == []
    assert now(again.request(ask(origin="http://127.0.0.1:8000/"))) is True  # normalized
    # Revoking takes effect at once.
    assert again.forget(ORIGIN) is True
    assert pending(again.request(ask()))
    assert again.forget(ORIGIN) is False
    assert json.loads(store.path.read_text())["origins"] == {}


def test_unknown_origin_cannot_be_remembered(store):
    consent, _ = make(store)
    d = consent.request(ask(origin="null"))
    assert consent.pending()[0]["can_remember"] is False
    with pytest.raises(ValueError):
        consent.answer("1", True, remember=True)
    assert pending(d)  # still waiting for a proper answer
    consent.answer("1", False)


def test_remembered_file_reread_and_distrusted(store):
    store.add("https://a.example")
    other = RememberedOrigins(store.path)
    assert "https://a.example" in other
    store.remove("https://a.example")  # e.g. `samptwist web forget` with the hub down
    assert "https://a.example" not in other
    store.add("https://b.example")
    os.chmod(store.path, 0o666)  # anyone could have added origins: ignore the file
    assert "https://b.example" not in RememberedOrigins(store.path)
    store.path.write_text("{not json")
    os.chmod(store.path, 0o600)
    assert RememberedOrigins(store.path).entries() == []
    with pytest.raises(ValueError):
        store.add("file:///etc")


def test_no_notifier_logs_where_to_answer(store):
    consent, spawned = make(store, notifier=None)
    consent.answer_at = "http://127.0.0.1:1234/status?key=k"
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        consent.request(ask("logged page"))
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert spawned == []
    text = "\n".join(formatEvent(e) for e in events)
    assert "http://127.0.0.1:1234/status?key=k" in text
    assert "samptwist web allow 1" in text and "'logged page'" in text
    consent.close()


def test_register_waits_for_the_page_then_registers(store):
    web = Web(consent=make(store)[0])
    d = web.call_d("register", {"samp.name": "waiting page"},
                   headers={"Referer": ORIGIN + "/index.html"})
    web.flush()
    assert pending(d)
    [view] = web.service.consent.pending()
    assert view["origin"] == ORIGIN and view["referer"] == ORIGIN + "/index.html"
    web.service.consent.answer(view["id"], True)
    web.flush()
    assert now(d)["samp.private-key"]


def test_register_times_out_with_a_clear_fault(store):
    web = Web(consent=make(store)[0], consent_timeout=30)
    web.service.consent.reactor = web.clock
    assert web.service.consent.timeout == 30
    d = web.call_d("register", {"samp.name": "nobody home"})
    web.flush()
    web.clock.advance(30)
    web.flush()
    with pytest.raises(xmlrpc.client.Fault) as fault:
        now(d)
    assert "no answer in time" in fault.value.faultString
    assert web.hub.clients == [web.hub.hub_client]


# -- the status page's consent endpoint ---------------------------------------

SECRET = "s3cret"
KEY = status_key(SECRET)
BASE = "http://127.0.0.1:4000/status/"


class Page:
    """A status site with page consent, in memory."""

    def __init__(self, consent=None):
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.monitor = StatusMonitor(self.hub, self.clock)
        if consent is not None:
            self.monitor.attach_consent(consent)
        self.monitor.startService()
        root = Resource()
        root.putChild(b"status", StatusResource(self.monitor, SECRET))
        self.stub = StubTreq(root)

    def fetch(self, method, path, body=None, headers=None):
        d = self.stub.request(method, BASE + path, data=body, headers=headers or {})
        d.addCallback(lambda r: self.stub.content(r).addCallback(lambda b: (r.code, b)))
        self.stub.flush()
        return now(d)

    def token(self):
        code, body = self.fetch("GET", f"state.json?key={KEY}")
        assert code == 200
        return json.loads(body)["token"]

    def post(self, data, token=None, key=KEY, ctype="application/json", extra=None):
        headers = {"Content-Type": ctype, **(extra or {})}
        if token:
            headers["X-SAMP-Status-Token"] = token
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        return self.fetch("POST", f"consent?key={key}", body, headers)


def test_state_shows_pending_and_origins(store):
    consent, _ = make(store)
    page = Page(consent)
    consent.request(ask("shown page"))
    state = json.loads(page.fetch("GET", f"state.json?key={KEY}")[1])
    assert state["consent"]["asks"] is True
    assert state["consent"]["pending"][0]["name"] == "shown page"
    assert "status page" in state["consent"]["mode"]
    assert len(state["token"]) >= 32
    consent.close()


def test_consent_endpoint_answers(store):
    consent, _ = make(store)
    page = Page(consent)
    d = consent.request(ask())
    token = page.token()
    assert page.post({"action": "always", "id": "1"}, token) == (200, b'{"ok": true}')
    assert now(d) is True and ORIGIN in store
    code, body = page.post({"action": "allow", "id": "1"}, token)
    assert code == 404 and b"not waiting" in body
    assert page.post({"action": "forget", "origin": ORIGIN}, token)[0] == 200
    assert ORIGIN not in store
    assert page.post({"action": "forget", "origin": ORIGIN}, token)[0] == 404
    assert page.post({"action": "maybe", "id": "1"}, token)[0] == 400
    assert page.post(b"not json", token)[0] == 400
    assert page.post({"id": "1"}, token)[0] == 400
    assert page.post(b"{" + b" " * 5000 + b"}", token)[0] == 413


def test_consent_endpoint_refuses_forgeries(store):
    consent, _ = make(store)
    page = Page(consent)
    d = consent.request(ask())
    token = page.token()
    forged = {"action": "allow", "id": "1"}
    assert page.post(forged, token, key="wrong")[0] == 403
    assert page.post(forged)[0] == 403  # no page token
    assert page.post(forged, "made-up-token")[0] == 403
    assert page.post(forged, token, ctype="text/plain")[0] == 415  # a "simple" CORS request
    assert page.post(forged, token, ctype="application/x-www-form-urlencoded")[0] == 415
    evil = {"Origin": "http://evil.example"}
    assert page.post(forged, token, extra=evil)[0] == 403
    assert page.post(forged, token, extra={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert page.post(forged, token, extra={"Host": "evil.example:4000"})[0] == 403
    code, _ = page.fetch("GET", f"consent?key={KEY}")
    assert code == 405
    assert pending(d) and consent.pending()  # nothing was answered
    same = {"Origin": "http://127.0.0.1:4000", "Sec-Fetch-Site": "same-origin"}
    assert page.post(forged, token, extra=same)[0] == 200
    assert now(d) is True


def test_consent_endpoint_without_page_consent():
    page = Page()
    code, body = page.post({"action": "allow", "id": "1"}, page.token())
    assert code == 409 and b"does not ask" in body
    state = json.loads(page.fetch("GET", f"state.json?key={KEY}")[1])
    assert state["consent"] == {"asks": False, "mode": "no Web Profile", "pending": [],
                                "origins": []}


@pytest_twisted.ensureDeferred
async def test_desktop_notification_through_a_real_process(tmp_path, store):
    """notify-send is spawned by the reactor (never waited for): a stand-in script
    records its arguments."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    record = tmp_path / "args"
    script = tmp_path / "notify-send"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n")
    script.chmod(0o755)
    consent = StatusPageConsent(reactor, remembered=store, notifier=str(script))
    d = consent.request(ask("notified page", origin="https://sky.example"))
    for _ in range(250):
        if record.exists() and record.read_text().endswith("\n"):
            break
        await deferLater(reactor, 0.02, lambda: None)
    lines = record.read_text().splitlines()
    assert lines[:2] == ["--app-name=SAMP hub", "--expire-time=15000"]
    assert "'https://sky.example'" in lines[-1] and "samptwist web" in lines[-1]
    assert "key=" not in record.read_text()  # never the status page's key
    consent.close()
    assert now(d) is False


def test_twistd_consent_timeout_option():
    from twisted.python import usage

    from samptwist.tap import Options

    options = Options()
    options.parseOptions(["--web-consent", "page", "--web-consent-timeout", "7.5"])
    assert options["web-consent-timeout"] == 7.5
    default = Options()
    default.parseOptions([])
    assert default["web-consent-timeout"] is None  # each policy keeps its own default
    for bad in ("0", "-1", "soon"):
        with pytest.raises(usage.UsageError, match="web-consent-timeout"):
            Options().parseOptions(["--web-consent-timeout", bad])
