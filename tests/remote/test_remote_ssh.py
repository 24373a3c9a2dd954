"""
``samptwist remote`` end to end: the desktop's hub (ours, a subprocess with a
private HOME) linked through the system's ssh to a simulated remote machine
(tests/remote/farside.py: own network, mount and PID namespaces, a real
OpenSSH server on its loopback), where the agent starts a hub of its own.
pyvo clients on both sides (scripts/farpeer.py) exchange tables, images,
calls and replies; files that exist only on one side are fetched through the
link.  Then the ssh process is killed, and the link comes back.  The same
messaging runs with --via over a plain pipe into the namespaces.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Iterator, List

import peers
import pytest

from tests.cli.conftest import Running, hub_of_kind, run_cli
from tests.remote.farside import RemoteMachine, remote_machine
from tests.remote.peerproc import PeerProcess, desktop_peer, remote_peer

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
LINK_TIMEOUT = 90.0


@pytest.fixture
def desk_hub(tmp_path):
    with peers.running_hub(tmp_path / "desk") as hub:
        yield hub


@pytest.fixture(params=["samptwist", "pyvo", "jsamp"])
def any_desk_hub(request, tmp_path):
    """The desktop's hub, whichever it is: ours, pyvo.samp's or JSAMP's (TOPCAT's)."""
    with hub_of_kind(request.param, tmp_path / "desk") as hub:
        yield hub


@pytest.fixture
def machine(tmp_path) -> Iterator[RemoteMachine]:
    with remote_machine(tmp_path) as m:
        yield m


def ssh_link_args(machine: RemoteMachine, *extra: str) -> List[str]:
    return ["remote", "remote", "--ssh", shlex.join(machine.ssh),
            "--remote-python", sys.executable, *extra]


def via_link_args(machine: RemoteMachine, *extra: str) -> List[str]:
    env = machine.env()
    via = machine.enter(pid_namespace=True) + ["env", f"HOME={env['HOME']}",
                                               f"PYTHONPATH={ROOT}"]
    return ["remote", "--via", shlex.join(via), "--remote-python", sys.executable, *extra]


@contextlib.contextmanager
def peer(make, *args) -> Iterator[PeerProcess]:
    p = make(*args)
    try:
        yield p
    finally:
        p.close()


def votable_remote(machine: RemoteMachine, rows: int) -> Path:
    """A VOTable written on the remote machine, in its private HOME."""
    path = machine.home / "stars.vot"
    code = ("import sys; from astropy.table import Table; n=int(sys.argv[1]); "
            "Table({'ra': [i * 0.5 for i in range(n)], 'dec': [-i * 0.25 for i in range(n)]})"
            ".write(sys.argv[2], format='votable')")
    done = machine.run([sys.executable, "-c", code, str(rows), str(path)])
    assert done.returncode == 0, done.stderr
    assert machine.exists(path) and not path.exists(), "the table must exist only remotely"
    return path


def fits_desktop(path: Path) -> Path:
    import numpy
    from astropy.io import fits

    fits.PrimaryHDU(numpy.arange(30 * 20, dtype="float32").reshape(30, 20)).writeto(str(path))
    return path


def votable_desktop(path: Path, rows: int) -> Path:
    from astropy.table import Table

    path.parent.mkdir(parents=True, exist_ok=True)
    Table({"x": list(range(rows))}).write(str(path), format="votable")
    return path


@contextlib.contextmanager
def local_web_server(path: Path) -> Iterator[str]:
    """Serve C{path}'s directory on this side's loopback; yield the file's http://localhost URL."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/{path.name}"
    finally:
        server.shutdown()
        server.server_close()


