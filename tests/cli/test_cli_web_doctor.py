"""
C{samptwist web} and C{samptwist doctor}, run in-process (each command
takes its output stream) against real hubs on loopback: ours started in
this process, JSAMP's as a subprocess; the Web Profile on a free port (the
standard port 21012 only inside a private network namespace, see
test_doctor_on_port_21012_in_private_network_namespace).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import xmlrpc.client
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from samptwist.cli import build_parser
from samptwist.cli import doctor as doctor_cmd
from samptwist.cli import web as web_cmd
from samptwist.cli._common import CLIError
from samptwist.hub.runner import start_hub

from .conftest import ROOT, hub_of_kind

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    path = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(path))
    return path


async def cli(module, *argv):
    """@return: (exit status, output) of `samptwist ARGV` run in this process."""
    args = build_parser().parse_args(list(argv))
    out = io.StringIO()
    code = await module.run(reactor, args, out=out)
    return code, out.getvalue()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def web_hub(tmp_path, consent="page", web=True):
    hub = await start_hub(reactor, lockfile=tmp_path / "lock.samp", web=web,
                          web_listen="tcp:0:interface=127.0.0.1", web_consent=consent)
    return hub


def web_port(hub):
    return hub.service.web._port.getHost().port


def register(hub, origin=ORIGIN, name="asking page"):
    """Start a Web Profile registration as a page of ORIGIN would (a Deferred)."""
    body = xmlrpc.client.dumps(({"samp.name": name},), "samp.webhub.register").encode()
    url = f"http://127.0.0.1:{web_port(hub)}/"
    d = treq.post(url, data=body, headers={"Content-Type": "text/xml", "Origin": origin},
                  reactor=reactor)
    d.addCallback(treq.content)
    return d.addCallback(lambda data: xmlrpc.client.loads(data)[0][0])


async def until_pending(hub, count=1):
    consent = hub.service.web.consent
    for _ in range(200):
        if len(consent.pending()) >= count:
            return
        await deferLater(0.02)
    raise AssertionError("the request never became pending")


def deferLater(seconds):
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


# -- samptwist web -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_web_pending_allow_always_origins_forget(tmp_path, config_home):
    hub = await web_hub(tmp_path)
    lock = str(hub.lockfile)
    try:
        code, text = await cli(web_cmd, "web", "--lockfile", lock)
        assert (code, text) == (0, "no web page is waiting for an answer\n")
        d = register(hub)
        await until_pending(hub)
        code, text = await cli(web_cmd, "web", "--lockfile", lock, "pending")
        assert code == 0 and "asking page" in text and ORIGIN in text and "REFUSED IN" in text
        code, text = await cli(web_cmd, "web", "--lockfile", lock, "pending", "--json")
        [item] = json.loads(text)
        assert item["origin"] == ORIGIN and item["id"] == "1"
        code, text = await cli(web_cmd, "web", "--lockfile", lock, "allow", "1", "--always")
        assert code == 0 and "always allowed" in text
        registration = await d
        assert registration["samp.private-key"]
        code, text = await cli(web_cmd, "web", "--lockfile", lock, "origins")
        assert code == 0 and text.startswith(ORIGIN) and "asking page" in text
        file = config_home / "samptwist" / "web-origins.json"
        assert oct(file.stat().st_mode & 0o777) == "0o600"
        # remembered: the next registration is not asked
        assert (await register(hub))["samp.private-key"]
        code, text = await cli(web_cmd, "web", "--lockfile", lock, "forget", ORIGIN)
        assert code == 0 and "no longer" in text
        d = register(hub)
        await until_pending(hub)  # revoked at once: asked again
        code, text = await cli(web_cmd, "web", "--lockfile", lock, "deny", "2")
        assert code == 0 and text == "denied request 2\n"
        with pytest.raises(xmlrpc.client.Fault):
            await d
        with pytest.raises(CLIError, match="not waiting"):
            await cli(web_cmd, "web", "--lockfile", lock, "deny", "2")
    finally:
        await hub.stop()


@pytest_twisted.ensureDeferred
async def test_web_origins_offline_and_other_consent(tmp_path, config_home):
    from samptwist.hub.web.remembered import RememberedOrigins

    RememberedOrigins().add("https://offline.example")
    missing = str(tmp_path / "no-hub.samp")
    code, text = await cli(web_cmd, "web", "--lockfile", missing, "origins", "--json")
    assert [e["origin"] for e in json.loads(text)] == ["https://offline.example"]
    code, text = await cli(web_cmd, "web", "--lockfile", missing, "forget",
                           "https://offline.example")
    assert code == 0 and "edited" in text
    assert RememberedOrigins().entries() == []
    with pytest.raises(CLIError, match="not always allowed"):
        await cli(web_cmd, "web", "--lockfile", missing, "forget", "https://offline.example")
    with pytest.raises(CLIError, match="lockfile"):
        await cli(web_cmd, "web", "--lockfile", missing, "pending")
    hub = await web_hub(tmp_path, consent="deny")
    try:
        with pytest.raises(CLIError, match="does not ask on its status page"):
            await cli(web_cmd, "web", "--lockfile", str(hub.lockfile))
    finally:
        await hub.stop()


# -- samptwist doctor ----------------------------------------------------------


async def doctor(*extra, lockfile, port):
    code, text = await cli(doctor_cmd, "doctor", "--lockfile", str(lockfile),
                           "--web-port", str(port), *extra)
    _, js = await cli(doctor_cmd, "doctor", "--json", "--lockfile", str(lockfile),
                      "--web-port", str(port), *extra)
    report = json.loads(js)
    assert report["ok"] is (code == 0)
    return code, text, {c["name"]: c for c in report["checks"]}


def test_browser_verdicts():
    verdict = doctor_cmd.browser_verdict
    assert verdict("http://localhost:8000")[0] == "ok"
    assert verdict("https://127.0.0.1:8443")[0] == "ok"
    assert verdict("http://[::1]:80")[0] == "ok"
    status, why = verdict("http://example.org")
    assert status == "FAIL" and "https" in why
    status, why = verdict("https://example.org")
    assert status == "warn" and "local network access" in why
    assert "local-network" in verdict("https://192.168.1.5")[1]
    assert verdict("file:///home/me/page.html")[0] == "FAIL"


@pytest_twisted.ensureDeferred
async def test_doctor_no_hub(tmp_path):
    code, text, checks = await doctor(lockfile=tmp_path / "none.samp", port=free_port())
    assert code == 1
    assert checks["lockfile"]["status"] == "FAIL" and "no hub is running" in text
    assert checks["web profile"]["status"] == "warn" and "nothing listens" in text
    assert text.endswith("something is broken (FAIL above)\n")


@pytest_twisted.ensureDeferred
async def test_doctor_stale_lockfile_and_permissions(tmp_path):
    lock = tmp_path / "stale.samp"
    lock.write_text("samp.secret=x\nsamp.hub.xmlrpc.url=http://127.0.0.1:9/xmlrpc\n"
                    "samp.profile.version=1.3\nhub.impl=samptwist 0.1.0\nhub.pid=999999999\n")
    lock.chmod(0o644)
    code, text, checks = await doctor(lockfile=lock, port=free_port())
    assert code == 1
    assert checks["hub"]["status"] == "FAIL" and "stale lockfile" in checks["hub"]["summary"]
    assert "process 999999999 is gone" in checks["hub"]["summary"]
    assert checks["permissions"]["status"] == "FAIL" and "chmod 600" in text
    lock.chmod(0o600)
    code, _, checks = await doctor(lockfile=lock, port=free_port())
    assert checks["permissions"]["status"] == "ok" and code == 1  # still stale


@pytest_twisted.ensureDeferred
async def test_doctor_our_hub_with_web_profile(tmp_path):
    hub = await web_hub(tmp_path)
    try:
        port = web_port(hub)
        code, text, checks = await doctor("--origin", "https://example.org",
                                          lockfile=hub.lockfile, port=port)
        assert code == 0, text
        assert checks["hub"]["status"] == "ok"
        assert checks["implementation"]["summary"].startswith("samptwist")
        web = checks["web profile"]
        assert web["status"] == "ok" and "the lockfile's hub" in web["summary"]
        assert web["details"]["owner_pid"] == os.getpid()
        assert "status page" in checks["consent"]["summary"]
        assert checks["browser"]["status"] == "warn"
        assert text.endswith("nothing is broken\n")
        code, text, checks = await doctor("--origin", "http://example.org",
                                          lockfile=hub.lockfile, port=port)
        assert code == 1 and checks["browser"]["status"] == "FAIL"
    finally:
        await hub.stop()


@pytest_twisted.ensureDeferred
async def test_doctor_our_hub_without_web_profile(tmp_path):
    hub = await web_hub(tmp_path, web=False)
    try:
        port = free_port()
        code, text, checks = await doctor(lockfile=hub.lockfile, port=port)
        assert code == 0, text
        assert checks["web profile"]["status"] == "warn"
        assert "no running hub with a Web Profile" in checks["consent"]["summary"]
        code, text, checks = await doctor("--origin", "http://localhost:8000",
                                          lockfile=hub.lockfile, port=port)
        assert code == 1 and "no SAMP Web Profile answers" in checks["browser"]["summary"]
    finally:
        await hub.stop()


@pytest_twisted.ensureDeferred
async def test_doctor_port_held_by_something_else(tmp_path):
    hub = await web_hub(tmp_path, web=False)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(5)
    try:
        code, text, checks = await doctor(lockfile=hub.lockfile, port=blocker.getsockname()[1])
        web = checks["web profile"]
        assert code == 1 and web["status"] == "FAIL"
        assert "not a SAMP Web Profile" in web["summary"]
        assert web["details"]["owner_pid"] == os.getpid()
    finally:
        blocker.close()
        await hub.stop()


def test_doctor_jsamp_hub(tmp_path):
    with hub_of_kind("jsamp", tmp_path) as hub:
        code, text, checks = run_doctor_sync(hub.lockfile, free_port())
    assert code == 0, text
    assert checks["hub"]["status"] == "ok"
    assert checks["implementation"]["summary"].startswith("JSAMP")
    assert checks["permissions"]["status"] == "ok"


def run_doctor_sync(lockfile, port):
    cp = subprocess.run(
        [sys.executable, "-m", "samptwist", "doctor", "--json", "--lockfile", str(lockfile),
         "--web-port", str(port)],
        capture_output=True, text=True, timeout=60, cwd=str(ROOT), stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)))
    report = json.loads(cp.stdout)
    return cp.returncode, cp.stdout, {c["name"]: c for c in report["checks"]}


NETNS_SCRIPT = r"""
import json, os, socket, subprocess, sys
from pathlib import Path
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
sys.path.insert(0, sys.argv[1])
from web.webhub import web_hub
tmp = Path(sys.argv[2])
env = dict(os.environ, HOME=str(tmp / "hubhome"))

