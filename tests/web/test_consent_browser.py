"""
Consent in the browser, end to end in real headless Chromium (Debian's
/usr/bin/chromium through Playwright) against a real C{twistd samphub} with
no terminal: a page registers through the shipped JS client while a second
tab, the hub's status page, clicks Allow / Deny / Always allow / Revoke (or
nobody answers); pyvo.samp is the desktop client.  Then what another origin
cannot do to the status page, and the JS client's error for each failure,
including a public https page (test certificate) without the browser's
local-network permission.

Missing Chromium, Playwright, pyvo or openssl: skipped, or failed when CI is set.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from samptwist.statuspage import status_url

from .webhub import web_hub

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import peers  # noqa: E402
from browser import chromium_context  # noqa: E402

JS = Path(__file__).resolve().parents[2] / "samptwist" / "hub" / "web" / "static" / \
    "samptwist-web.js"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PUBLIC = "public.test"

#: the test page: the JS client served by the page's own site, options from the query
PAGE = """<!doctype html><title>consent test page</title>
<script src="samptwist-web.js"></script>
<p id="why"></p>
<script>
var q = new URLSearchParams(location.search);
window.log = [];
window.state = "";
var options = {
  name: q.get("name") || "consent test page",
  handlers: {"table.highlight.row": function (sender, params) {
    window.log.push([sender, params.row]);
  }},
};
if (q.get("hub")) { options.hubUrl = q.get("hub"); }
if (q.get("timeout")) { options.timeout = q.get("timeout"); }
SampTwist.connect(options).then(function (c) {
  window.conn = c;
  window.state = "registered:" + c.selfId;
}, function (e) {
  window.error = {kind: e.kind, message: e.message, details: e.details,
                  isSampError: e instanceof SampTwist.SampError};
  window.shown = SampTwist.renderError(e, document.getElementById("why"));
  window.state = "error:" + e.kind;
});
</script>
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    seen: List[Dict[str, str]]

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        super().do_GET()


@contextlib.contextmanager
def site(root: Path, cert: Path = None) -> Iterator[tuple]:
    """Serve C{root} (with the JS client and the test page) on a free loopback port,
    over https with C{cert}; yield (port, list of requests seen)."""
    shutil.copy(JS, root / "samptwist-web.js")
    (root / "page.html").write_text(PAGE)
    seen: List[Dict[str, str]] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert / "cert.pem", cert / "key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_certificate(directory: Path) -> Path:
    openssl = peers.require_peer("openssl", lambda: shutil.which("openssl") or _missing())
    directory.mkdir()
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
         "-subj", f"/CN={PUBLIC}", "-addext", f"subjectAltName=DNS:{PUBLIC}"],
        check=True, capture_output=True, timeout=60)
    return directory


test_certificate.__test__ = False  # a helper, not a test


def _missing():
    raise LookupError("no openssl executable")


def _private_network() -> bool:
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        raise LookupError("unshare -n is not permitted here")
    return True


@pytest.fixture
def browser(tmp_path):
    yield from chromium_context(tmp_path / "chromium-profile")


def wait_state(page, timeout=20000):
    page.wait_for_function("window.state !== ''", timeout=timeout)
    return page.evaluate("window.state")


def open_status(browser, hub):
    status = browser.new_page()
    status.set_viewport_size({"width": 960, "height": 640})
    status.goto(status_url(hub.params["samp.hub.xmlrpc.url"], hub.params["samp.secret"]))
    status.wait_for_selector("#feed.live", timeout=15000)
    return status


def ask_and_wait(browser, status, url):
    """Open the page at C{url}; wait until the status tab shows its request."""
    page = browser.new_page()
    page.goto(url)
    status.wait_for_selector("#consent .request", timeout=15000)
    return page


