"""
The client subcommands run in this process: each one's C{run(reactor,
args, out)} is given a L{io.StringIO} for its output, against our hub
(tests/conftest.py's C{inprocess_hub}) on loopback, with in-process
L{SAMPClient} peers.  The end-to-end tests (the command as a subprocess,
against our, pyvo's and JSAMP's hubs) are in the other modules.
"""

from __future__ import annotations

import io
import json
from typing import Any, List, Optional

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport

from samptwist.cli import SUBCOMMANDS, build_parser, send
from samptwist.cli import hub as hub_command
from samptwist.cli._common import CLIError, error_line
from samptwist.client import SAMPClient, error
from tests.client.hubs import wait_until

#: seconds any single step may take before the test fails
STEP = 30.0


class Outcome:
    """
    What a subcommand did: its exit status and output, or the one-line error
    the C{samptwist} command would print.
    """

    def __init__(self, code: Optional[int], out: str, error: Optional[str]) -> None:
        self.code = code
        self.out = out
        self.error = error

    def __repr__(self) -> str:
        return f"Outcome(code={self.code!r}, out={self.out!r}, error={self.error!r})"


def start(*argv: str) -> tuple[Deferred, io.StringIO]:
    args = build_parser().parse_args(list(argv))
    out = io.StringIO()
    d = Deferred.fromCoroutine(args.module.run(reactor, args, out))
    d.addTimeout(STEP, reactor)
    return d, out


async def cli(*argv: str) -> Outcome:
    d, out = start(*argv)
    try:
        code = await d
    except Exception as e:
        return Outcome(None, out.getvalue(), error_line(e))
    return Outcome(code, out.getvalue(), None)


@pytest.fixture
def peers(inprocess_hub, make_client):
    """
    Factory of connected SAMPClient peers of our in-process hub
    (tests/conftest.py): C{peers(name, x_test_echo=handler)} handles
    C{x.test.echo} with C{handler}.
    """

    async def make(name: str, **handlers: Any) -> SAMPClient:
        client = await make_client(name, connect=False, description=f"{name} peer")
        for mtype, handler in handlers.items():
            client.add_handler(mtype.replace("_", "."), handler)
        await client.connect().addTimeout(STEP, reactor)
        return client

    return make


@pytest_twisted.ensureDeferred
async def test_clients_table_json_and_status_url(peers, lockfile):
    echo = await peers("echoer", x_test_echo=lambda m: {"echo": m.params.get("v", "")})
    result = await cli("clients", "--lockfile", str(lockfile))
    assert result.code == 0, result
    row = next(line for line in result.out.splitlines() if line.startswith("echoer "))
    assert echo.self_id in row and "echoer peer" in row and "x.test.echo" in row
    result = await cli("clients", "--lockfile", str(lockfile), "--json")
    records = {r["id"]: r for r in json.loads(result.out)}
    assert records[echo.self_id]["metadata"]["samp.name"] == "echoer"
    result = await cli("clients", "--lockfile", str(lockfile), "--status-url")
    assert result.code == 0 and result.out.startswith("http://127.0.0.1:"), result