def doctor():
    cp = subprocess.run([sys.executable, "-m", "samptwist", "doctor", "--json", "--lockfile",
                         str(tmp / "hubhome" / ".samp"), "--origin", "http://localhost:1"],
                        capture_output=True, text=True, timeout=60, env=env)
    return [cp.returncode, json.loads(cp.stdout)]

out = {}
with web_hub(tmp, web_listen="tcp:21012:interface=127.0.0.1") as hub:
    assert hub.web_url == "http://127.0.0.1:21012/", hub.log()
    out["ours"] = doctor()
held = socket.socket()
held.bind(("127.0.0.1", 21012))
held.listen(5)
with web_hub(tmp, web_listen="tcp:21012:interface=127.0.0.1") as hub:
    out["held"] = doctor()
held.close()
print(json.dumps(out))
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_doctor_on_port_21012_in_private_network_namespace(tmp_path):
    """The standard port: our hub's Web Profile on 21012, then 21012 held by another
    program while a hub starts (checked in a private network namespace)."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("unshare -n is needed for the port 21012 tests")
        pytest.skip("unshare -n not permitted here")
    script = tmp_path / "inns.py"
    script.write_text(NETNS_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), str(Path(__file__).resolve().parents[1]),
         str(tmp_path)], capture_output=True, text=True, timeout=180, env=env, cwd=str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    code, report = out["ours"]
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 0, report
    assert checks["web profile"]["status"] == "ok"
    assert "the lockfile's hub" in checks["web profile"]["summary"]
    assert checks["browser"]["status"] == "ok"
    code, report = out["held"]
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 1
    assert checks["web profile"]["status"] == "FAIL"
    assert "not a SAMP Web Profile" in checks["web profile"]["summary"]
    assert checks["hub"]["status"] == "ok"  # the Standard Profile still runs
