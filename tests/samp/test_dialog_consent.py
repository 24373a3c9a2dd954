"""
DialogConsent: the consent policy that asks a pyvo-style WebProfileDialog
(SAMPHubServer's web_profile_dialog), driven here with a task.Clock.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from samptwist.hub.blocking import WebProfileDialog
from samptwist.hub.web.consent import ConsentRequest, DialogConsent, IConsentPolicy


class Recording(WebProfileDialog):
    def __init__(self):
        self.shown = []

    def show_dialog(self, samp_name, details, client, origin):
        self.shown.append((samp_name, details, client, origin))


def ask(name="Page", origin="http://a.example"):
    return ConsentRequest(name=name, origin=origin, peer="127.0.0.1",
                          identity={"samp.name": name})


def outcome(d):
    box = []
    d.addBoth(box.append)
    return box


def test_provides_the_interface_and_sets_the_queues():
    dialog = Recording()
    policy = DialogConsent(dialog, Clock())
    assert verifyObject(IConsentPolicy, policy)
    assert dialog.queue_request.empty() and dialog.queue_result.empty()
    assert "Recording" in policy.describe()


def test_consent_and_reject():
    clock, dialog = Clock(), Recording()
    policy = DialogConsent(dialog, clock, interval=0.1)
    first = outcome(policy.request(ask("One")))
    dialog.handle_queue()
    assert dialog.shown == [("One", {"samp.name": "One"}, ("127.0.0.1", 0), "http://a.example")]
    clock.advance(0.1)
    assert first == []  # no answer yet: still polling, nothing blocked
    dialog.consent()
    clock.advance(0.1)
    assert first == [True]
    second = outcome(policy.request(ask("Two", origin=None)))
    dialog.handle_queue()
    assert dialog.shown[-1][0] == "Two" and dialog.shown[-1][3] == ""
    dialog.reject()
    clock.advance(0.1)
    assert second == [False]
    assert not clock.getDelayedCalls()  # polling stops when nothing is asked


def test_requests_are_asked_one_at_a_time_in_order():
    clock, dialog = Clock(), Recording()
    policy = DialogConsent(dialog, clock, interval=0.1)
    a = outcome(policy.request(ask("A")))
    b = outcome(policy.request(ask("B")))
    dialog.handle_queue()
    dialog.handle_queue()  # B is not offered before A is answered
    assert [s[0] for s in dialog.shown] == ["A"]
    dialog.reject()
    clock.advance(0.1)
    dialog.handle_queue()
    assert [s[0] for s in dialog.shown] == ["A", "B"]
    dialog.consent()
    clock.advance(0.1)
    assert (a, b) == ([False], [True])


def test_cancel_before_the_dialog_saw_it():
    clock, dialog = Clock(), Recording()
    policy = DialogConsent(dialog, clock, interval=0.1)
    d = policy.request(ask("Gone"))
    result = outcome(d)
    d.cancel()
    assert result[0].check(CancelledError)
    clock.advance(0)
    dialog.handle_queue()
    assert dialog.shown == []  # taken back: never shown
    assert not clock.getDelayedCalls()


def test_cancel_after_the_dialog_saw_it_drops_the_late_answer():
    clock, dialog = Clock(), Recording()
    policy = DialogConsent(dialog, clock, interval=0.1)
    d = policy.request(ask("Slow"))
    outcome(d).clear()
    dialog.handle_queue()
    d.cancel()
    nxt = outcome(policy.request(ask("Next")))
    dialog.consent()  # the user answers the withdrawn question
    clock.advance(0.1)
    assert nxt == []  # that answer was not taken for Next
    dialog.handle_queue()
    assert [s[0] for s in dialog.shown] == ["Slow", "Next"]
    dialog.reject()
    clock.advance(0.1)
    assert nxt == [False]


def test_handle_queue_before_the_hub_set_the_queues():
    Recording().handle_queue()  # nothing to show, no error