@pytest_twisted.ensureDeferred
async def test_send_notify_call_and_error(peers, lockfile, inprocess_hub):
    notes: List[Any] = []
    sender_there: List[bool] = []

    def note(m: Any) -> None:
        notes.append(m.params)
        # Astropy's and pyvo's hubs drop a notification whose sender has left
        # before their delivery thread ran: is it still there a while later?
        reactor.callLater(send.NOTIFY_LINGER / 2, lambda: sender_there.append(
            inprocess_hub.hub.find(m.sender_id) is not None))

    echo = await peers(
        "echoer",
        x_test_echo=lambda m: {"echo": m.params.get("v", "")},
        x_test_fail=lambda m: error("refused on purpose"),
        x_test_note=note,
    )
    lock = ("--lockfile", str(lockfile))
    result = await cli("send", "x.test.note", "v=hi", "n=[1]", *lock)
    assert result.code == 0 and result.out == f"notified echoer ({echo.self_id})\n", result
    await echo.tracker.when(lambda t: notes)  # type: ignore[union-attr]
    assert notes == [{"v": "hi", "n": ["1"]}]
    await wait_until(lambda: sender_there, 10, "the check of the sender")
    assert sender_there == [True]  # still registered a while after it was delivered

    result = await cli("send", "x.test.echo", "v=back", "--wait", "20", *lock)
    assert result.code == 0, result
    assert result.out == f'echoer ({echo.self_id}): ok {{"echo": "back"}}\n'

    result = await cli("send", "x.test.echo", "v=one", "--to", "echoer", "--wait", "20",
                       "--json", *lock)
    assert json.loads(result.out)[echo.self_id]["samp.result"]["echo"] == "one"

    result = await cli("send", "x.test.fail", "--to", echo.self_id, "--wait", "20", *lock)
    assert result.error == "1 of 1 recipients failed: echoer", result
    assert "error: refused on purpose" in result.out

    result = await cli("send", "x.test.nobody", *lock)
    assert result.error == "no client is subscribed to x.test.nobody" and result.out == ""


@pytest_twisted.ensureDeferred
async def test_ping(peers, lockfile):
    peer = await peers("pinged")
    result = await cli("ping", "--count", "2", "--lockfile", str(lockfile))
    assert result.code == 0, result
    mine = next(line for line in result.out.splitlines()
                if line.startswith(f"pinged ({peer.self_id}): "))
    assert mine.count(" ms") == 2
    result = await cli("ping", "pinged", "--json", "--lockfile", str(lockfile))
    assert list(json.loads(result.out)) == [peer.self_id]


@pytest_twisted.ensureDeferred
async def test_load_a_votable(peers, lockfile, tmp_path):
    got: List[Any] = []
    viewer = await peers("viewer", table_load_votable=lambda m: got.append(m.params) or {})
    table = tmp_path / "t.vot"
    table.write_text("<?xml version='1.0'?><VOTABLE version='1.4'><RESOURCE><TABLE>"
                     "<FIELD name='a' datatype='int'/><DATA><TABLEDATA><TR><TD>1</TD></TR>"
                     "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n")
    result = await cli("load", str(table), "--to", "viewer", "--lockfile", str(lockfile))
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0].startswith(f"{table}: ") and lines[0].endswith("-> table.load.votable")
    assert lines[1].startswith(f"  viewer ({viewer.self_id}): ")
    assert got and got[0]["url"] == table.as_uri()


@pytest_twisted.ensureDeferred
async def test_snoop_prints_to_its_stream(peers, lockfile):
    sender = await peers("sender")
    d, out = start("snoop", "--json", "--count", "2", "--no-hub-events",
                   "--lockfile", str(lockfile))
    await sender.wait_for_client("samptwist snoop").addTimeout(STEP, reactor)
    await sender.notify_all("x.test.one", {"k": "1"})
    await sender.notify_all("x.test.two", {"k": "2"})
    assert await d == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["mtype"] for r in records] == ["x.test.one", "x.test.two"]
    assert records[0]["sender"] == sender.self_id


@pytest.mark.parametrize("args", [
    ("clients",), ("send", "samp.app.ping"), ("ping",), ("snoop",),
    ("load", __file__, "--mtype", "table.load.votable"),
])
@pytest_twisted.ensureDeferred
async def test_no_hub_running(args, isolated_home):
    """No ~/.samp (HOME is a fresh directory): one line (STD-LOCK-3)."""
    result = await cli(*args)
    assert result.error is not None and "no SAMP hub is running" in result.error, result
    assert str(isolated_home / ".samp") in result.error and result.out == ""


