"""
Headless Chromium for tests: Debian's /usr/bin/chromium driven by Playwright
(never a downloaded browser).  Missing Chromium or Playwright: the test is
skipped, or fails when CI is set (tests/peers.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import peers

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server", "--host-resolver-rules=MAP evil.test 127.0.0.1"]


def _chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        raise LookupError(f"no {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


def chromium_context(profile_dir: Path, extra_args: Sequence[str] = (),
                     **options: Any) -> Iterator[Any]:
    """
    Yield a persistent Playwright browser context of a fresh headless
    Chromium (with C{extra_args} and context C{options}); closed
    afterwards.  Use from a fixture.
    """
    peers.require_peer("chromium", _chromium)
    sync_api = peers.require_peer("playwright", lambda: __import__(
        "playwright.sync_api", fromlist=["sync_playwright"]))
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile_dir), executable_path=CHROMIUM, headless=True,
            args=[*FLAGS, *extra_args], chromium_sandbox=False, **options)
        try:
            yield context
        finally:
            context.close()
