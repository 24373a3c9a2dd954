"""
Consent policies (WEB-AUTH-*, notes 12-16): deny, allow-all, origins:, the
terminal prompt (in memory and on a real pseudo-terminal), and how the
profile uses them.
"""

import os
import pty

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer
from zope.interface.verify import verifyObject

from samptwist.hub.web.consent import (
    AllowAll,
    AllowOrigins,
    ConsentRequest,
    DenyAll,
    DialogConsent,
    IConsentPolicy,
    TerminalPrompt,
    consent_from_spec,
)
from samptwist.hub.web.pageconsent import StatusPageConsent

from .harness import Web, now, pending


def ask(name="page", origin="http://127.0.0.1:8000", referer=None):
    return ConsentRequest(name=name, origin=origin, referer=referer)


def test_spec_parsing(monkeypatch):
    """WEB-AUTH-3: --web-consent values; never allow-all by default."""
    assert isinstance(consent_from_spec("deny", None), DenyAll)
    assert isinstance(consent_from_spec("allow-all", None), AllowAll)
    assert isinstance(consent_from_spec("prompt", None), TerminalPrompt)
    policy = consent_from_spec("origins:http://127.0.0.1:8000,https://Example.org/", None)
    assert policy.origins == {"http://127.0.0.1:8000", "https://example.org"}
    monkeypatch.setattr("samptwist.hub.web.consent.stdin_is_terminal", lambda: False)
    assert isinstance(consent_from_spec(None, None), StatusPageConsent)  # no terminal: the page
    assert isinstance(consent_from_spec("page", None), StatusPageConsent)
    monkeypatch.setattr("samptwist.hub.web.consent.stdin_is_terminal", lambda: True)
    assert isinstance(consent_from_spec("auto", None), TerminalPrompt)
    for bad in ("yes", "origins:", "origins:file:///x", "origins:http://a/b"):
        with pytest.raises(ValueError):
            consent_from_spec(bad, None)


def test_policies_provide_interface():
    for policy in (DenyAll(), AllowAll(), AllowOrigins(["http://a:1"]), TerminalPrompt(None)):
        assert verifyObject(IConsentPolicy, policy)


def test_deny_and_allow_all():
    """WEB-AUTH-3, notes 15."""
    assert now(DenyAll().request(ask())) is False
    assert now(AllowAll().request(ask())) is True


@pytest.mark.parametrize("origin,allowed", [
    ("http://127.0.0.1:8000", True), ("http://127.0.0.1:8000/", True),
    ("http://127.0.0.1:8001", False), ("http://localhost:8000", False),
    (None, False), ("null", False), ("garbage", False)])
def test_origins_policy(origin, allowed):
    """Notes 12: only listed origins; missing or null Origin refused."""
    policy = AllowOrigins(["http://127.0.0.1:8000"])
    assert now(policy.request(ask(origin=origin))) is allowed


def test_request_description_marks_unknown_and_escapes():
    """Notes 12, WEB-AUTH-2: unknown origins marked, mismatched Referer flagged, claims
    escaped (no terminal escape sequences)."""
    text = "\n".join(ConsentRequest("evil\x1b[2J\u202e", None, "http://other/").describe())
    assert "UNKNOWN ORIGIN" in text and "\x1b" not in text and "\u202e" not in text
    assert ConsentRequest("a", "http://a:1", "http://b:1/page").referer_mismatch
    assert not ConsentRequest("a", "http://a:1", "http://a:1/page").referer_mismatch


class Terminal:
    """A TerminalPrompt attached to a StringTransport, on a Clock."""

    def __init__(self, **kw):
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = None

        def attach(protocol):
            self.protocol = protocol
            protocol.makeConnection(self.transport)
            return self.transport

        self.prompt = TerminalPrompt(self.clock, attach=attach, **kw)

    def type(self, text):
        self.protocol.dataReceived(text.encode())

    def shown(self):
        return self.transport.value().decode()


def test_prompt_yes_no_one_at_a_time():
    """WEB-AUTH-1, notes 12 and 14: shows name and Origin; questions queued; y/n."""
    t = Terminal()
    first = t.prompt.request(ask("First App"))
    second = t.prompt.request(ask("Second App", origin=None))
    assert "First App" in t.shown() and "http://127.0.0.1:8000" in t.shown()
    assert "Second App" not in t.shown()
    assert pending(first) and pending(second)
    t.type("y\n")
    assert now(first) is True
    assert "Second App" in t.shown() and "UNKNOWN ORIGIN" in t.shown()
    t.type("whatever\n")
    assert now(second) is False


def test_prompt_timeout_refuses():
    """Notes 13: no answer within the timeout -> refused."""
    t = Terminal(timeout=30)
    d = t.prompt.request(ask())
    t.clock.advance(29)
    assert pending(d)
    t.clock.advance(1)
    assert now(d) is False
    assert "refused" in t.shown()


def test_prompt_eof_refuses_now_and_later():
    """Notes 13: stdin closed -> pending and later requests refused, nothing hangs."""
    t = Terminal()
    d = t.prompt.request(ask())
    t.protocol.connectionLost(None)
    assert now(d) is False
    assert now(t.prompt.request(ask())) is False