def test_allow_on_status_page_then_exchange_with_pyvo(tmp_path, browser):
    """The page waits; the status tab shows the claimed name, the Origin as received, the
    Referer and the time left; Allow once registers it; the page sends a table to a pyvo
    client and gets a message back."""
    samp = peers.require_samp_module("pyvo.samp")
    root = tmp_path / "site"
    root.mkdir()
    with site(root) as (port, _), web_hub(tmp_path, "--web-consent-timeout", "90") as hub:
        origin = f"http://127.0.0.1:{port}"
        client = samp.SAMPIntegratedClient(name="desktop", addr="127.0.0.1")
        client.connect(hub_params=hub.params)
        try:
            inbox = peers.Inbox()
            client.bind_receive_notification("table.load.votable", lambda *a: inbox.put(a))
            status = open_status(browser, hub)
            page = ask_and_wait(browser, status, f"{origin}/page.html?hub={hub.web_url}"
                                "&name=Sky%20viewer")
            request = status.locator("#consent .request").first
            assert request.locator(".claimed-name").text_content() == "Sky viewer"
            assert request.locator(".origin").text_content() == origin
            # Chromium's default policy sends cross-origin Referers as the origin only
            assert request.locator(".referer").text_content() == origin + "/"
            left = int(request.locator(".time-left").text_content().split()[0])
            assert 0 < left <= 90
            assert page.evaluate("window.state") == ""  # still waiting
            ARTIFACTS.mkdir(exist_ok=True)
            status.screenshot(path=str(ARTIFACTS / "status-page-consent.png"))
            request.locator("button.allow").click()
            state = wait_state(page)
            assert state.startswith("registered:"), (state, hub.log())
            status.wait_for_selector("#consent", state="hidden", timeout=10000)
            web_id = state.split(":", 1)[1]
            assert web_id in client.get_registered_clients()
            table = f"{origin}/table.vot"
            page.evaluate("""([id, url]) => window.conn.notify(id, {"samp.mtype":
                "table.load.votable", "samp.params": {"url": url, "name": "t1"}})""",
                          [client.get_public_id(), table])
            got = inbox.wait_for(lambda a: True, what="the table from the page")
            assert got[1] == web_id and {"url": table, "name": "t1"} in got
            client.notify(web_id, {"samp.mtype": "table.highlight.row",
                                   "samp.params": {"row": "7"}})
            page.wait_for_function("window.log.length > 0", timeout=10000)
            assert page.evaluate("window.log") == [[client.get_public_id(), "7"]]
        finally:
            peers.disconnect_quietly(client)
    assert "allowed once on the status page" in hub.log()


def test_deny_and_time_out(tmp_path, browser):
    """Deny refuses at once; with nobody answering the page is refused after the
    bounded wait; both with the JS client's error kind and the rendered advice."""
    root = tmp_path / "site"
    root.mkdir()
    with site(root) as (port, _), web_hub(tmp_path, "--web-consent-timeout", "4") as hub:
        url = f"http://127.0.0.1:{port}/page.html?hub={hub.web_url}"
        status = open_status(browser, hub)
        page = ask_and_wait(browser, status, url)
        status.locator("#consent .request button.deny").click()
        assert wait_state(page) == "error:refused"
        assert "refused" in page.evaluate("window.error.message")
        assert "refused this page" in page.text_content("#why")
        late = browser.new_page()
        late.goto(url)
        assert wait_state(late, timeout=30000) == "error:timeout"
        assert "in time" in late.text_content("#why")
        assert page.evaluate("window.error.isSampError") is True
    log = hub.log()
    assert "denied on the status page" in log and "no answer in 4s" in log


def test_always_allow_survives_restart_and_revoke_is_immediate(tmp_path, browser):
    root = tmp_path / "site"
    root.mkdir()
    args = ("--web-consent-timeout", "60")
    with site(root) as (port, _):
        origin = f"http://127.0.0.1:{port}"
        with web_hub(tmp_path, *args) as hub:
            status = open_status(browser, hub)
            page = ask_and_wait(browser, status, f"{origin}/page.html?hub={hub.web_url}")
            status.locator("#consent .request button.always").click()
            assert wait_state(page).startswith("registered:")
            status.wait_for_selector(f'#origins tr[data-origin="{origin}"]', timeout=10000)
        remembered = tmp_path / "hubhome" / ".config" / "samptwist" / "web-origins.json"
        assert oct(remembered.stat().st_mode & 0o777) == "0o600"
        with web_hub(tmp_path, *args) as hub:  # a new hub process, same user
            again = browser.new_page()
            again.goto(f"{origin}/page.html?hub={hub.web_url}")
            assert wait_state(again).startswith("registered:"), hub.log()
            status = open_status(browser, hub)
            row = status.locator(f'#origins tr[data-origin="{origin}"]')
            row.locator("button.revoke").click()
            status.wait_for_selector(f'#origins tr[data-origin="{origin}"]', state="detached",
                                     timeout=10000)
            asked = ask_and_wait(browser, status, f"{origin}/page.html?hub={hub.web_url}")
            assert asked.evaluate("window.state") == ""  # asked again, not let in
            status.locator("#consent .request button.deny").click()
            assert wait_state(asked) == "error:refused"
        assert "always allowed" in hub.log()


