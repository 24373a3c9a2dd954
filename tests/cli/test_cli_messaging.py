"""
``samptwist clients``, ``send``, ``ping`` and ``snoop`` end to end against real
hubs (ours, pyvo.samp's and JSAMP's) with real peers on the other side
(pyvo.samp clients, ``jsamp messagesender``).
"""

from __future__ import annotations

import json

import peers
import pytest

from .conftest import Running, hub_of_kind, ok, one_line_error, run_cli, running

pytestmark = pytest.mark.interop

HUBS = ["samptwist", "pyvo", "jsamp"]


@pytest.mark.parametrize("kind", HUBS)
def test_clients_and_send(kind, tmp_path, make_peer):
    """HUB-LIST-1, DATA-META-1, MT-SUB-6 (clients); HUB-DELIV-3, HUB-WAIT-1,
    MSG-RESP-1..3 (send notify / call and wait / error reply)."""
    with hub_of_kind(kind, tmp_path) as hub:
        echo = make_peer(hub, "echoer", calls={
            "x-test.echo": lambda p: ok({"echo": p.get("v", ""), "n": json.dumps(p.get("n"))}),
            "x-test.fail": {"samp.status": "samp.error",
                            "samp.error": {"samp.errortxt": "refused on purpose"}},
        }, notes=["x-test.note"])

        cp = run_cli(hub.env, "clients")
        assert cp.returncode == 0, peers.describe_run(cp, hub)
        row = next(line for line in cp.stdout.splitlines() if line.startswith("echoer "))
        assert echo.id in row and "echoer peer" in row and "x-test.echo" in row
        cp = run_cli(hub.env, "clients", "--json")
        records = {r["id"]: r for r in json.loads(cp.stdout)}
        assert records[echo.id]["metadata"]["samp.name"] == "echoer"
        assert "x-test.fail" in records[echo.id]["subscriptions"]

        cp = run_cli(hub.env, "send", "x-test.note", "v=hi", 'n=[1,{"a":"b"}]')
        assert cp.returncode == 0, peers.describe_run(cp, hub)
        assert f"notified echoer ({echo.id})" in cp.stdout
        got = echo.inbox.wait_for(lambda m: m[0] == "notify", what="the notification")
        assert got[2] == "x-test.note" and got[3] == {"v": "hi", "n": ["1", {"a": "b"}]}

        cp = run_cli(hub.env, "send", "x-test.echo", "v=back", "n=[2]", "--wait", "20")
        assert cp.returncode == 0, peers.describe_run(cp, hub)
        assert cp.stdout.strip() == f'echoer ({echo.id}): ok {{"echo": "back", "n": "[\\"2\\"]"}}'

        cp = run_cli(hub.env, "send", "x-test.echo", "v=one", "--to", "echoer", "--wait", "20",
                     "--json")
        assert cp.returncode == 0, peers.describe_run(cp, hub)
        assert json.loads(cp.stdout)[echo.id]["samp.result"]["echo"] == "one"

        cp = run_cli(hub.env, "send", "x-test.fail", "--to", echo.id, "--wait", "20")
        line = one_line_error(cp)
        assert "1 of 1 recipients failed: echoer" in line
        assert "error: refused on purpose" in cp.stdout

        line = one_line_error(run_cli(hub.env, "send", "x-test.nobody"))
        assert "no client is subscribed to x-test.nobody" in line


@pytest.mark.parametrize("kind", ["samptwist", "jsamp"])
def test_ping(kind, tmp_path, make_peer):
    """ADM-PING-1, HUB-SELFCLI-3: round trips to the hub client and a peer."""
    with hub_of_kind(kind, tmp_path) as hub:
        peer = make_peer(hub, "pinged")
        cp = run_cli(hub.env, "ping", "--count", "2")
        assert cp.returncode == 0, peers.describe_run(cp, hub)
        lines = cp.stdout.strip().splitlines()
        mine = next(line for line in lines if line.startswith(f"pinged ({peer.id}): "))
        assert mine.count(" ms") == 2
        assert len(lines) >= 2  # the hub's own client answers too
        cp = run_cli(hub.env, "ping", "pinged", "--json")
        assert cp.returncode == 0, peers.describe_run(cp, hub)
        assert list(json.loads(cp.stdout)) == [peer.id]


@pytest.mark.parametrize("kind", ["samptwist", "pyvo"])
def test_snoop_sees_broadcasts_and_hub_events(kind, tmp_path, make_peer):
    """MT-SUB-3 ("*"), ADM-REG-1: the snooper prints jsamp messagesender's
    broadcast and a pyvo client's registration; answers calls with samp.error."""
    peers.require_jsamp()
    with hub_of_kind(kind, tmp_path) as hub:
        with running(hub.env, "snoop") as snoop:
            snoop.wait_line("registered as", stream="err")
            peer = make_peer(hub, "newcomer")
            snoop.wait_line("samp.hub.event.register  from ")
            line = snoop.wait_line('"samp.name": "newcomer"')
            assert "samp.hub.event.metadata" in line
            cp = peers.run_jsamp(hub, "messagesender", "-mtype", "x-test.broadcast",
                                 "-param", "colour", "blue", "-mode", "notify")
            assert cp.returncode == 0, peers.describe_run(cp, hub)
            line = snoop.wait_line("x-test.broadcast")
            assert "notify" in line and '{"colour": "blue"}' in line
            cp = run_cli(hub.env, "send", "x-test.called", "k=v", "--to", "samptwist snoop",
                         "--wait", "20")
            assert "only logs messages" in cp.stdout and cp.returncode == 1
            line = snoop.wait_line("x-test.called")
            assert line.split()[1] == "call" and "from samptwist send" in line
            peer.close()
            snoop.wait_line("samp.hub.event.unregister")
            assert snoop.stop() in (0, -15)
        assert snoop.proc.returncode == 0, snoop.err.snapshot()


def test_snoop_json_count_and_hub_shutdown(tmp_path, make_peer):
    """--json prints whole messages; --count ends it; a hub shutdown ends it with 0."""
    with hub_of_kind("samptwist", tmp_path) as hub:
        with running(hub.env, "snoop", "--json", "--count", "1",
                     "--subscribe", "x-test.*", "--no-hub-events") as snoop:
            snoop.wait_line("registered as", stream="err")
            peer = make_peer(hub, "sender")
            peer.client.notify_all({"samp.mtype": "x-test.one", "samp.params": {"a": ["1"]},
                                    "x-extra": "kept"})
            record = json.loads(snoop.wait_line('"x-test.one"'))
            assert record["params"] == {"a": ["1"]} and record["message"]["x-extra"] == "kept"
            assert record["sender_name"] == "sender" and record["kind"] == "notify"
            assert snoop.wait_exit() == 0
        late = Running(hub.env, "snoop")
        late.wait_line("registered as", stream="err")
    # The hub has stopped (STD-SHUT-1): the snooper ends by itself, status 0.
    try:
        assert late.wait_exit() == 0
        late.wait_line("the hub stopped", stream="err")
    finally:
        late.stop()
