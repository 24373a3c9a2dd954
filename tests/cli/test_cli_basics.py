"""
``samptwist --help``, each subcommand's ``--help``, and the one-line errors:
bad arguments, no hub, a dead hub, unknown client names (CLI-LIB-1 discovery,
STD-LOCK-1/3), through the entry point as a subprocess.  The subcommands'
own behaviour is tested in-process in test_cli_inprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from samptwist.cli import SUBCOMMANDS

from .conftest import ROOT, cli_env, one_line_error, run_cli


def test_help_lists_every_subcommand():
    cp = run_cli(dict(os.environ), "--help")
    assert cp.returncode == 0, cp.stderr
    for name in SUBCOMMANDS:
        assert f"    {name} " in cp.stdout or f"    {name}\n" in cp.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name):
    cp = run_cli(dict(os.environ), name, "--help")
    assert cp.returncode == 0, cp.stderr
    assert "usage" in cp.stdout.lower()
    if name != "hub":
        assert "--lockfile" in cp.stdout
    else:
        assert "--listen" in cp.stdout and "--web-consent" in cp.stdout


def test_console_script_and_module_agree():
    """The [project.scripts] entry point is samptwist.cli:main, as python -m runs."""
    from importlib.metadata import entry_points

    scripts = [e for e in entry_points(group="console_scripts") if e.name == "samptwist"]
    assert scripts and scripts[0].value == "samptwist.cli:main"


@pytest.mark.parametrize("args, text", [
    # through the entry point: the parser, a subcommand's own check, the hub's
    # options; the other cases run in-process in test_cli_inprocess (bridge,
    # which does not take an output stream yet, stays here)
    ((), "the following arguments are required: COMMAND"),
    (("bridge", "a", "b", "--map", "nomapping"), "expected A_PREFIX=B_PREFIX"),
    (("ping", "--count", "0"), "--count must be at least 1"),
    (("remote",), "give either [USER@]HOST or --via COMMAND"),
    (("remote", "far", "--via", "cat"), "give either [USER@]HOST or --via COMMAND"),
    (("remote", "far", "--max-rate", "0"), "must be positive"),
    (("hub", "--max-failures", "many"), "--max-failures needs a whole number"),
])
def test_bad_arguments_one_line_status_2(args, text, isolated_home):
    cp = run_cli(dict(os.environ), *args)
    line = one_line_error(cp, code=2)
    assert text in line


def test_no_hub_running(isolated_home):
    """No ~/.samp (HOME is a fresh directory): one line, status 1 (STD-LOCK-3).
    Every subcommand's case runs in-process in test_cli_inprocess; this one
    goes through the entry point."""
    cp = run_cli(dict(os.environ), "clients")
    line = one_line_error(cp)
    assert "no SAMP hub is running" in line and str(isolated_home / ".samp") in line


def test_dead_hub_and_explicit_lockfile(tmp_path, isolated_home):
    """A lockfile naming a hub that is gone: one line, status 1 (STD-LOCKSEC-3)."""
    lock = tmp_path / "dead.samp"
    lock.write_text("samp.secret=abc\nsamp.hub.xmlrpc.url=http://127.0.0.1:9/xmlrpc\n"
                    "samp.profile.version=1.3\n")
    cp = run_cli(dict(os.environ), "clients", "--lockfile", str(lock))
    line = one_line_error(cp)
    assert "does not answer" in line and "127.0.0.1:9" in line
    env = dict(os.environ, SAMP_HUB=f"std-lockurl:{lock.as_uri()}")
    line = one_line_error(run_cli(env, "ping"))
    assert "does not answer" in line



def test_a_command_started_with_sigint_ignored_still_stops_on_it(our_hub):
    """A script's background job (`samptwist snoop &`) inherits SIGINT ignored;
    the command restores it, so `kill -INT` stops it cleanly."""

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "samptwist", "snoop"], env=cli_env(our_hub.env), cwd=str(ROOT),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=ignore_sigint,
    )
    try:
        assert proc.stderr is not None
        line = ""
        for _ in range(200):  # bounded: until the "registered as" line
            line = proc.stderr.readline()
            if "registered as" in line or not line:
                break
        assert "registered as" in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
