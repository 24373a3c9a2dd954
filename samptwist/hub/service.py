"""
The hub as a L{twisted.application} service: the core, the Standard Profile
site on its endpoint, and the lockfile, composed in one L{MultiService} that
twistd runs or another Twisted program embeds.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import LogLevel

from .._httpclient import Answer, HTTPClient
from .._log import Logger, get_level
from .._net import url_host
from .._oneshot import OneShot
from .._version import __version__
from .._xmlrpc import Fault, NotXmlRpc, encode_call, parse_params
from ..constants import DEFAULT_LISTEN
from ..errors import HubAlreadyRunning, LockfileError
from ..lockfile import (
    LockInfo,
    create_exclusive,
    hub_lockfile_path,
    inspect_lockfile,
    new_secret,
    remove_if_own,
    replace_stale,
)
from ..statuspage import status_url
from .activity import ActivityMonitor
from .core import Hub
from .delivery import CallbackCaller
from .fastlane import FastLaneChannel
from .httpguard import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_REQUEST, ConnectionLimiter, GuardedSite
from .limits import DEFAULT_LIMITS, Limits
from .pages import HubRoot
from .standard import StandardProfile
from .status import StatusMonitor, StatusResource


class PlainTCP(NamedTuple):
    """What C{reactor.listenTCP} needs for a C{tcp:} or C{tcp6:} endpoint."""

    port: int
    interface: str
    backlog: int


#: an endpoint string's separators: the colons not escaped with a backslash
_FIELD = re.compile(r"(?<!\\):")


def plain_tcp(description: str) -> Optional[PlainTCP]:
    """
    Read a C{tcp:} or C{tcp6:} server endpoint string that names only a
    port, C{interface=} and C{backlog=} (the hub's default,
    C{tcp:0:interface=127.0.0.1}, and what users write), so that the hub
    can listen on it without L{twisted.internet.endpoints}, which imports
    pyOpenSSL and cryptography wherever they are installed.

    @return: the port, interface and backlog (Twisted's defaults: every
        IPv4 interface for C{tcp:}, every IPv6 one for C{tcp6:}, backlog
        50), or C{None} for any other string, which is left to
        L{serverFromString<twisted.internet.endpoints.serverFromString>}.
    """
    kind, *fields = _FIELD.split(description)
    if kind not in ("tcp", "tcp6") or not fields:
        return None
    values = {"interface": "" if kind == "tcp" else "::", "backlog": "50"}
    if "=" not in fields[0]:
        values["port"] = fields.pop(0)
    for field in fields:
        name, equals, value = field.partition("=")
        value = value.replace("\\:", ":")
        if not equals or name not in ("port", "interface", "backlog") or "\\" in value:
            return None  # other options or escapes: Twisted's parser knows them
        values[name] = value
    try:
        port, backlog = int(values["port"]), int(values["backlog"])
    except (KeyError, ValueError):
        return None
    if not 0 <= port <= 65535 or backlog <= 0:
        return None
    return PlainTCP(port, values["interface"], backlog)


def listen(reactor: Any, description: str, factory: Any) -> Deferred[Any]:
    """
    Listen on server endpoint string C{description}.

    @return: a L{Deferred} firing with the listening port, or failing with
        L{CannotListenError<twisted.internet.error.CannotListenError>} (or
        the endpoint parser's C{ValueError}).
    """
    tcp = plain_tcp(description)
    if tcp is not None:
        return defer.execute(
            reactor.listenTCP, tcp.port, factory, backlog=tcp.backlog, interface=tcp.interface
        )
    # Any other kind (unix:, ssl:, systemd:, a plugin's): Twisted's parser.
    from twisted.internet.endpoints import serverFromString

    return defer.execute(serverFromString, reactor, description).addCallback(
        lambda endpoint: endpoint.listen(factory)
    )


def ping_hub(reactor: Any, url: str, timeout: float = 2.0) -> Deferred:
    """
    Ask the hub at C{url} for C{samp.hub.ping}.

    @return: a L{Deferred} firing with C{True} if an XML-RPC server answered
        (even with a fault), C{False} if nothing usable did within
        C{timeout} seconds.
    """
    http = HTTPClient(reactor, timeout=timeout, user_agent="samptwist-hub")
    d = http.post(url, encode_call("samp.hub.ping", ()), keepalive=False)

    def answered(answer: Answer) -> bool:
        try:
            parse_params(answer.body)
        except Fault:
            return True
        except NotXmlRpc:
            return False
        return True

    d.addCallbacks(answered, lambda _: False)
    return d


class QuietSite(GuardedSite):
    """
    The Standard Profile's site: request lines logged only at debug level;
    plain XML-RPC POSTs to C{fast_lane}'s path take the fast lane
    (L{FastLaneChannel}).

    @ivar fast_lane: C{(path, resource)}: the endpoint the lane serves.
    """

    log_ = Logger()
    protocol = FastLaneChannel  # type: ignore[assignment]
    fast_lane: Optional[Any] = None

    def log(self, request: Any) -> None:
        if get_level() == LogLevel.debug:
            line = self._logFormatter(self._logDateTime, request)
            self.log_.debug("{line}", line=line)


class LockfileService(Service):
    """
    Owns the hub's lockfile: L{acquire} creates it once the hub's URL is
    known, and L{stopService} deletes it if it is still ours.
    """

    log = Logger()

    def __init__(self, reactor: Any, path: Path, secret: str) -> None:
        self.reactor = reactor
        self.path = Path(path)
        self.secret = secret
        self.owned = False
        #: seconds a broken lockfile must stay unchanged before it is replaced
        self.settle_time = 0.5
        #: further lockfile keys (e.g. hub.label)
        self.extra: Dict[str, str] = {}

    @inlineCallbacks
    def acquire(self, url: str) -> Any:
        """
        Write the lockfile for the hub at C{url}: create it atomically with
        mode 0600.  If one exists, ping the hub it names and replace it only
        if that hub does not answer; replace an empty, truncated or garbage
        file (once it has stayed unchanged for L{settle_time}) and a symlink
        (the link, never what it points to).  See L{replace_stale}.

        @return: a L{Deferred} firing when the file is written, or failing
            with L{HubAlreadyRunning} (a live hub owns it) or
            L{LockfileError} (a directory or unreadable file is in the way,
            the file cannot be written, or it keeps changing), each with a
            one-line reason.
        """
        info = LockInfo(
            secret=self.secret,
            url=url,
            profile_version="1.3",
            extra={
                "hub.impl": f"samptwist {__version__}",
                "hub.pid": str(os.getpid()),
                "hub.start.date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
                **self.extra,
            },
        )
        path = self.path
        for _ in range(10):
            try:
                if create_exclusive(path, info):
                    self.owned = True
                    return
            except OSError as e:
                raise LockfileError(f"cannot write lockfile {path}: {e.strerror}") from None
            state = inspect_lockfile(path)
            if state.kind == "missing":
                continue  # removed meanwhile: try again
            if state.kind in ("other", "unreadable"):
                raise LockfileError(
                    f"lockfile {path} {state.detail}; remove it, or choose another "
                    "lockfile (--lockfile or SAMP_HUB)"
                )
            if state.kind == "broken":
                # Another hub may be writing it non-atomically: give it a
                # moment, and replace it only if it stayed the same.
                yield deferLater(self.reactor, self.settle_time, lambda: None)
                if not inspect_lockfile(path).same_file(state):
                    continue
                reason = state.detail
            elif state.kind == "valid":
                assert state.info is not None
                if (yield ping_hub(self.reactor, state.info.url)):
                    raise HubAlreadyRunning(state.info.url, str(path))
                reason = f"names a hub at {state.info.url} that does not answer"
            else:
                reason = state.detail
            self.log.warn("lockfile {path} {reason}; replacing it", path=path, reason=reason)
            if replace_stale(path, state, info):
                self.owned = True
                return
        raise LockfileError(
            f"lockfile {path} kept changing while this hub tried to replace it "
            "(other hubs starting at the same moment?); try again"
        )

    def stopService(self) -> None:
        super().stopService()
        if self.owned and remove_if_own(self.path, self.secret):
            self.log.info("removed lockfile {path}", path=self.path)
        self.owned = False


class HubService(MultiService):
    """
    A complete SAMP hub.

    Add it to an application (or call C{startService}); L{when_ready}
    fires with the service once the hub listens and its lockfile is written,
    or fails with L{HubAlreadyRunning}.  C{stopService} notifies
    C{samp.hub.event.shutdown}, closes the port and removes the lockfile;
    L{when_stopped} fires after that.  Each call of L{when_ready} or
    L{when_stopped} (and each read of the L{ready} / L{stopped}
    properties) returns a new Deferred: what one consumer's callbacks return
    does not change what another receives.

    @ivar hub: the L{Hub} core.
    @ivar url: the Standard Profile XML-RPC URL, once listening.
    @ivar lockfile: where the lockfile is written.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any = None,
        *,
        listen: str = DEFAULT_LISTEN,
        lockfile: Optional[Path] = None,
        secret: Optional[str] = None,
        callback_timeout: float = 30.0,
        max_failures: int = 3,
        shutdown_grace: float = 5.0,
        max_request_size: Optional[int] = DEFAULT_MAX_REQUEST,
        web_listen: Optional[str] = None,
        web_consent: Any = None,
        web_options: Optional[Dict[str, Any]] = None,
        label: str = "",
        hub_timeout: float = 0,
        client_timeout: float = 0,
        limits: Limits = DEFAULT_LIMITS,
        max_connections: int = 0,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        """
        @param limits: what one client may hold (L{Limits}).
        @param max_connections: most HTTP connections open at once to the
            Standard and Web Profile sites together (0: from the file
            descriptor limit); see L{ConnectionLimiter}.
        @param idle_timeout: seconds after which an idle connection to
            either site is closed.
        @param label: a human-readable name, written to the lockfile as
            C{hub.label}.
        @param hub_timeout: stop the hub after this many seconds without any
            client call (0: never).
        @param client_timeout: unregister clients that make no hub call for
            this many seconds (0: never).
        @param web_listen: endpoint of the Web Profile (e.g.
            C{tcp:21012:interface=127.0.0.1}); C{None}: no Web Profile.
        @param web_consent: an L{IConsentPolicy} or C{--web-consent} string
            (C{None}: C{auto}).
        @param web_options: further L{WebProfileService} keyword arguments.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor  # type: ignore[no-redef]
        self.reactor = reactor
        self.listen = listen
        self.lockfile = Path(lockfile) if lockfile is not None else hub_lockfile_path()
        self.secret = secret or new_secret()
        self.shutdown_grace = shutdown_grace
        self.hub = Hub(reactor, max_failures=max_failures, limits=limits)
        self.caller = CallbackCaller(reactor, timeout=callback_timeout)
        self.standard = StandardProfile(self.hub, self.secret, self.caller)
        self.root = HubRoot(self.hub)
        self.status = StatusMonitor(self.hub, reactor)
        self.status.setServiceParent(self)
        self.root.putChild(b"status", StatusResource(self.status, self.secret))
        self.root.putChild(b"xmlrpc", self.standard)
        self.site = QuietSite(self.root, timeout=idle_timeout, reactor=reactor)
        self.site.max_request_size = max_request_size
        self.site.fast_lane = (b"/xmlrpc", self.standard)
        #: shared by both sites: they share the process's file descriptors
        self.limiter = ConnectionLimiter(max_connections)
        self.site.limiter = self.limiter
        self.lock_service = LockfileService(reactor, self.lockfile, self.secret)
        if label:
            self.lock_service.extra["hub.label"] = label
        self.lock_service.setServiceParent(self)
        self.activity = ActivityMonitor(
            self.hub, hub_timeout, client_timeout, on_hub_timeout=self._idle
        )
        self.activity.setServiceParent(self)
        self._stopped: OneShot[None] = OneShot()
        self.web: Optional[Any] = None
        if web_listen is not None:
            from .web.service import WebProfileService

            self.web = WebProfileService(
                self.hub, reactor, listen=web_listen, consent=web_consent, **(web_options or {})
            )
            self.web.site.max_request_size = max_request_size
            self.web.site.limiter = self.limiter
            self.web.site.timeOut = idle_timeout
            self.web.setServiceParent(self)
            self.status.attach_consent(self.web.consent)
        self.url: Optional[str] = None
        self._ready: OneShot[HubService] = OneShot()
        self._port: Any = None

    def when_ready(self) -> Deferred[HubService]:
        """
        @return: a new L{Deferred} firing with this service once the hub
            listens and its lockfile is written (at once if it is already),
            or failing with L{HubAlreadyRunning}, L{LockfileError} or the
            listening error.
        """
        return self._ready.observe()

    def when_stopped(self) -> Deferred[None]:
        """
        @return: a new L{Deferred} firing with C{None} once C{stopService}
            has completed (at once if it has already); it never fails.
        """
        return self._stopped.observe()

    @property
    def ready(self) -> Deferred[HubService]:
        """
        A new L{Deferred} on each access: the same as L{when_ready}.
        """
        return self.when_ready()

    @property
    def stopped(self) -> Deferred[None]:
        """
        A new L{Deferred} on each access: the same as L{when_stopped}.
        """
        return self.when_stopped()

    @property
    def has_stopped(self) -> bool:
        """
        C{True} once C{stopService} has completed.
        """
        return self._stopped.called

    def startService(self) -> None:
        super().startService()
        # Start once the reactor runs: under twistd, startService is called
        # before the reactor installs its signal handlers, and a lockfile
        # must never exist while SIGTERM would still kill us uncleanly.
        self.reactor.callWhenRunning(self._begin)

    def _begin(self) -> None:
        if not self.running:
            return
        d = defer.ensureDeferred(self._start())
        d.addCallbacks(self._started, self._start_failed)

    async def _start(self) -> HubService:
        self._port = await listen(self.reactor, self.listen, self.site)
        address = self._port.getHost()
        base = f"http://{url_host(getattr(address, 'host', '127.0.0.1'))}:{address.port}/"
        self.url = base + "xmlrpc"
        self.hub.hub_client.metadata.setdefault("samp.icon.url", base + "icon.svg")
        self.hub.hub_client.metadata.setdefault("samp.documentation.url", base)
        await self.lock_service.acquire(self.url)
        return self

    def _started(self, _: Any) -> None:
        default = self.lockfile == Path.home() / ".samp"
        if self.web is not None and hasattr(self.web.consent, "answer_at"):
            self.web.consent.answer_at = status_url(self.url or "", self.secret)
        self.log.info(
            "SAMP hub ready at {url} (lockfile {lockfile}); status page {status}{hint}",
            url=self.url,
            lockfile=self.lockfile,
            status=status_url(self.url or "", self.secret),
            hint="" if default else f"; clients need SAMP_HUB=std-lockurl:{self.lockfile.as_uri()}",
            log_always=True,
        )
        self._ready.fire(self)

    def _start_failed(self, failure: Any) -> None:
        if self._port is not None:
            self._port.stopListening()
            self._port = None
        if self.web is not None and self.web.running:
            self.web.stopService()  # the hub did not start: free its port too
        self.hub.running = False
        self._ready.fail(failure)

    def _idle(self) -> None:
        if self.running:
            self.stopService()

    @inlineCallbacks
    def stopService(self) -> Any:
        if self._stopped.called:
            return
        yield self.hub.shutdown(self.shutdown_grace)
        if self._port is not None:
            port, self._port = self._port, None
            yield port.stopListening()
        yield MultiService.stopService(self)
        yield self.caller.close()
        self.log.info("hub stopped")
        if not self._stopped.called:
            self._stopped.fire(None)
