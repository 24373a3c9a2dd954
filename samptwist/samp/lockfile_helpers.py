"""
pyvo.samp's lockfile helpers (C{pyvo.samp.lockfile_helpers}), on
samptwist's lockfile code: files are written atomically with mode 0600, and
a lockfile is only replaced when the hub it names does not answer.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..client.lockfiles import (
    check_running_hub,
    get_main_running_hub,
    get_running_hubs,
    main_lockfile_name,
    read_lockfile,
)
from ..errors import SAMPWarning
from ..lockfile import (
    MULTIPLE_DIRECTORY,
    MULTIPLE_PREFIX,
    LockInfo,
    create_exclusive,
    home_directory,
    path_from_url,
)

__all__ = [
    "check_running_hub",
    "create_lock_file",
    "get_main_running_hub",
    "get_running_hubs",
    "read_lockfile",
    "remove_garbage_lock_files",
    "write_lockfile",
]


def write_lockfile(lockfilename: Union[str, Path], lockfiledict: Mapping[str, Any]) -> None:
    """
    Write C{lockfiledict} (which must hold C{samp.secret} and
    C{samp.hub.xmlrpc.url}) as a lockfile, mode 0600, replacing any file
    there.

    @raise KeyError: if a required key is missing.
    """
    entries = {k: str(v) for k, v in lockfiledict.items()}
    info = LockInfo(
        secret=entries.pop("samp.secret"),
        url=entries.pop("samp.hub.xmlrpc.url"),
        profile_version=entries.pop("samp.profile.version", "1.3"),
        extra=entries,
    )
    path = Path(lockfilename)
    if path.exists():
        path.unlink()
    create_exclusive(path, info)


def _dead(path: Path) -> bool:
    return path.is_file() and not check_running_hub(str(path))[0]


def remove_garbage_lock_files() -> None:
    """
    Delete C{~/.samp} and C{~/.samp-1/samp-hub-*} lockfiles whose hubs do
    not answer.
    """
    home = home_directory()
    candidates = [home / ".samp"]
    directory = home / MULTIPLE_DIRECTORY
    if directory.is_dir():
        candidates += [p for p in directory.iterdir() if p.name.startswith(MULTIPLE_PREFIX)]
    for path in candidates:
        if _dead(path):
            try:
                path.unlink()
            except OSError:
                pass


def create_lock_file(lockfilename: Optional[str] = None, mode: Optional[str] = None,
                     hub_id: Optional[str] = None,
                     hub_params: Optional[Mapping[str, Any]] = None) -> Union[str, bool]:
    """
    Write a hub's lockfile where pyvo would: C{SAMP_HUB}'s file, else
    C{lockfilename}, else C{~/.samp} (C{mode="single"}) or
    C{~/.samp-1/samp-hub-HUB_ID} (C{mode="multiple"}).

    @return: the lockfile's name, or C{False} (with a L{SAMPWarning}) if a
        running hub already owns it.
    """
    remove_garbage_lock_files()
    if os.environ.get("SAMP_HUB"):
        name = str(path_from_url(main_lockfile_name()))
    elif lockfilename is not None:
        name = str(lockfilename)
    elif mode == "multiple":
        directory = home_directory() / MULTIPLE_DIRECTORY
        directory.mkdir(mode=0o700, exist_ok=True)
        name = str(directory / f"{MULTIPLE_PREFIX}-{hub_id}")
    else:
        name = str(home_directory() / ".samp")
    if check_running_hub(name)[0]:
        warnings.warn("Another SAMP Hub is already running. Start-up process aborted.",
                      SAMPWarning, stacklevel=2)
        return False
    write_lockfile(name, dict(hub_params or {}))
    return name