@pytest_twisted.ensureDeferred
async def test_unknown_client_names(inprocess_hub, lockfile):
    for args in (("send", "samp.app.ping", "--to", "nobody"), ("ping", "nobody"),
                 ("load", __file__, "--mtype", "table.load.votable", "--to", "nobody")):
        result = await cli(*args, "--lockfile", str(lockfile))
        assert result.error is not None, result
        assert "no client called 'nobody' is registered" in result.error, result
        assert "samptwist" in result.error  # the known names are listed


BAD_ARGUMENTS = [
    (("frobnicate",), "invalid choice"),
    (("send",), "the following arguments are required: MTYPE"),
    (("send", "x.y", "novalue"), "is not of the form key=value"),
    (("send", "x.y", "a=[1,"), "invalid JSON"),
    (("send", "bad..mtype"), "bad..mtype"),
    (("send", "x.y", "--wait", "soon"), "not a number of seconds"),
    (("ping", "--count", "0"), "--count must be at least 1"),
    (("snoop", "--subscribe", "a*b"), "not an MType pattern"),
    (("bridge", "a.samp"), "LOCKFILE_B"),
    (("load",), "FILE_OR_URL"),
]


@pytest.mark.parametrize("args, text", BAD_ARGUMENTS)
@pytest_twisted.ensureDeferred
async def test_bad_arguments_status_2(args, text, capsys):
    """Refused by the parser (one line on stderr, status 2) or by the
    subcommand before it connects (a CLIError with code 2)."""
    try:
        build_parser().parse_args(list(args))
    except SystemExit as e:
        assert e.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], lines
        return
    d, out = start(*args)
    try:
        await d
    except CLIError as e:
        assert e.code == 2 and text in error_line(e), error_line(e)
        assert out.getvalue() == ""
    else:
        pytest.fail(f"{args} was accepted")


def test_hub_bad_option_one_line():
    err = io.StringIO()
    with pytest.raises(SystemExit) as e:
        hub_command.options(["--max-failures", "many"], err=err)
    assert e.value.code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "--max-failures needs a whole number" in lines[0]


@pytest_twisted.ensureDeferred
async def test_bridge_reports_on_out_and_ends_with_hub_b(inprocess_hub, lockfile, tmp_path):
    from samptwist.hub.service import HubService

    other = tmp_path / "b.samp"
    hub_b = HubService(reactor, listen="tcp:0:interface=127.0.0.1", lockfile=other,
                       shutdown_grace=2.0)
    hub_b.startService()
    try:
        await hub_b.ready
        d, out = start("bridge", str(lockfile), str(other))
        await wait_until(lambda: "bridge ready" in out.getvalue() or d.called, 30,
                         "bridge ready")
        assert "bridge ready" in out.getvalue(), d
    finally:
        if hub_b.running:
            await hub_b.stopService()
    assert await d == 0
    assert out.getvalue().startswith(f"bridge ready: hub A ({lockfile}) <-> hub B ({other})\n")

    result = await cli("bridge", str(lockfile), str(lockfile))
    assert result.error == "LOCKFILE_A and LOCKFILE_B name the same hub", result


@pytest_twisted.ensureDeferred
async def test_remote_reports_on_out(inprocess_hub, lockfile):
    result = await cli("remote", "--via", "true", "--once", "--lockfile", str(lockfile))
    assert result.out.startswith("linking this desktop's hub with true: "), result
    assert "remote-agent" in result.out.splitlines()[0]


