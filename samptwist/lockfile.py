"""
The Standard Profile lockfile: where it is, what it says, and writing it
safely (checklist STD-LOCK-*, STD-LOCKFMT-*, STD-LOCKSEC-*).
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional
from urllib.parse import unquote, urlparse

from ._log import Logger
from .errors import LockfileError

log = Logger()

LOCKURL_PREFIX = "std-lockurl:"
_NAME = re.compile(r"[a-zA-Z0-9_.\-]+\Z")
#: where hubs started with C{mode="multiple"} write their lockfiles, under
#: the home directory, and how those files' names start (astropy's and
#: pyvo's convention, which their clients search).
MULTIPLE_DIRECTORY = ".samp-1"
MULTIPLE_PREFIX = "samp-hub"

REQUIRED = ("samp.secret", "samp.hub.xmlrpc.url", "samp.profile.version")


@dataclass
class LockInfo:
    """
    The contents of a lockfile.

    @ivar secret: C{samp.secret}, needed to register.
    @ivar url: C{samp.hub.xmlrpc.url}, the hub's XML-RPC endpoint.
    @ivar profile_version: C{samp.profile.version}.
    @ivar extra: every other key, in file order.
    """

    secret: str
    url: str
    profile_version: str = "1.3"
    extra: Dict[str, str] = field(default_factory=dict)


def parse_lockfile(text: str, source: str = "lockfile") -> LockInfo:
    """
    Parse lockfile text tolerantly: comments and blank lines are skipped, any
    line ending is accepted, and malformed lines are ignored with a warning.

    @raise LockfileError: if a required key is missing.
    """
    values: Dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not _NAME.match(name):
            log.warn("{source}:{number}: ignoring malformed line", source=source, number=number)
            continue
        values[name] = value
    missing = [key for key in REQUIRED if key not in values]
    if missing:
        raise LockfileError(
            f"{source} lacks {', '.join(missing)}; it is not a usable SAMP lockfile "
            f"(delete it if no hub is running)"
        )
    return LockInfo(
        secret=values.pop("samp.secret"),
        url=values.pop("samp.hub.xmlrpc.url"),
        profile_version=values.pop("samp.profile.version"),
        extra=values,
    )


def format_lockfile(info: LockInfo) -> str:
    """
    Render C{info} as lockfile text: one comment, then C{name=value} lines,
    no blank lines and no trailing spaces (so that astropy's strict reader
    copes with it).
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# SAMP Standard Profile lockfile written by samptwist at {stamp}"]
    items = {
        "samp.secret": info.secret,
        "samp.hub.xmlrpc.url": info.url,
        "samp.profile.version": info.profile_version,
        **info.extra,
    }
    for name, value in items.items():
        if not _NAME.match(name) or "\n" in value or "\r" in value:
            raise ValueError(f"cannot write lockfile entry {name!r}={value!r}")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def new_secret() -> str:
    """
    @return: a fresh, unguessable registration secret (256 bits).
    """
    return secrets.token_urlsafe(32)


def home_directory(environ: Optional[Mapping[str, str]] = None) -> Path:
    """
    @return: the user's home directory: C{USERPROFILE} on Windows, else
        C{HOME}, else what the OS says.
    """
    env = os.environ if environ is None else environ
    if os.name == "nt" and env.get("USERPROFILE"):
        return Path(env["USERPROFILE"])
    if env.get("HOME"):
        return Path(env["HOME"])
    return Path.home()


def lockfile_url(environ: Optional[Mapping[str, str]] = None) -> str:
    """
    Where clients look for the lockfile (STD-LOCK-1..3).

    @return: the URL after C{std-lockurl:} in C{SAMP_HUB}, or a C{file:} URL
        of C{~/.samp}.
    @raise LockfileError: if C{SAMP_HUB} names another profile.
    """
    env = os.environ if environ is None else environ
    value = env.get("SAMP_HUB")
    if value:
        if value.startswith(LOCKURL_PREFIX):
            return value[len(LOCKURL_PREFIX):]
        raise LockfileError(
            f"SAMP_HUB={value!r} is not a Standard Profile setting "
            f"(expected {LOCKURL_PREFIX}URL)"
        )
    return (home_directory(env) / ".samp").as_uri()


def path_from_url(url: str) -> Path:
    """
    @return: the local path of a C{file:} URL (or a bare path).
    @raise LockfileError: for any other kind of URL.
    """
    parsed = urlparse(url)
    if parsed.scheme == "":
        return Path(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise LockfileError(f"lockfile URL {url!r} is not a local file: URL")
    return Path(unquote(parsed.path))


def hub_lockfile_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """
    Where a hub writes its lockfile when not told otherwise: the file named by
    C{SAMP_HUB=std-lockurl:file:...}, else C{~/.samp} (STD-LOCK-4).

    @raise LockfileError: if C{SAMP_HUB} names a non-file URL or another
        profile.
    """
    return path_from_url(lockfile_url(environ))


def read_lockfile(path: Path) -> LockInfo:
    """
    Read and parse the lockfile at C{path}.

    @raise LockfileError: if it does not exist, cannot be read or is broken.
    """
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise LockfileError(f"no SAMP hub is running: lockfile {path} does not exist") from None
    except OSError as e:
        raise LockfileError(f"cannot read lockfile {path}: {e.strerror}") from None
    return parse_lockfile(text, str(path))


def _write_temp(path: Path, text: str) -> Path:
    temp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return temp


def create_exclusive(path: Path, info: LockInfo) -> bool:
    """
    Create the lockfile at C{path} atomically with mode 0600, complete from
    the moment it appears, unless a file is already there.

    @return: C{True} if this call created it, C{False} if one existed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp(path, format_lockfile(info))
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    return True


def replace_if_unchanged(path: Path, stale: LockInfo, info: LockInfo) -> bool:
    """
    Replace a stale lockfile, but only if it still holds C{stale}'s secret
    (another hub may have replaced it meanwhile).

    @return: C{True} if C{info} is now in the file.
    """
    path = Path(path)
    try:
        current = read_lockfile(path)
    except LockfileError:
        current = None
    if current is not None and current.secret != stale.secret:
        return False
    if current is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return create_exclusive(path, info)


def remove_if_own(path: Path, secret: str) -> bool:
    """
    Delete the lockfile if it still holds C{secret} (STD-LOCKSEC-4).

    @return: whether it was deleted.
    """
    path = Path(path)
    try:
        current = read_lockfile(path)
    except LockfileError:
        return False
    if not secrets.compare_digest(current.secret, secret):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