def test_prompt_bounded_and_withdrawn():
    """A page hanging up withdraws its question; too many waiting are refused."""
    t = Terminal(max_pending=1)
    active = t.prompt.request(ask("A"))
    queued = t.prompt.request(ask("B"))
    assert now(t.prompt.request(ask("C"))) is False
    active.cancel()
    withdrawn = []
    active.addErrback(withdrawn.append)
    assert withdrawn and withdrawn[0].check(CancelledError)
    assert "withdrawn" in t.shown() and "B" in t.shown()
    t.type("yes\n")
    assert now(queued) is True


def test_prompt_without_terminal_refuses(tmp_path):
    """Notes 13: no terminal at all -> clear refusal, no crash, no hang."""
    prompt = TerminalPrompt(Clock(), tty_path=str(tmp_path / "no-such-tty"))
    assert now(prompt.request(ask())) is False
    assert "cannot open the terminal" in prompt._broken
    not_a_tty = tmp_path / "file"
    not_a_tty.write_text("")
    prompt = TerminalPrompt(Clock(), tty_path=str(not_a_tty))
    assert now(prompt.request(ask())) is False


@pytest_twisted.inlineCallbacks
def test_prompt_on_real_pseudo_terminal():
    """WEB-AUTH-1: the prompt reads its answer from a real terminal through the reactor."""
    master, slave = pty.openpty()
    prompt = TerminalPrompt(reactor, tty_path=os.ttyname(slave), timeout=10)
    prompt._foreground = lambda: True  # the test process does not own this pty
    try:
        d = prompt.request(ask("pty page"))
        shown = b""
        while b"[y/N]" not in shown:
            shown += yield deferToReadable(master)
        assert b"pty page" in shown
        os.write(master, b"y\n")
        assert (yield d) is True
    finally:
        prompt.close()
        os.close(master)
        os.close(slave)


def deferToReadable(fd):
    d = Deferred()

    def poll():
        import select
        if select.select([fd], [], [], 0)[0]:
            d.callback(os.read(fd, 4096))
        else:
            reactor.callLater(0.01, poll)

    poll()
    return d


@implementer(IConsentPolicy)
class Manual:
    """A policy answered by the test."""

    timeout = None

    def __init__(self):
        self.asked = []

    def request(self, request):
        d = Deferred()
        self.asked.append((request, d))
        return d

    def describe(self):
        return "manual"

    def close(self):
        pass


def test_profile_consent_flow_and_other_clients_served():
    """WEB-AUTH-1, notes 12/14/16: register waits for consent while other requests are
    served; refusal is a fault with no key and no client entry."""
    policy = Manual()
    web = Web(consent=policy)
    d = web.call_d("register", {"samp.name": "waiting"}, headers={"Referer": "http://x/"})
    assert web.call("ping") == ""  # not blocked while consent is pending
    (request, decision), = policy.asked
    assert request.name == "waiting" and request.origin == "http://127.0.0.1:8000"
    assert request.referer == "http://x/"
    assert pending(d)
    decision.callback(False)
    web.stub.flush()
    failures = []
    d.addErrback(failures.append)
    assert "refused" in failures[0].value.faultString
    assert [c.profile for c in web.hub.clients] == ["hub"]


def test_profile_consent_timeout_and_failure_refuse():
    """Notes 13: a policy that never answers, or fails, refuses (the hub keeps serving)."""
    policy = Manual()
    web = Web(consent=policy, consent_timeout=100)
    d = web.call_d("register", {"samp.name": "slow"})
    web.clock.advance(100)
    web.stub.flush()
    failures = []
    d.addErrback(failures.append)
    assert "refused" in failures[0].value.faultString
    d = web.call_d("register", {"samp.name": "broken"})
    policy.asked[-1][1].errback(RuntimeError("dialog crashed"))
    web.stub.flush()
    d.addErrback(failures.append)
    assert len(failures) == 2
    assert web.call("ping") == ""


def test_deny_policy_registration_fault():
    """Notes 16: --web-consent deny: fault, no client entry."""
    web = Web(consent=DenyAll())
    assert "refused" in web.fault("register", {"samp.name": "x"}).faultString
    assert len(web.hub.clients) == 1


def test_origins_policy_through_profile():
    """Notes 12: origins: policy uses the Origin header exactly as received."""
    web = Web(consent="origins:http://127.0.0.1:8000")
    assert web.call("register", {"samp.name": "ok"})["samp.self-id"]
    fault = web.fault("register", {"samp.name": "foreign"}, origin="http://evil.example")
    assert "refused" in fault.faultString
    assert "refused" in web.fault("register", {"samp.name": "none"}, origin=None).faultString


def test_every_policy_has_a_wait_and_closes():
    """IConsentPolicy.timeout and close(): the Web Profile service relies on
    them instead of duck typing."""

    class Dialog:
        pass

    dialog = DialogConsent(Dialog(), Clock())
    for policy in (DenyAll(), AllowAll(), AllowOrigins(["http://a:1"]), dialog):
        assert policy.timeout is None  # answers without a wait of its own
        policy.close()
    assert TerminalPrompt(None, timeout=7).timeout == 7
    first = dialog.request(ConsentRequest("a", None))
    second = dialog.request(ConsentRequest("b", None))
    answers = []
    first.addCallback(answers.append)
    second.addCallback(answers.append)
    dialog.close()
    assert answers == [False, False]
    assert verifyObject(IConsentPolicy, Manual())
