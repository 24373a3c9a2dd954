"""
JSAMP (the reference implementation's command-line tools) against our hub.

Each tool runs as a subprocess with the hub's private HOME/lockfile (peers.peer_env)
and a bounded timeout (peers.run_jsamp).
"""

import re
import threading

import peers
import pytest

pytestmark = pytest.mark.usefixtures("jsamp")

# Words that JSAMP's tools print (stack traces, java.util.logging records) when
# something went wrong; calcstorm checks its own results and reports mismatches.
_TROUBLE = re.compile(r"Exception|Error|SEVERE|WARNING|Fault|failed|mismatch", re.IGNORECASE)


def test_hubtester_passes(hub):
    """
    JSAMP's HubTester exercises the whole abstract hub API (registration, metadata,
    subscriptions, all delivery patterns, hub events, msg-id/msg-tag handling, errors).
    It prints nothing on success: the exit status is the verdict.
    HUB-REG-1/2, HUB-META-1, HUB-SUB-1, HUB-DELIV-1/3, HUB-WAIT-1/2, MSG-TAG-1, MSG-ID-1/2.
    """
    cp = peers.run_jsamp(hub, "hubtester")
    assert cp.returncode == 0, "jsamp hubtester failed:\n" + peers.describe_run(cp, hub)


@pytest.mark.parametrize("mode", ["sync", "async", "notify", "random"])
def test_calcstorm(hub, mode):
    """
    Four JSAMP clients fire 50 calculation messages each at one another through the
    hub and check every answer (HUB-CALL-1, HUB-WAIT-1, HUB-DELIV-1, HUB-ORDER-1 under load).
    """
    cp = peers.run_jsamp(hub, "calcstorm", "-nclient", "4", "-nquery", "50", "-mode", mode)
    detail = peers.describe_run(cp, hub)
    assert cp.returncode == 0, f"calcstorm -mode {mode} failed:\n{detail}"
    assert "Elapsed time" in cp.stdout, f"calcstorm -mode {mode} did not finish its run:\n{detail}"
    trouble = [
        line
        for line in (cp.stdout + "\n" + peers.jsamp_stderr(cp)).splitlines()
        if _TROUBLE.search(line)
    ]
    assert not trouble, f"calcstorm -mode {mode} reported problems: {trouble}\n{detail}"


def test_messagesender_pings_hub(hub):
    """samp.app.ping sent synchronously to the hub gets samp.ok (HUB-SELFCLI-3, ADM-PING-1)."""
    cp = peers.run_jsamp(
        hub, "messagesender", "-mtype", "samp.app.ping", "-mode", "sync", "-targetid", "hub"
    )
    detail = peers.describe_run(cp, hub)
    assert cp.returncode == 0, detail
    # MessageSender prints "<id> (<name>)" then the response map for each recipient.
    assert re.search(r"^hub \(", cp.stdout, re.MULTILINE), (
        f"no response from client 'hub':\n{detail}"
    )
    assert re.search(r'"samp\.status"\s*:\s*"samp\.ok"', cp.stdout), (
        f"ping was not answered samp.ok:\n{detail}"
    )
    assert "samp.error" not in cp.stdout, detail


ECHO_MTYPE = "x-samptwist.test.echo"
# MessageSender sends -param values as plain strings.  /usr/bin/jsamp re-splits its
# arguments on spaces (unquoted "$@"), so values must not contain spaces.
SENT_PARAMS = ["-param", "count", "42", "-param", "word", "hello", "-param", "items", "[x,y]"]
EXPECTED_PARAMS = {"count": "42", "word": "hello", "items": "[x,y]"}


@pytest.mark.parametrize("mode", ["notify", "sync", "async"])
def test_messagesender_to_python_receiver(hub, samp_client, mode):
    """
    JSAMP sender -> our hub -> pyvo/astropy receiver bound to a custom MType: the
    message arrives with exactly the params given via -param (MSG-MSG-3), from the
    sender's id, and for calls the receiver's reply gets back to JSAMP (HUB-CALL-1, HUB-WAIT-1).
    """
    receiver = samp_client(name="py-receiver")
    arrived = threading.Event()
    got = {}

    def handler(private_key, sender_id, msg_id, mtype, params, extra):
        got.update(sender=sender_id, msg_id=msg_id, mtype=mtype, params=params)
        if msg_id is not None:
            receiver.reply(
                msg_id, {"samp.status": "samp.ok", "samp.result": {"seen": params["word"]}}
            )
        arrived.set()

    receiver.bind_receive_message(ECHO_MTYPE, handler)
    rid = receiver.get_public_id()

    cp = peers.run_jsamp(
        hub,
        "messagesender",
        "-mtype",
        ECHO_MTYPE,
        *SENT_PARAMS,
        "-mode",
        mode,
        "-targetid",
        rid,
        "-sendername",
        "jsamp-sender",
    )
    detail = peers.describe_run(cp, hub)
    assert cp.returncode == 0, detail
    assert arrived.wait(10), f"receiver {rid} never got the {mode} message\n{detail}"
    assert got["mtype"] == ECHO_MTYPE
    assert got["params"] == EXPECTED_PARAMS, detail
    assert got["sender"] not in ("", rid, "hub"), got
    if mode == "notify":
        assert got["msg_id"] is None
    else:
        assert isinstance(got["msg_id"], str) and got["msg_id"], got
        assert re.search(r'"samp\.status"\s*:\s*"samp\.ok"', cp.stdout), (
            f"reply did not reach JSAMP:\n{detail}"
        )
        assert '"seen"' in cp.stdout and "hello" in cp.stdout, (
            f"reply result lost on the way:\n{detail}"
        )
