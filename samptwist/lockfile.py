"""
The Standard Profile lockfile: where it is, what it says, and writing it
safely (checklist STD-LOCK-*, STD-LOCKFMT-*, STD-LOCKSEC-*).
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional
from urllib.parse import unquote, urlparse

from ._log import Logger
from ._net import file_url_is_local
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


def parse_lockfile(text: str, source: str = "lockfile", warn: bool = True) -> LockInfo:
    """
    Parse lockfile text tolerantly: comments and blank lines are skipped, any
    line ending is accepted, and malformed lines are ignored (with a warning
    if C{warn}).

    @raise LockfileError: if a required key is missing.
    """
    values: Dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not _NAME.match(name):
            if not warn:
                continue
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
    if parsed.scheme != "file" or not file_url_is_local(parsed.netloc):
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
    # O_EXCL: a new file, never an existing one or a symlink's target.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("ascii"))
        # No fsync: other processes see the whole file as soon as it is
        # linked into place (the page cache is theirs too), and durability
        # buys nothing, as a lockfile describes a live process: after a
        # crash it names a hub that no longer answers, whatever the disk
        # kept, and the next hub replaces it (stale, or truncated).  A
        # flush would block the reactor on the disk at every start (1-6 ms
        # here, far more on a busy disk).
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


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
#: a lockfile is a few hundred bytes; a larger file there is not one
MAX_LOCKFILE_SIZE = 64 * 1024


@dataclass
class LockfileState:
    """
    What is at a lockfile's path, as a hub about to start sees it (symlinks
    are never followed).

    @ivar kind: C{"missing"}; C{"valid"} (L{info} is set); C{"broken"}
        (a regular file that is not a usable lockfile: empty, truncated,
        garbage, too large); C{"symlink"}; C{"unreadable"} (a regular file
        this user cannot read); C{"other"} (a directory, FIFO, socket...).
    @ivar detail: why, in words, for logs and refusals.
    @ivar info: the parsed lockfile, for C{"valid"}.
    """

    kind: str
    detail: str = ""
    info: Optional[LockInfo] = None
    identity: Optional[tuple] = None

    def same_file(self, other: LockfileState) -> bool:
        """
        @return: whether C{other} saw the very same, unchanged file.
        """
        return self.identity is not None and self.identity == other.identity


def _identity(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def inspect_lockfile(path: Path) -> LockfileState:
    """
    Look at C{path} without following a symlink and without blocking (a
    FIFO there is reported, not opened for reading).

    @return: a L{LockfileState}.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return LockfileState("missing", f"{path} does not exist")
    except OSError as e:
        return LockfileState("unreadable", f"cannot examine {path}: {e.strerror}")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return LockfileState(
            "symlink", f"is a symbolic link (to {target}), not a lockfile", identity=_identity(st)
        )
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return LockfileState("other", f"is {what}", identity=_identity(st))
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        return LockfileState("missing", f"{path} does not exist")
    except OSError as e:
        if e.errno == errno.ELOOP:  # became a symlink meanwhile
            return inspect_lockfile(path)
        return LockfileState("unreadable", f"cannot be read ({e.strerror})", identity=_identity(st))
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            return inspect_lockfile(path)  # replaced meanwhile: look again
        data = os.read(fd, MAX_LOCKFILE_SIZE + 1)
    except OSError as e:
        return LockfileState("unreadable", f"cannot be read ({e.strerror})", identity=_identity(st))
    finally:
        os.close(fd)
    identity = _identity(opened)
    if not data:
        return LockfileState("broken", "is empty", identity=identity)
    if len(data) > MAX_LOCKFILE_SIZE:
        return LockfileState(
            "broken", f"is over {MAX_LOCKFILE_SIZE} bytes, not a lockfile", identity=identity
        )
    try:
        info = parse_lockfile(data.decode("ascii", errors="replace"), str(path), warn=False)
    except LockfileError:
        return LockfileState(
            "broken",
            f"is not a usable lockfile (it lacks {' or '.join(REQUIRED)}: truncated or garbage)",
            identity=identity,
        )
    return LockfileState("valid", "", info, identity)


def replace_stale(path: Path, stale: LockfileState, info: LockInfo) -> bool:
    """
    Replace what L{inspect_lockfile} found at C{path} (a stale or broken
    lockfile, or a symlink) with a new lockfile holding C{info}, safely:
    the old entry is renamed aside (a symlink is moved, never followed or
    written through), and if what was moved is not the file judged stale
    (another hub replaced it meanwhile) it is put back and nothing is
    written.  The new file is created as by L{create_exclusive}.

    @return: C{True} if C{info} is now in the file; C{False} if another hub
        got there first (inspect again).
    """
    path = Path(path)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(6)}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return create_exclusive(path, info)
    try:
        moved = os.lstat(aside)
        if _identity(moved) != stale.identity:
            try:  # not what we judged: give it back
                os.link(aside, path, follow_symlinks=False)
            except FileExistsError:
                pass
            return False
        return create_exclusive(path, info)
    finally:
        os.unlink(aside)


def remove_if_own(path: Path, secret: str) -> bool:
    """
    Delete the lockfile if it still holds C{secret} (STD-LOCKSEC-4).

    @return: whether it was deleted.
    """
    path = Path(path)
    current = inspect_lockfile(path).info  # never through a symlink
    if current is None or not secrets.compare_digest(current.secret, secret):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
