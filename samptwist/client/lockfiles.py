"""
Blocking hub discovery for the pyvo-style facade: read a lockfile (a path or
a URL), ping the hub it names, list the running hubs of the single-hub
(C{~/.samp}, or C{SAMP_HUB}) and multiple-hub (C{~/.samp-1/samp-hub-*})
conventions, as pyvo.samp's clients find them.
"""

from __future__ import annotations

import os
import urllib.request
import xmlrpc.client
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from ..errors import SAMPHubError
from ..lockfile import (
    LOCKURL_PREFIX,
    MULTIPLE_DIRECTORY,
    MULTIPLE_PREFIX,
    home_directory,
    parse_lockfile,
    path_from_url,
)
from .serverproxy import SAMPXXEServerProxy


def read_lockfile(lockfilename: Union[str, Path]) -> Dict[str, str]:
    """
    @param lockfilename: a path, or a C{file:}/C{http(s):} URL.
    @return: the lockfile's entries as a dict.
    @raise OSError: if it cannot be read.
    @raise samptwist.errors.LockfileError: if it is not a SAMP lockfile.
    """
    name = str(lockfilename)
    if name.startswith(("http://", "https://")):
        with urllib.request.urlopen(name, timeout=10) as answer:  # noqa: S310
            text = answer.read().decode("utf-8", "replace")
    else:
        text = path_from_url(name).read_text(encoding="utf-8")
    info = parse_lockfile(text, name)
    return {
        "samp.secret": info.secret,
        "samp.hub.xmlrpc.url": info.url,
        "samp.profile.version": info.profile_version,
        **info.extra,
    }


def check_running_hub(lockfilename: Union[str, Path],
                      timeout: float = 5.0) -> Tuple[bool, Dict[str, str]]:
    """
    @return: C{(running, entries)}: whether the hub named by the lockfile
        answers C{samp.hub.ping} (an HTTP error counts as alive), and the
        lockfile's entries (empty if unreadable).
    """
    try:
        entries = read_lockfile(lockfilename)
    except (OSError, ValueError):
        return False, {}
    url = entries.get("samp.hub.xmlrpc.url", "").replace("\\", "")
    if not url:
        return False, entries
    try:
        SAMPXXEServerProxy(url, timeout=timeout).samp.hub.ping()
    except xmlrpc.client.ProtocolError:
        return True, entries
    except xmlrpc.client.Fault:
        return True, entries
    except (OSError, ValueError, xmlrpc.client.Error):
        return False, entries
    return True, entries


def main_lockfile_name(environ: Optional[Dict[str, str]] = None) -> str:
    """
    @return: the lockfile a client reads: C{SAMP_HUB}'s URL, else C{~/.samp}.
    @raise SAMPHubError: if C{SAMP_HUB} names another profile.
    """
    env = os.environ if environ is None else environ
    value = env.get("SAMP_HUB")
    if value:
        if not value.startswith(LOCKURL_PREFIX):
            raise SAMPHubError(f"SAMP_HUB={value!r}: only the Standard Profile is supported")
        return value[len(LOCKURL_PREFIX):]
    return str(home_directory(env) / ".samp")


def get_running_hubs() -> Dict[str, Dict[str, str]]:
    """
    @return: lockfile name to entries, for every running hub found: the main
        one (L{main_lockfile_name}) and those in C{~/.samp-1}.
    """
    hubs: Dict[str, Dict[str, str]] = {}
    candidates = [main_lockfile_name()]
    directory = home_directory() / MULTIPLE_DIRECTORY
    if directory.is_dir():
        candidates += sorted(
            str(p) for p in directory.iterdir() if p.name.startswith(MULTIPLE_PREFIX)
        )
    for name in candidates:
        running, entries = check_running_hub(name)
        if running:
            hubs[name] = entries
    return hubs


def get_main_running_hub() -> Dict[str, str]:
    """
    @return: the entries of the hub a client should use (C{SAMP_HUB}'s, else
        C{~/.samp}'s).
    @raise SAMPHubError: if that hub is not running.
    """
    name = main_lockfile_name()
    running, entries = check_running_hub(name)
    if not running:
        raise SAMPHubError(
            f"Unable to find a running SAMP Hub (no live hub named by {name}); start one "
            "with 'twistd -n samphub' or samptwist.samp.SAMPHubServer"
        )
    return entries