@pytest_twisted.ensureDeferred
async def test_remote_agent_speaks_on_its_link_and_talks_on_out(inprocess_hub, lockfile,
                                                                tmp_path):
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    from samptwist.cli import remote_agent
    from samptwist.remote.protocol import GREETING

    links: List[Any] = []
    transport = StringTransport()

    def stdio(link: Any) -> None:
        links.append(link)
        link.makeConnection(transport)

    args = build_parser().parse_args(["remote-agent", "--lockfile", str(lockfile)])
    out = io.StringIO()
    d = Deferred.fromCoroutine(remote_agent.run(reactor, args, out, stdio=stdio))
    d.addTimeout(STEP, reactor)
    await wait_until(lambda: links, STEP, "the agent's link")
    assert transport.value().startswith(GREETING)
    links[0].connectionLost(Failure(ConnectionDone()))
    assert await d == 0
    assert out.getvalue() == ""

    # Its messages go to out, never onto the link.
    d = Deferred.fromCoroutine(remote_agent.run(reactor, args, out, stdio=stdio))
    d.addTimeout(STEP, reactor)
    await wait_until(lambda: len(links) >= 2, STEP, "the agent's second link")
    transport.clear()
    await inprocess_hub.stopService()
    await wait_until(lambda: transport.disconnecting, STEP, "the link to close")
    links[1].connectionLost(Failure(ConnectionDone()))
    assert await d == 1
    assert "lost this machine's hub" in out.getvalue()
    assert b"lost this machine" not in transport.value()

    args = build_parser().parse_args(["remote-agent", "--no-start-hub",
                                      "--lockfile", str(tmp_path / "none.samp")])
    out = io.StringIO()
    with pytest.raises(CLIError, match="no hub here"):
        await remote_agent.run(reactor, args, out, stdio=stdio)
    assert len(links) == 2


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_entry_point_hands_each_subcommand_its_stream(name, monkeypatch):
    """
    C{samptwist NAME}: every subcommand's C{run} takes C{out}, and the entry
    point passes it: standard output, or standard error for remote-agent,
    whose standard output is its link.
    """
    import argparse
    import importlib
    import inspect
    import sys

    from samptwist import cli

    real = importlib.import_module(f"samptwist.cli.{name.replace('-', '_')}")
    assert "out" in inspect.signature(real.run).parameters, name
    given: List[Any] = []

    class Module:
        OUT_IS_STDERR = getattr(real, "OUT_IS_STDERR", False)

        @staticmethod
        async def run(reactor: Any, args: Any, out: Any = None) -> int:
            given.append(out)
            return 0

    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    failures: List[Any] = []
    d = Deferred.fromCoroutine(cli._run(reactor, Module, argparse.Namespace(command=name)))
    d.addErrback(failures.append)
    assert len(failures) == 1 and failures[0].check(SystemExit), failures
    assert failures[0].value.code == 0
    assert given == [stderr if Module.OUT_IS_STDERR else stdout]
    assert Module.OUT_IS_STDERR == (name == "remote-agent")


@pytest_twisted.ensureDeferred
async def test_bridge_and_remote_report_problems_on_the_injected_err(inprocess_hub, lockfile,
                                                                     tmp_path, capsys):
    """
    bridge and remote write their problems on the C{err} stream they are
    given (the entry point passes nothing: standard error), never on the
    global one.
    """
    from samptwist.cli import bridge, remote
    from samptwist.hub.service import HubService

    other = tmp_path / "b.samp"
    hub_b = HubService(reactor, listen="tcp:0:interface=127.0.0.1", lockfile=other,
                       shutdown_grace=2.0)
    hub_b.startService()
    out, err = io.StringIO(), io.StringIO()
    try:
        await hub_b.ready
        args = build_parser().parse_args(["bridge", str(lockfile), str(other)])
        d = Deferred.fromCoroutine(bridge.run(reactor, args, out, err=err))
        await wait_until(lambda: "bridge ready" in out.getvalue() or d.called, 30,
                         "bridge ready")
        assert "bridge ready" in out.getvalue(), d
    finally:
        if hub_b.running:
            await hub_b.stopService()
    assert await d == 0
    assert err.getvalue() == "samptwist bridge: hub B stopped\n"

    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["remote", "--via", "true", "--once", "--lockfile",
                                      str(lockfile)])
    code = await Deferred.fromCoroutine(remote.run(reactor, args, out, err=err))
    assert code == 1
    assert err.getvalue().startswith("samptwist remote: "), (out.getvalue(), err.getvalue())
    assert capsys.readouterr().err == ""
