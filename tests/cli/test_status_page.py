"""
The hub's live status page in real headless Chromium (Debian /usr/bin/chromium
via Playwright): clients with icons and metadata, subscriptions, messages and
replies with timings, counters, live updates; and its protections (key, Host,
no CORS, nosniff) checked on the wire.  A screenshot goes to test-artifacts/.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import peers
import pytest
from browser import chromium_context

from samptwist.statuspage import status_url

from .conftest import ok, run_cli

pytestmark = pytest.mark.interop

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser(tmp_path):
    yield from chromium_context(tmp_path / "chromium-profile")


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_status_page_protections(our_hub):
    url = status_url(our_hub.url, our_hub.secret)
    assert url in our_hub.log_text()  # offered in the ready line
    cp = run_cli(our_hub.env, "clients", "--status-url")
    assert cp.stdout.strip() == url
    code, headers, body = fetch(url)
    assert code == 200 and b"<table id=\"clients\">" in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "Access-Control-Allow-Origin" not in headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    state = url.replace("/status?", "/status/state.json?")
    code, headers, body = fetch(state, {"Origin": "http://evil.example"})
    assert code == 200 and "Access-Control-Allow-Origin" not in headers
    for text in (our_hub.secret, "samp.private-key", "m-"):
        assert text.encode() not in body  # no secret, no keys, no msg-ids
    assert fetch(url.split("?")[0])[0] == 403  # no key
    assert fetch(url[:-4] + "0000")[0] == 403  # wrong key
    port = our_hub.url.split(":")[2].split("/")[0]
    assert fetch(url, {"Host": f"rebind.example:{port}"})[0] == 403  # DNS rebinding
    assert fetch(state, {"Sec-Fetch-Site": "cross-site"})[0] == 403


def test_status_page_in_chromium(our_hub, browser, make_peer):
    """Shows clients (icon, metadata, subscriptions), then messages and replies
    with timings and counters as they pass, without reloading."""
    page = browser.new_page()
    page.goto(status_url(our_hub.url, our_hub.secret))
    page.wait_for_selector("#feed.live", timeout=15000)
    assert page.text_content("#hub-name") == "samptwist"
    assert page.get_attribute('#clients tr[data-id="hub"] img', "src").endswith("/icon.svg")

    viewer = make_peer(our_hub, "table viewer", calls={"table.load.votable": ok()})
    viewer.client.declare_metadata({"samp.name": "table viewer",
                                    "samp.description.text": "shows tables",
                                    "samp.icon.url": "data:image/svg+xml,<svg/>"})
    row = f'#clients tr[data-id="{viewer.id}"]'
    page.wait_for_selector(f"{row} td.meta:has-text('shows tables')", timeout=15000)
    assert "table.load.votable" in page.text_content(f"{row} td.subs")
    assert page.get_attribute(f"{row} img", "src").startswith("data:image/svg+xml")

    cp = run_cli(our_hub.env, "send", "table.load.votable", "url=file:///tmp/t.vot",
                 "--wait", "20")
    assert cp.returncode == 0, peers.describe_run(cp, our_hub)
    page.wait_for_selector('#log tr[data-kind="reply"]', timeout=15000)
    reply = page.text_content('#log tr[data-kind="reply"]')
    assert "table.load.votable" in reply and "table viewer" in reply and "samp.ok" in reply
    ms = page.text_content('#log tr[data-kind="reply"] td:last-child')
    assert re.fullmatch(r"\d+\.\d", ms), ms
    call = page.text_content('#log tr[data-kind="call"]')
    assert "samptwist send" in call and "table viewer" in call
    assert "file:///tmp/t.vot" not in page.content()  # parameters are never shown
    assert int(page.text_content('[data-counter="calls"]')) >= 1
    assert int(page.text_content('[data-counter="replies"]')) >= 1

    viewer.close()
    page.wait_for_selector(row, state="detached", timeout=15000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.check("#show-hub-events")
    page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)
