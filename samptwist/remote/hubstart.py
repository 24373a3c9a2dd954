"""
Starting a hub on the far side when none is running: our hub, as its own
process (C{python -m samptwist hub --no-web}), detached so that it outlives
the link (the notebook's clients stay registered across reconnections),
writing the lockfile every SAMP client there looks for (C{SAMP_HUB}, else
C{~/.samp}).  This module only starts the process; it does not import the
hub.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, List, Optional

from ..lockfile import hub_lockfile_path

#: where the started hub logs, next to the lockfile
LOG_NAME = ".samptwist-remote-hub.log"


class HubStartError(Exception):
    """
    The hub could not be started.
    """


def hub_argv(lockfile: Optional[str]) -> List[str]:
    """
    @return: the command line of the hub to start.
    """
    argv = [sys.executable, "-m", "samptwist", "hub", "--no-web", "--label", "samptwist remote"]
    if lockfile is not None:
        argv += ["--lockfile", str(lockfile)]
    return argv


def start_hub(lockfile: Optional[str] = None) -> subprocess.Popen:
    """
    Start a hub in its own session, logging to L{LOG_NAME} beside its
    lockfile.

    @return: the process (not waited for).
    @raise HubStartError: if it cannot be run.
    """
    path = Path(lockfile) if lockfile is not None else hub_lockfile_path()
    log_path = path.parent / LOG_NAME
    try:
        log = open(log_path, "ab")  # noqa: SIM115 (the child keeps it)
    except OSError as e:
        raise HubStartError(f"cannot write {log_path}: {e.strerror}") from None
    try:
        return subprocess.Popen(hub_argv(lockfile), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    except OSError as e:
        raise HubStartError(f"cannot run the hub: {e}") from None
    finally:
        log.close()


def log_tail(lockfile: Optional[str] = None, lines: int = 5) -> str:
    """
    @return: the last lines of the started hub's log, on one line.
    """
    path = Path(lockfile) if lockfile is not None else hub_lockfile_path()
    try:
        text = (path.parent / LOG_NAME).read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


def running(proc: Any) -> bool:
    """
    @return: whether the started hub process is still running.
    """
    return proc.poll() is None
