"""
Page origins the user chose to always allow ("Always allow" on the hub's
status page): a small JSON file in the user's configuration directory,
C{$XDG_CONFIG_HOME/samptwist/web-origins.json} (default
C{~/.config/samptwist/web-origins.json}), mode 0600.

The file is re-read when it changes on disk, so C{samptwist web forget}
run while no hub is up, or a hand edit, takes effect at the next request.
A file that another user owns, or that others may write, is ignored with a
warning: nobody else may add origins to your hub.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..._log import Logger
from .consent import normalize_origin

log = Logger()

FILE_NAME = "web-origins.json"
#: origins kept at most (the file stays small)
MAX_ORIGINS = 200


def config_dir() -> Path:
    """
    @return: samptwist's directory in the user's configuration directory
        (C{$XDG_CONFIG_HOME/samptwist}, else C{~/.config/samptwist}).
    """
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "samptwist"


def default_path() -> Path:
    """
    @return: where remembered origins are kept by default.
    """
    return config_dir() / FILE_NAME


class RememberedOrigins:
    """
    The set of always-allowed page origins, kept in C{path}.

    @ivar path: the file.
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._origins: Dict[str, Dict[str, str]] = {}
        self._seen: Optional[Tuple[int, int, int]] = None

    # -- reading -----------------------------------------------------------

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._origins, self._seen = {}, None
            return
        except OSError as e:
            log.warn("cannot read {path}: {e}; no origins remembered", path=self.path, e=e)
            self._origins, self._seen = {}, None
            return
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if signature == self._seen:
            return
        self._seen = signature
        self._origins = {}
        if hasattr(os, "getuid") and (
            st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            log.warn(
                "ignoring {path}: it must belong to you and be writable by you only "
                "(chmod 600)",
                path=self.path,
            )
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data.get("origins", {}) if isinstance(data, dict) else {}
        except (OSError, ValueError, UnicodeDecodeError) as e:
            log.warn("ignoring unreadable {path}: {e}", path=self.path, e=e)
            return
        if not isinstance(entries, dict):
            return
        for origin, info in list(entries.items())[:MAX_ORIGINS]:
            normal = normalize_origin(origin)
            if normal is None:
                continue
            info = info if isinstance(info, dict) else {}
            self._origins[normal] = {
                k: str(v) for k, v in info.items() if k in ("name", "since")
            }

    def __contains__(self, origin: object) -> bool:
        if not isinstance(origin, str):
            return False
        normal = normalize_origin(origin)
        if normal is None:
            return False
        self._refresh()
        return normal in self._origins

    def entries(self) -> List[Dict[str, str]]:
        """
        @return: C{{"origin", "name", "since"}} for each remembered origin,
            sorted by origin (C{name} is the page's claimed name when it
            was allowed).
        """
        self._refresh()
        return [
            {"origin": origin, "name": info.get("name", ""), "since": info.get("since", "")}
            for origin, info in sorted(self._origins.items())
        ]

    # -- writing -----------------------------------------------------------

    def add(self, origin: str, name: str = "") -> str:
        """
        Remember C{origin}.

        @return: the normalized origin.
        @raise ValueError: if C{origin} is not an http(s) origin, or too many
            are remembered.
        @raise OSError: if the file cannot be written.
        """
        normal = normalize_origin(origin)
        if normal is None:
            raise ValueError(f"{origin!r} is not a page origin (http[s]://host[:port])")
        self._refresh()
        if normal not in self._origins and len(self._origins) >= MAX_ORIGINS:
            raise ValueError(f"too many remembered origins ({MAX_ORIGINS}); forget some first")
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._origins[normal] = {"name": name[:200], "since": since}
        self._save()
        return normal

    def remove(self, origin: str) -> bool:
        """
        Forget C{origin}.

        @return: whether it was remembered.
        @raise OSError: if the file cannot be written.
        """
        normal = normalize_origin(origin) or origin
        self._refresh()
        if normal not in self._origins:
            return False
        del self._origins[normal]
        self._save()
        return True

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {
            "comment": "Page origins allowed to use the SAMP Web Profile without asking "
            "(samptwist web origins / forget).",
            "origins": self._origins,
        }
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._seen = None  # re-read our own write (and its signature) next time


def describe_entries(entries: List[Dict[str, Any]]) -> List[str]:
    """
    @return: one line per remembered origin, for terminals.
    """
    return [
        f"{e['origin']}  (allowed {e.get('since') or '?'}"
        + (f" for {e['name']!r})" if e.get("name") else ")")
        for e in entries
    ]
