"""
Starting and stopping a hub from Python code on a running reactor::

    hub = await start_hub(reactor, lockfile="/tmp/test.samp", web=False)
    ...
    await hub.stop()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from twisted.internet.defer import Deferred, ensureDeferred

from ..constants import DEFAULT_LISTEN, DEFAULT_WEB_LISTEN
from ..lockfile import read_lockfile
from .service import HubService


@dataclass
class RunningHub:
    """
    A hub started by L{start_hub}.

    @ivar service: the L{HubService}.
    @ivar lockfile: its lockfile's path.
    @ivar url: its Standard Profile XML-RPC URL.
    @ivar secret: its registration secret.
    """

    service: HubService
    lockfile: Path
    url: str
    secret: str
    _trigger: Any = None

    @property
    def params(self) -> Dict[str, str]:
        """
        The lockfile's entries (C{samp.secret}, C{samp.hub.xmlrpc.url}, ...),
        as pyvo's C{hub_params} has them.
        """
        info = read_lockfile(self.lockfile)
        return {
            "samp.secret": info.secret,
            "samp.hub.xmlrpc.url": info.url,
            "samp.profile.version": info.profile_version,
            **info.extra,
        }

    @property
    def samp_hub(self) -> str:
        """
        The C{SAMP_HUB} value that points clients at this hub.
        """
        return "std-lockurl:" + self.lockfile.as_uri()

    @property
    def is_running(self) -> bool:
        return bool(self.service.running) and not self.service.has_stopped

    def _reactor_stopping(self) -> Deferred:
        self._trigger = None  # it is firing: nothing to remove
        return self.stop()

    def stop(self) -> Deferred:
        """
        Stop the hub.

        @return: a L{Deferred} firing once C{samp.hub.event.shutdown} was sent
            (subscribers had up to the shutdown grace to take it), the port is
            closed and the lockfile removed.  It never fails.
        """
        if self._trigger is not None:
            self.service.reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
        if not self.service.running:
            return self.service.when_stopped()
        return self.service.stopService()


def start_hub(
    reactor: Any = None,
    *,
    listen: str = DEFAULT_LISTEN,
    lockfile: Union[str, Path, None] = None,
    secret: Optional[str] = None,
    web: bool = False,
    web_listen: str = DEFAULT_WEB_LISTEN,
    web_consent: Any = None,
    **options: Any,
) -> Deferred:
    """
    Start a hub on C{reactor} (which must be running, or run soon).

    @param listen: Standard Profile endpoint string.
    @param lockfile: lockfile path; default: C{SAMP_HUB}'s file, else
        C{~/.samp}.  A private path lets a script or test suite run its own hub
        beside the user's desktop hub.
    @param secret: fixed registration secret (default: random).
    @param web: run the Web Profile too, on C{web_listen}, with consent
        policy C{web_consent} (an object or a C{--web-consent} string).
    @param options: further L{HubService} keyword arguments
        (C{callback_timeout}, C{max_failures}, C{shutdown_grace}, C{label},
        C{hub_timeout}, C{client_timeout}, C{max_request_size}).
    @return: a L{Deferred} firing with a L{RunningHub} once the lockfile is
        written (the hub also stops cleanly when the reactor stops), or
        failing with L{samptwist.errors.HubAlreadyRunning} if a live hub owns
        the lockfile (or with the listening error).
    """
    if reactor is None:
        from twisted.internet import reactor  # type: ignore[no-redef]
    service = HubService(
        reactor,
        listen=listen,
        lockfile=Path(lockfile) if lockfile is not None else None,
        secret=secret,
        web_listen=web_listen if web else None,
        web_consent=web_consent,
        **options,
    )
    service.startService()

    async def started() -> RunningHub:
        try:
            await service.when_ready()
        except BaseException:
            await service.stopService()
            raise
        assert service.url is not None
        hub = RunningHub(service, service.lockfile, service.url, service.secret)
        # Stopping the reactor stops the hub cleanly (event sent, lockfile removed).
        hub._trigger = reactor.addSystemEventTrigger("before", "shutdown", hub._reactor_stopping)
        return hub

    return ensureDeferred(started())