#: run by a page of another origin against the status page (its URL and key given)
ATTACK = """async ([statusUrl, base, key]) => {
  const out = {};
  async function attempt(name, f) {
    try { const r = await f(); out[name] = "status " + r.status + " type " + r.type; }
    catch (e) { out[name] = "blocked " + e.name; }
  }
  const json = {"Content-Type": "application/json"};
  const answer = JSON.stringify({action: "allow", id: "1"});
  await attempt("read page", () => fetch(statusUrl).then(async r => (await r.text(), r)));
  await attempt("read state", () => fetch(base + "state.json?key=" + key));
  await attempt("post json with key", () => fetch(base + "consent?key=" + key,
    {method: "POST", headers: json, body: answer}));
  await attempt("post json no key", () => fetch(base + "consent",
    {method: "POST", headers: json, body: answer}));
  await attempt("post simple with key", () => fetch(base + "consent?key=" + key,
    {method: "POST", mode: "no-cors", body: answer}));
  await attempt("post simple no key", () => fetch(base + "consent",
    {method: "POST", mode: "no-cors", body: answer}));
  const frame = document.createElement("iframe");
  frame.src = statusUrl;
  document.body.appendChild(frame);
  await new Promise(r => setTimeout(r, 1500));
  try { out["frame"] = String(frame.contentDocument && frame.contentDocument.body.innerHTML); }
  catch (e) { out["frame"] = "blocked " + e.name; }
  return out;
}"""