def child_pids(pid: int) -> List[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def exercise(link: Running, desk_hub, machine: RemoteMachine, tmp_path: Path) -> tuple:
    """Messages, files, replies and client lists both ways; returns the two peers' contexts."""
    link.wait_line("linked to", LINK_TIMEOUT)
    try:
        return _exercise(link, desk_hub, machine, tmp_path)
    except AssertionError as e:
        hub_log = [line[:400] for line in desk_hub.log_text().splitlines()
                   if "POST" not in line and "c3" in line][-15:]
        raise AssertionError(f"{e}\nlink output: {link.lines()[-20:]}\n"
                             f"link errors: {link.err.snapshot()[-20:]}\n"
                             f"desktop hub: {hub_log}") from None


def _exercise(link: Running, desk_hub, machine: RemoteMachine, tmp_path: Path) -> tuple:
    stack = contextlib.ExitStack()
    near = stack.enter_context(peer(desktop_peer, desk_hub.env, "desk-viewer"))
    far = stack.enter_context(peer(remote_peer, machine, "notebook"))
    far.wait_names(lambda n: "desk-viewer" in n, 30, "desktop client mirrored remotely")
    near.wait_names(lambda n: "notebook" in n, 30, "remote client mirrored on the desktop")

    # A table that exists only remotely, loaded by the desktop's pyvo receiver.
    table = votable_remote(machine, 1234)
    got = far.ask("result", op="call_and_wait", to="desk-viewer", mtype="table.load.votable",
                  params={"url": table.as_uri(), "name": "stars"}, timeout=60)
    assert got["response"]["samp.status"] == "samp.ok", got
    assert got["response"]["samp.result"]["rows"] == "1234"
    call = near.wait(lambda e: e.get("event") == "call", 30, "the table call")
    assert call["params"]["url"].startswith("http://127.0.0.1:"), call
    assert table.name in call["params"]["url"] and "file:" not in call["params"]["url"]

    # The reverse: a FITS image of the desktop, loaded on the remote side.
    image = fits_desktop(tmp_path / "desk-image.fits")
    near_call = near.ask("response", op="call", to="notebook", tag="img-1",
                         mtype="image.load.fits", params={"url": image.as_uri()})
    assert near_call["response"]["samp.status"] == "samp.ok", near_call
    assert near_call["response"]["samp.result"]["shape"] == "30x20"
    fcall = far.wait(lambda e: e.get("event") == "call" and e["mtype"] == "image.load.fits",
                     30, "the image call")
    assert fcall["params"]["url"].startswith("http://127.0.0.1:")

    # An http://localhost URL of the desktop (a web server only it can reach)
    # is served to the remote side through the link too.
    with local_web_server(votable_desktop(tmp_path / "served" / "local.vot", 77)) as url:
        served = near.ask("result", op="call_and_wait", to="notebook",
                          mtype="table.load.votable", params={"url": url}, timeout=60)
    assert served["response"]["samp.result"]["rows"] == "77", served

    # Calls with replies and callAndWait, both ways; notifications.
    back = far.ask("response", op="call", to="desk-viewer", tag="echo-1", mtype="test.echo",
                   params={"x": "from far"})
    assert back["response"]["samp.result"] == {"echo": "from far"}
    waited = near.ask("result", op="call_and_wait", to="notebook", mtype="test.echo",
                      params={"x": "from desk"}, timeout=30)
    assert waited["response"]["samp.result"] == {"echo": "from desk"}
    near.ask("sent", op="notify", to="notebook", mtype="test.note", params={"x": "hi"})
    note = far.wait(lambda e: e.get("event") == "note", 30, "the notification")
    assert note["params"] == {"x": "hi"}
    # Where the mirrored client lives is in its metadata.
    meta = [m for m in near.ask("clients", op="clients")["metadata"]
            if m.get("samp.name") == "notebook"]
    assert meta and "x-samptwist.remote.location" in meta[0]

    # `samptwist clients` on each side lists the other side's clients.
    listed = run_cli(desk_hub.env, "clients")
    assert listed.returncode == 0 and "notebook" in listed.stdout, listed.stdout
    listed = machine.run([sys.executable, "-m", "samptwist", "clients"])
    assert listed.returncode == 0 and "desk-viewer" in listed.stdout, listed.stdout + listed.stderr
    return stack, near, far


def test_ssh_link_tables_images_calls_and_reconnect(desk_hub, machine, tmp_path):
    with contextlib.closing(_Link(desk_hub, ssh_link_args(machine, "--reconnect-delay", "6"))) \
            as link:
        stack, near, far = exercise(link.running, desk_hub, machine, tmp_path)
        with stack:
            # A hub was started on the far side, in the remote user's usual ~/.samp.
            assert machine.exists(machine.home / ".samp")
            link.running.wait_line("started a hub here", 5, stream="err")

            # Kill ssh: the mirrored clients leave both hubs within 5 s.
            (ssh,) = [p for p in child_pids(link.running.proc.pid)
                      if Path(f"/proc/{p}/exe").resolve().name == "ssh"]
            os.kill(ssh, signal.SIGKILL)
            start = time.monotonic()
            near.wait_names(lambda n: "notebook" not in n, 5, "remote client gone")
            far.wait_names(lambda n: "desk-viewer" not in n, 5 - (time.monotonic() - start),
                           "desktop client gone remotely")
            assert time.monotonic() - start < 5
            link.running.wait_line("reconnecting to remote in 6s", 10)

            # It reconnects, and messages go through again.
            far.wait_names(lambda n: "desk-viewer" in n, LINK_TIMEOUT, "mirrored again")
            near.wait_names(lambda n: "notebook" in n, 30, "mirrored again on the desktop")
            again = far.ask("result", op="call_and_wait", to="desk-viewer", mtype="test.echo",
                            params={"x": "again"}, timeout=30)
            assert again["response"]["samp.result"] == {"echo": "again"}
        assert link.stop() == 0


def test_via_plain_pipe_passes_the_same_messaging(any_desk_hub, machine, tmp_path):
    """The same messaging with --via over a plain pipe, with each kind of desktop hub."""
    desk_hub = any_desk_hub
    with contextlib.closing(_Link(desk_hub, via_link_args(machine))) as link:
        stack, near, far = exercise(link.running, desk_hub, machine, tmp_path)
        with stack:
            pass
        assert link.stop() == 0
        # The link's end took the proxies off the desktop hub.
        listed = run_cli(desk_hub.env, "clients")
        assert "notebook" not in listed.stdout


class _Link:
    def __init__(self, desk_hub, args: List[str]) -> None:
        self.running = Running(desk_hub.env, *args)
        self._code = None

    def stop(self) -> int:
        self._code = self.running.stop(signal.SIGINT)
        return self._code

    def close(self) -> None:
        if self.running.proc.poll() is None:
            self.running.stop()
