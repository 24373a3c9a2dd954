"""
Fixtures shared by the whole suite.

Every test runs with HOME pointing at a fresh temporary directory and without
SAMP_HUB, so nothing ever reads or writes the user's real ~/.samp.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """
    Give each test its own HOME (and USERPROFILE) and clear SAMP_HUB.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    java = os.environ.get("JAVA_TOOL_OPTIONS", "")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"{java} -Duser.home={home}".strip())
    return home


@pytest.fixture(autouse=True)
def no_unhandled_errors():
    """
    Fail a test that left a Deferred failing unseen ("Unhandled error in
    Deferred") or let an exception escape to the reactor ("Unhandled Error"),
    as magic-wormhole's suite does.  Failures our code logs on purpose (a
    handler that raised, say) are not counted.  Garbage collection runs first
    so that lost Deferreds report in time.
    """
    import gc

    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    errors = []

    def observe(event):
        if event.get("log_level") not in (LogLevel.error, LogLevel.critical):
            return
        text = str(event.get("log_format") or "") + " " + formatEvent(event)[:200]
        if "Unhandled error in Deferred" in text or "Unhandled Error" in text:
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(observe)
    if errors:
        texts = []
        for event in errors:
            failure = event.get("log_failure")
            texts.append(formatEvent(event) + ("\n" + failure.getTraceback() if failure else ""))
        pytest.fail("unhandled errors were logged:\n" + "\n---\n".join(texts)[-6000:],
                    pytrace=False)