def test_other_origin_cannot_use_the_status_page(tmp_path, browser):
    """Another origin's page cannot read the status page or its state, cannot answer a
    consent request (with or without the key), and cannot learn the key: not from a
    frame, and not from the Referer of a client icon it controls."""
    samp = peers.require_samp_module("pyvo.samp")
    root = tmp_path / "site"
    root.mkdir()
    with site(root) as (port, seen), web_hub(tmp_path, "--web-consent-timeout", "60") as hub:
        url = status_url(hub.params["samp.hub.xmlrpc.url"], hub.params["samp.secret"])
        key = url.split("key=")[1]
        base = url.split("?")[0] + "/"
        client = samp.SAMPIntegratedClient(name="icon owner", addr="127.0.0.1")
        client.connect(hub_params=hub.params)
        try:
            icon = f"http://localhost:{port}/icon.svg"
            (root / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
            client.declare_metadata({"samp.name": "icon owner", "samp.icon.url": icon})
            status = open_status(browser, hub)
            evil = ask_and_wait(browser, status,
                                f"http://localhost:{port}/page.html?hub={hub.web_url}")
            result = evil.evaluate(ATTACK, [url, base, key])
            assert status.locator("#consent .request").count() == 1, result  # unanswered
            assert evil.evaluate("window.state") == ""
            for name in ("read page", "read state", "post json with key", "post json no key"):
                assert result[name].startswith("blocked"), (name, result)
            # "simple" requests reach the hub, which refuses them (the request is still
            # waiting, above); the page cannot read the answer (CORP blocks it):
            for name in ("post simple with key", "post simple no key"):
                assert result[name] in ("blocked TypeError", "status 0 type opaque"), result
            assert not result["frame"].startswith("<"), result
            status.wait_for_selector(f'#clients img[src="{icon}"]', timeout=10000)
            fetched = [r for r in seen if r["path"] == "/icon.svg"]
            assert fetched, seen
            assert all(key not in str(r) for r in seen), seen  # no Referer carrying the key
            assert all("referer" not in r for r in fetched)
        finally:
            peers.disconnect_quietly(client)
    assert key not in "".join(str(r) for r in seen)


def test_js_client_errors_in_chromium(tmp_path, browser):
    """no-hub (nothing on the port), a client-side timeout while the hub waits for the
    user, and refused by policy, each with its error kind and rendered advice."""
    root = tmp_path / "site"
    root.mkdir()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nothing = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with site(root) as (port, _):
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/page.html?hub={nothing}")
        assert wait_state(page) == "error:no-hub"
        assert "Start a SAMP hub" in page.text_content("#why")
        assert page.evaluate("window.error.details.hubUrl") == nothing
        assert page.evaluate("SampTwist.diagnose(new URLSearchParams(location.search).get("
                             "'hub')).then(r => r.ok + ':' + r.error.kind)") == "false:no-hub"
        with web_hub(tmp_path, "--web-consent-timeout", "60") as hub:
            slow = browser.new_page()
            slow.goto(f"http://127.0.0.1:{port}/page.html?hub={hub.web_url}&timeout=1")
            assert wait_state(slow) == "error:timeout"
            assert "within 1 s" in slow.evaluate("window.error.message")
            assert slow.evaluate("SampTwist.diagnose(new URLSearchParams(location.search).get("
                                 "'hub')).then(r => r.ok)") is True
        with web_hub(tmp_path, "--web-consent", "deny") as hub:
            denied = browser.new_page()
            denied.goto(f"http://127.0.0.1:{port}/page.html?hub={hub.web_url}")
            assert wait_state(denied) == "error:refused"


def public_page_checks(tmp_path: Path) -> Dict[str, object]:
    """
    Inside a private network namespace (run by the test below): the hub on the
    standard port 21012, a page on a "public" https origin using the JS client's
    default hub URL, and a public plain-http page.

    @return: what each page saw, and the hub's log.
    """
    cert = test_certificate(tmp_path / "cert")
    root = tmp_path / "site"
    root.mkdir()
    plain_root = tmp_path / "plain"
    plain_root.mkdir()
    out: Dict[str, object] = {}
    with site(root, cert) as (port, _), site(plain_root) as (plain_port, _):
        origin = f"https://{PUBLIC}:{port}"
        out["origin"] = origin
        args = [f"--ip-address-space-overrides=127.0.0.1:{port}=public,"
                f"127.0.0.1:{plain_port}=public",
                f"--host-resolver-rules=MAP {PUBLIC} 127.0.0.1"]
        with web_hub(tmp_path, "--web-consent", f"origins:{origin}",
                     web_listen="tcp:21012:interface=127.0.0.1") as hub:
            out["web_url"] = hub.web_url
            contexts = chromium_context(tmp_path / "profile", extra_args=args,
                                        ignore_https_errors=True)
            context = next(contexts)
            try:
                page = context.new_page()
                page.goto(f"{origin}/page.html")
                out["blocked"] = [wait_state(page), page.evaluate("window.error"),
                                  page.text_content("#why")]
                out["log_before_grant"] = hub.log()
                plain = context.new_page()
                plain.goto(f"http://{PUBLIC}:{plain_port}/page.html")
                out["plain"] = [wait_state(plain), plain.evaluate("window.error")]
                context.grant_permissions(["local-network-access"], origin=origin)
                allowed = context.new_page()
                allowed.goto(f"{origin}/page.html")
                out["granted"] = wait_state(allowed)
            finally:
                contexts.close()
        out["log"] = hub.log()
    return out


NETNS = """import json, subprocess, sys
from pathlib import Path
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
sys.path.insert(0, sys.argv[1])
from web.test_consent_browser import public_page_checks
print("RESULT " + json.dumps(public_page_checks(Path(sys.argv[2]))))
"""


def test_public_https_page_needs_the_local_network_permission(tmp_path):
    """A page on a public https origin (a test certificate for public.test, which the
    browser is told is a public address), served in a private network namespace with
    the hub on the standard port, is blocked by Chromium's Local Network Access check
    until the user grants the permission: the JS client says lna-blocked and the hub
    never sees the request.  After the grant it registers with the default hub URL.
    A public plain-http page is always blocked."""
    peers.require_peer("unshare -n", _private_network)
    tests = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([shutil.which("unshare") or "unshare", "-n", sys.executable, "-c",
                             NETNS, tests, str(tmp_path)],
                            capture_output=True, text=True, timeout=240)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["web_url"] == "http://127.0.0.1:21012/"
    state, error, why = out["blocked"]
    assert state == "error:lna-blocked", out["log"]
    assert error["details"]["permission"] in ("prompt", "denied")
    assert error["details"]["hubUrl"] == "http://127.0.0.1:21012/"
    assert "local network access" in why
    assert "registration of" not in out["log_before_grant"]  # the hub never saw it
    state, error = out["plain"]
    assert state == "error:lna-blocked" and error["details"]["secureContext"] is False
    assert out["granted"].startswith("registered:"), out["log"]
    assert f"from '{out['origin']}' accepted" in out["log"]
