"""
URL control for the translator (WEB-URL-3, WEB-SEC-2, notes 17-18).

The hub remembers, per web client, which URLs a trusted (non-web) client
mentioned in traffic delivered to it: message parameters, responses and
metadata.  Only those URLs may be fetched through the translator.  A URL
that any web client mentioned first (in what it sent) is blocked for good,
so a page cannot get a desktop application to echo back a URL of its
choosing and then read it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Iterator, Optional, Set
from urllib.parse import urlsplit

from ..._log import Logger
from ..._net import translator_host_is_local

_URL = re.compile(r"(?i)(https?|file):[^\s]+\Z")

#: Schemes the translator fetches.
SCHEMES = ("http", "https", "file")

#: Longest string treated as a URL.
MAX_URL = 8192


def find_urls(value: Any, limit: int = 1000, _depth: int = 0) -> Iterator[str]:
    """
    Yield the http, https and file URLs among the strings inside a SAMP
    value (at most C{limit} of them).
    """
    stack = [value]
    found = 0
    while stack and found < limit:
        item = stack.pop()
        if isinstance(item, str):
            if 5 < len(item) <= MAX_URL and _URL.match(item):
                found += 1
                yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class UrlTracker:
    """
    The hub-wide set of URLs web clients mentioned first (blocked), and the
    per-client sets of URLs trusted clients sent them (permitted).

    Sets are bounded: beyond C{max_urls} entries the oldest permitted URLs
    are forgotten (they then simply cannot be translated); blocked URLs are
    never forgotten silently (a warning is logged once the limit is hit).
    """

    log = Logger()

    def __init__(self, max_urls: int = 10_000, max_blocked: int = 100_000) -> None:
        self.max_urls = max_urls
        self.max_blocked = max_blocked
        self.blocked: Set[str] = set()
        self._warned = False

    def new_permitted(self) -> OrderedDict[str, None]:
        """
        @return: an empty permitted-URL set for a new web client.
        """
        return OrderedDict()

    def outgoing(self, value: Any, permitted: OrderedDict[str, None]) -> None:
        """
        A web client sent C{value}: block every URL in it that was not
        delivered to that client by a trusted client before.
        """
        for url in find_urls(value):
            if url in permitted or url in self.blocked:
                continue
            if len(self.blocked) >= self.max_blocked:
                if not self._warned:
                    self._warned = True
                    self.log.warn(
                        "Web Profile URL block list full ({n} URLs); further URLs sent by web "
                        "clients are not recorded",
                        n=self.max_blocked,
                    )
                return
            self.blocked.add(url)

    def incoming(self, value: Any, permitted: OrderedDict[str, None]) -> None:
        """
        A trusted client's C{value} was delivered to a web client: permit
        that client to translate the URLs in it (unless blocked).
        """
        for url in find_urls(value):
            if url in self.blocked:
                continue
            permitted[url] = None
            permitted.move_to_end(url)
            while len(permitted) > self.max_urls:
                permitted.popitem(last=False)

    def check(self, url: str, permitted: OrderedDict[str, None]) -> Optional[str]:
        """
        @return: C{None} if C{url} may be translated for a client whose
            permitted set is C{permitted}, else the reason it may not.
        """
        try:
            parts = urlsplit(url)
        except ValueError:
            return "malformed URL"
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            return f"the translator does not fetch {scheme or 'scheme-less'}: URLs"
        if url in self.blocked:
            return "this URL was first mentioned by a web page, so it stays blocked"
        if url not in permitted:
            what = "file: URLs" if scheme == "file" else "URLs"
            return (
                f"the translator only fetches {what} that a desktop (Standard Profile) "
                "application sent to this page"
            )
        return None

    def redirect_allowed(self, url: str, permitted: OrderedDict[str, None]) -> Optional[str]:
        """
        @return: C{None} if the translator may follow a redirect to C{url}
            (an http/https URL on a public host, or a permitted URL), else
            the reason it may not.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return "malformed redirect URL"
        if parts.scheme.lower() not in ("http", "https"):
            return "redirect to a non-http URL"
        if url in self.blocked:
            return "redirect to a blocked URL"
        if url in permitted:
            return None
        if translator_host_is_local(host):
            return "redirect to this machine or a private network address"
        return None
