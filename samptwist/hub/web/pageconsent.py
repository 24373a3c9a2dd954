"""
Consent asked on the hub's status page (C{--web-consent page}, and what
C{auto} does when the hub has no terminal): each registration request waits
in a list the status page shows live, with Allow once / Deny / Always allow
buttons, and that C{samptwist web} lists and answers.

A desktop notification (C{notify-send}, when installed) says which origin
asks; the hub's log always says where to answer.  Requests are refused when
nobody answers within C{timeout} seconds, when too many are waiting, and
when one origin asks too often (a page must not flood the user).
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional

from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import ProcessProtocol
from twisted.python.procutils import which
from zope.interface import implementer

from ..._log import Logger
from .consent import ConsentRequest, IConsentPolicy, normalize_origin, printable
from .remembered import RememberedOrigins

log = Logger()

#: seconds a request waits for an answer before it is refused
PAGE_TIMEOUT = 120.0
#: requests waiting at once, over all origins
MAX_PENDING = 10
#: requests waiting at once from one origin
MAX_PER_ORIGIN = 3
#: requests one origin may make per RATE_WINDOW seconds
RATE_LIMIT = 10
RATE_WINDOW = 60.0
#: what an origin-less request is filed under
UNKNOWN = "(unknown origin)"


@dataclass
class Pending:
    """
    One registration request waiting for the user.
    """

    id: str
    request: ConsentRequest
    asked: float
    expires: float
    deferred: Deferred
    timer: IDelayedCall

    @property
    def origin_key(self) -> str:
        return _origin_key(self.request)

    def view(self, now: float) -> Dict[str, Any]:
        """
        @return: what the status page and C{samptwist web} show (claims
            as received; the page escapes them when it renders them).
        """
        r = self.request
        return {
            "id": self.id,
            "name": r.name,
            "origin": r.origin,
            "origin_known": r.origin_known,
            "referer": r.referer,
            "referer_mismatch": r.referer_mismatch,
            "peer": r.peer,
            "time_left": round(max(0.0, self.expires - now), 1),
            "can_remember": r.origin_known,
        }


def _tell(level: str, request: ConsentRequest, what: str, **fields: Any) -> None:
    """
    Log C{"Web Profile registration of NAME from ORIGIN " + what}.
    """
    getattr(log, level)(
        "Web Profile registration of {name} from {origin} " + what,
        name=printable(request.name),
        origin=printable(request.origin),
        **fields,
    )


def _origin_key(request: ConsentRequest) -> str:
    if request.origin is None:
        return UNKNOWN
    return normalize_origin(request.origin) or UNKNOWN


class _Quiet(ProcessProtocol):
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def processEnded(self, reason: Any) -> None:
        code = getattr(reason.value, "exitCode", 0)
        if code:
            log.debug("notify-send exited with {code}", code=code)


@implementer(IConsentPolicy)
class StatusPageConsent:
    """
    Ask the user on the hub's status page (or with C{samptwist web}).

    @ivar answer_at: where to answer (the status page URL), set by the hub
        once it listens; used in the log line.
    @ivar remembered: the always-allowed origins.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        remembered: Optional[RememberedOrigins] = None,
        timeout: float = PAGE_TIMEOUT,
        max_pending: int = MAX_PENDING,
        max_per_origin: int = MAX_PER_ORIGIN,
        rate_limit: int = RATE_LIMIT,
        rate_window: float = RATE_WINDOW,
        notifier: Optional[str] = "auto",
        spawn: Optional[Callable[..., Any]] = None,
    ) -> None:
        """
        @param notifier: the C{notify-send} executable; C{"auto"} looks it
            up on C{PATH}, C{None} sends no desktop notification.
        @param spawn: C{reactor.spawnProcess} (tests pass a recorder).
        """
        self.reactor = reactor
        self.remembered = remembered if remembered is not None else RememberedOrigins()
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_per_origin = max_per_origin
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        if notifier == "auto":
            found = which("notify-send")
            notifier = found[0] if found else None
        self.notifier = notifier
        self._spawn = spawn
        self.answer_at = "the hub's status page (samptwist clients --status-url)"
        self._pending: Dict[str, Pending] = {}
        self._recent: Dict[str, Deque[float]] = {}
        self._seq = 0
        self._observers: List[Callable[[], None]] = []
        self._closed = False

    def describe(self) -> str:
        notify = "with desktop notifications" if self.notifier else "no desktop notifications"
        return (
            f"ask on the hub's status page or with 'samptwist web' (refuse after "
            f"{self.timeout:g}s; {notify}; always-allowed origins in {self.remembered.path})"
        )

    # -- what the status page reads ------------------------------------------

    def observe(self, observer: Callable[[], None]) -> None:
        """
        Call C{observer()} whenever the pending or remembered lists change.
        """
        self._observers.append(observer)

    def _changed(self) -> None:
        for observer in list(self._observers):
            try:
                observer()
            except Exception:
                log.failure("consent observer failed")

    def pending(self) -> List[Dict[str, Any]]:
        """
        @return: the waiting requests, oldest first (see L{Pending.view}).
        """
        now = self.reactor.seconds()
        return [p.view(now) for p in self._pending.values()]

    def origins(self) -> List[Dict[str, str]]:
        """
        @return: the always-allowed origins (L{RememberedOrigins.entries}).
        """
        try:
            return self.remembered.entries()
        except Exception:
            log.failure("cannot read remembered origins")
            return []

    def view(self) -> Dict[str, Any]:
        """
        @return: C{{"pending": [...], "origins": [...], "timeout": s}}.
        """
        return {"pending": self.pending(), "origins": self.origins(), "timeout": self.timeout}

    # -- questions -----------------------------------------------------------

    def request(self, request: ConsentRequest) -> Deferred:
        now = self.reactor.seconds()
        key = _origin_key(request)
        if self._closed:
            return self._refused(request, "the hub is stopping")
        if key != UNKNOWN and key in self.remembered:
            _tell("info", request, "accepted: origin always allowed (revoke on the status "
                  "page or with 'samptwist web forget')")
            return succeed(True)
        recent = self._recent.setdefault(key, collections.deque())
        while recent and recent[0] <= now - self.rate_window:
            recent.popleft()
        if len(recent) >= self.rate_limit:
            return self._refused(
                request, f"more than {self.rate_limit} requests in {self.rate_window:g}s"
            )
        recent.append(now)
        self._forget_quiet_origins(now)
        if len(self._pending) >= self.max_pending:
            return self._refused(request, f"{len(self._pending)} other requests are waiting")
        if sum(1 for p in self._pending.values() if p.origin_key == key) >= self.max_per_origin:
            return self._refused(request, f"{self.max_per_origin} requests of this origin wait")
        self._seq += 1
        ident = str(self._seq)
        d: Deferred = Deferred(lambda _: self._withdrawn(ident))
        timer = self.reactor.callLater(self.timeout, self._expired, ident)
        self._pending[ident] = Pending(ident, request, now, now + self.timeout, d, timer)
        log.warn(
            "Web page asks to use SAMP: {name} from {origin} (request {id}); answer on "
            "{where} or with 'samptwist web allow {id}' / 'samptwist web deny {id}' "
            "(refused in {timeout:g}s)",
            name=printable(request.name),
            origin=printable(request.origin),
            id=ident,
            where=self.answer_at,
            timeout=self.timeout,
        )
        self._notify(request)
        self._changed()
        return d

    def _forget_quiet_origins(self, now: float) -> None:
        if len(self._recent) > 1000:
            for origin in [o for o, times in self._recent.items() if not times or
                           times[-1] <= now - self.rate_window]:
                del self._recent[origin]

    def _refused(self, request: ConsentRequest, why: str) -> Deferred:
        _tell("warn", request, "refused: {why}", why=why)
        return succeed(False)

    def answer(self, ident: str, allow: bool, remember: bool = False) -> bool:
        """
        Answer request C{ident}.

        @param remember: with C{allow}, always allow its origin from now on
            (only for a real http(s) origin).
        @return: whether such a request was waiting.
        @raise ValueError: if C{remember} is asked for an unknown origin.
        @raise OSError: if the remembered origins cannot be saved (the
            request is then still waiting).
        """
        item = self._pending.get(ident)
        if item is None:
            return False
        if allow and remember:
            if not item.request.origin_known:
                raise ValueError("a page without a real origin cannot be always allowed")
            self.remembered.add(item.request.origin or "", item.request.name)
        del self._pending[ident]
        if item.timer.active():
            item.timer.cancel()
        verdict = ("allowed, origin remembered" if remember else "allowed once") if allow \
            else "denied"
        _tell("info", item.request, "{verdict} on the status page", verdict=verdict)
        self._changed()
        item.deferred.callback(bool(allow))
        return True

    def forget(self, origin: str) -> bool:
        """
        Stop always allowing C{origin}; takes effect at once.

        @return: whether it was remembered.
        @raise OSError: if the file cannot be written.
        """
        found = self.remembered.remove(origin)
        if found:
            log.info("origin {origin} no longer always allowed", origin=printable(origin))
            self._changed()
        return found

    def _expired(self, ident: str) -> None:
        item = self._pending.pop(ident, None)
        if item is None:
            return
        _tell("warn", item.request, "refused: no answer in {timeout:g}s", timeout=self.timeout)
        self._changed()
        item.deferred.errback(TimeoutError(f"no answer in {self.timeout:g}s"))

    def _withdrawn(self, ident: str) -> None:
        item = self._pending.pop(ident, None)
        if item is None:
            return
        if item.timer.active():
            item.timer.cancel()
        log.info(
            "Web Profile registration of {name} withdrawn before an answer",
            name=printable(item.request.name),
        )
        self._changed()

    def close(self) -> None:
        """
        Refuse every waiting request (the hub is stopping).
        """
        self._closed = True
        items, self._pending = list(self._pending.values()), {}
        for item in items:
            if item.timer.active():
                item.timer.cancel()
            if not item.deferred.called:
                item.deferred.callback(False)
        if items:
            self._changed()

    # -- desktop notification ------------------------------------------------

    def _notify(self, request: ConsentRequest) -> None:
        if self.notifier is None:
            return
        spawn = self._spawn or self.reactor.spawnProcess
        origin = printable(request.origin, 100)
        body = (
            f"{origin} (claims to be {printable(request.name, 60)}) asks to use SAMP. "
            "Answer on the hub's status page or with 'samptwist web'."
        )
        argv = [self.notifier, "--app-name=SAMP hub", "--expire-time=15000",
                "--", "SAMP: a web page asks to connect", body]
        try:
            spawn(_Quiet(origin), self.notifier, argv, env=dict(os.environ))
        except Exception as e:
            log.info("no desktop notification ({e})", e=e)
