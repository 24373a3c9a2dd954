"""
The status page's rolling log costs a notification almost nothing while no
page watches (issue 16): the event is kept as it is and written out as a log
entry only when a page asks.
"""

from __future__ import annotations

from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock

from samptwist.hub import events
from samptwist.hub.service import HubService


class Sink:
    def receiveNotification(self, sender, message):
        return succeed(None)

    def close(self):
        pass


def test_notifications_are_written_out_when_the_page_asks(tmp_path):
    reactor = MemoryReactorClock()
    service = HubService(reactor=reactor, lockfile=tmp_path / "lock")
    hub, status = service.hub, service.status
    sender = hub.register("standard")
    receiver = hub.register("standard")
    hub.declare_metadata(receiver.private_key, {"samp.name": "viewer"})
    hub.declare_subscriptions(receiver.private_key, {"x.y": {}})
    hub.set_callback(receiver.private_key, Sink())
    reactor.advance(2.5)
    hub.notify(sender.private_key, receiver.public_id, {"samp.mtype": "x.y"})
    reactor.advance(0)  # hub events reach observers on a later turn
    assert isinstance(status.entries[-1], events.Notified)  # nothing formatted yet
    entry = status.log_entries()[-1]
    assert entry == {
        "kind": "notify", "mtype": "x.y", "sender": sender.public_id,
        "sender_name": sender.name, "recipient": receiver.public_id,
        "recipient_name": "viewer", "t": 2.5,
    }
    assert status.state()["log"][-1] == entry
