"""
L{WebProfileService}: the Web Profile site on its own endpoint, a child of
L{samptwist.hub.service.HubService}.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import serverFromString

from ..._log import Logger
from ..._net import is_loopback_address, url_host
from ..._oneshot import OneShot
from ...constants import DEFAULT_WEB_LISTEN  # the standard endpoint (WEB-HTTP-1)
from ..core import Hub
from .consent import IConsentPolicy, consent_from_spec
from .profile import WebProfile
from .restrict import SAFE_MTYPES, MessageRestriction
from .site import WebProfileSite, WebRoot
from .translator import Translator


class WebProfileService(Service):
    """
    Runs the Web Profile for a L{Hub}.

    If the endpoint cannot be bound (typically: another hub's Web Profile
    already has port 21012), one error line is logged and the hub goes on
    without a Web Profile; the Standard Profile is not affected.  An
    endpoint that is not on a loopback interface is refused the same way.

    L{when_ready} (or the L{ready} property) hands each caller a new
    Deferred firing with the service once listening, or with C{None} if it
    could not listen; it never fails.
    @ivar url: C{http://127.0.0.1:PORT/} once listening.
    """

    log = Logger()

    def __init__(
        self,
        hub: Hub,
        reactor: Any,
        *,
        listen: str = DEFAULT_WEB_LISTEN,
        consent: Union[IConsentPolicy, str, None] = None,
        allow_mtypes: Iterable[str] = (),
        restrict_mtypes: bool = True,
        legacy_policies: bool = False,
        **profile_options: Any,
    ) -> None:
        """
        @param consent: an L{IConsentPolicy}, or a C{--web-consent} string
            (see L{consent_from_spec}); C{None} means C{"auto"}.
        @param allow_mtypes: MType patterns web clients may send besides
            L{SAFE_MTYPES}.
        @param restrict_mtypes: C{False} lifts the MType restriction.
        @param legacy_policies: serve permissive C{/crossdomain.xml} and
            C{/clientaccesspolicy.xml} (off: they only widen access).
        @param profile_options: passed to L{WebProfile} (C{idle_timeout},
            C{max_queue}, C{max_pull_wait}, ...) and, for C{max_size} and
            C{fetch_timeout}, to the L{Translator}.
        @raise ValueError: for a bad consent spec or MType pattern.
        """
        self.hub = hub
        self.reactor = reactor
        self.listen = listen
        if consent is None or isinstance(consent, str):
            consent = consent_from_spec(consent, reactor)
        self.consent: IConsentPolicy = consent
        wait = profile_options.get("consent_timeout")
        if wait is not None and wait > 0 and consent.timeout is not None:
            # The policy refuses after its own wait (and says so); the
            # profile's timer only backs it up.
            consent.timeout = wait
            profile_options["consent_timeout"] = wait + 5.0
        translator_options = {
            "max_size": profile_options.pop("max_size", None),
            "timeout": profile_options.pop("fetch_timeout", None),
            "agent": profile_options.pop("agent", None),
        }
        self.profile = WebProfile(
            hub,
            consent,
            reactor,
            restriction=MessageRestriction(SAFE_MTYPES, allow_mtypes, restrict_mtypes),
            **profile_options,
        )
        self.translator = Translator(
            reactor,
            self.profile.tracker,
            self.profile.for_token,
            **{k: v for k, v in translator_options.items() if v is not None},
        )
        self.root = WebRoot(self.profile, self.translator, legacy_policies)
        self.site = WebProfileSite(self.root)
        self.url: Optional[str] = None
        self._ready: OneShot[Optional[WebProfileService]] = OneShot()
        self._port: Any = None

    def when_ready(self) -> Deferred[Optional[WebProfileService]]:
        """
        @return: a new L{Deferred} firing with this service once it listens,
            or with C{None} if it could not (at once if either happened
            already); it never fails.
        """
        return self._ready.observe()

    @property
    def ready(self) -> Deferred[Optional[WebProfileService]]:
        """
        A new L{Deferred} on each access: the same as L{when_ready}.
        """
        return self.when_ready()

    def startService(self) -> None:
        super().startService()
        d = serverFromString(self.reactor, self.listen).listen(self.site)
        d.addCallbacks(self._listening, self._cannot_listen)

    def _listening(self, port: Any) -> None:
        self._port = port
        address = port.getHost()
        host = getattr(address, "host", "")
        if not is_loopback_address(host):
            self._port = None
            port.stopListening()
            self.log.error(
                "Web Profile NOT started: {listen} is not a loopback interface; the Web "
                "Profile only listens on 127.0.0.1 or ::1",
                listen=self.listen,
            )
            self._ready.fire(None)
            return
        self.root.port = self.profile.port = address.port
        self.url = f"http://{url_host(host)}:{address.port}/"
        self.log.info(
            "SAMP Web Profile ready at {url} (consent: {consent})",
            url=self.url,
            consent=self.consent.describe(),
        )
        self._ready.fire(self)

    def _cannot_listen(self, failure: Any) -> None:
        self.log.error(
            "Web Profile NOT started: cannot listen on {listen}: {why} (is another SAMP hub's "
            "Web Profile running?); the Standard Profile runs without it",
            listen=self.listen,
            why=failure.getErrorMessage(),
        )
        self._ready.fire(None)

    @inlineCallbacks
    def stopService(self) -> Any:
        super().stopService()
        self.consent.close()
        self.profile.close()
        if self._port is not None:
            port, self._port = self._port, None
            yield port.stopListening()
