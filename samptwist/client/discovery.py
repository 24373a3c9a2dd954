"""
Finding a hub (STD-LOCK-1..5): an explicit URL and secret, an explicit
lockfile, C{SAMP_HUB=std-lockurl:URL} (C{file:} or C{http:}), or C{~/.samp}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Union
from urllib.parse import urlparse

import treq
from twisted.internet.defer import Deferred, succeed

from ..errors import LockfileError
from ..lockfile import LockInfo, lockfile_url, parse_lockfile, path_from_url, read_lockfile


def lockfile_location(
    lockfile: Union[str, Path, None] = None, environ: Optional[Mapping[str, str]] = None
) -> str:
    """
    @return: the URL of the lockfile a client should read: C{lockfile} if
        given (a path or URL), else what C{SAMP_HUB} or C{~/.samp} says.
    @raise LockfileError: if C{SAMP_HUB} names another profile.
    """
    if lockfile is not None:
        text = str(lockfile)
        if urlparse(text).scheme in ("file", "http", "https"):
            return text
        return Path(text).absolute().as_uri()
    return lockfile_url(environ)


def find_hub(
    reactor: Any = None,
    *,
    lockfile: Union[str, Path, None] = None,
    url: Optional[str] = None,
    secret: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    timeout: float = 10.0,
) -> Deferred:
    """
    Say where the hub is.

    @param url: the hub's XML-RPC URL; with C{secret}, skips the lockfile.
    @param lockfile: a lockfile path or URL to read instead of the default.
    @param timeout: seconds allowed for fetching an C{http:} lockfile.
    @return: a L{Deferred} firing with a L{LockInfo}, or failing with
        L{LockfileError} when no hub is running (no lockfile) or the
        lockfile is unusable.
    """
    if url is not None or secret is not None:
        if url is None or secret is None:
            raise ValueError("give both url and secret, or neither")
        return succeed(LockInfo(secret=secret, url=url))
    try:
        where = lockfile_location(lockfile, environ)
        scheme = urlparse(where).scheme
        if scheme in ("http", "https"):
            return _fetch(reactor, where, timeout)
        return succeed(read_lockfile(path_from_url(where)))
    except LockfileError as e:
        d: Deferred = Deferred()
        d.errback(e)
        return d


def _fetch(reactor: Any, url: str, timeout: float) -> Deferred:
    if reactor is None:
        from twisted.internet import reactor
    d = treq.get(url, reactor=reactor, timeout=timeout, persistent=False)

    def got(response: Any) -> Deferred:
        if response.code != 200:
            raise LockfileError(f"no SAMP hub: lockfile {url} answered HTTP {response.code}")
        return treq.text_content(response, encoding="ascii")

    def failed(f: Any) -> None:
        if f.check(LockfileError):
            f.raiseException()
        raise LockfileError(f"cannot fetch lockfile {url}: {f.getErrorMessage()}")

    d.addCallback(got)
    d.addCallback(parse_lockfile, url)
    d.addErrback(failed)
    return d
