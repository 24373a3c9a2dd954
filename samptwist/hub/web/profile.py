"""
The Web Profile: the hub's methods as an XML-RPC resource with the
C{samp.webhub.} prefix (WEB-HTTP-3/4): registration through a consent
policy, pull-model callbacks, and a thin table mapping every other method
onto the hub core.  What it keeps per client is in L{sessions}; what pages
may send, to whom, and see is its L{WebPolicy}, which the core consults.

Timings (documented in docs/web-profile.md):

  - a web client that makes no request for C{idle_timeout} seconds (default
    300; a parked C{pullCallbacks} counts as activity) is ejected with
    C{samp.hub.disconnect};
  - C{pullCallbacks} waits at most C{max_pull_wait} seconds (default 600);
  - at most C{max_queue} callbacks (default 1000) wait for one client; on
    overflow the client is ejected and the senders get delivery failures.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, maybeDeferred
from twisted.python.failure import Failure
from twisted.web import server, xmlrpc

from ..._log import Logger
from ..._xmlrpc import MethodTable, Procedure
from ...errors import SAMPHubError, SAMPValueError
from ...types import check_map, decode_int, samp_size
from ..checks import timeout_seconds
from ..core import Hub
from ..httpguard import reject_unsafe_xml
from ..limits import over_limit
from .access import request_host_name
from .consent import ConsentRequest, IConsentPolicy, printable
from .policy import WebPolicy
from .queue import MAX_QUEUE, WebCallbackQueue
from .restrict import MessageRestriction
from .sessions import WebClient, WebSessions
from .urls import UrlTracker

__all__ = ["WebClient", "WebProfile"]

PREFIX = "samp.webhub."

#: Default seconds without any request after which a web client is ejected.
IDLE_TIMEOUT = 300.0
#: Default longest C{pullCallbacks} wait, in seconds.
MAX_PULL_WAIT = 600.0
#: Default seconds an ejected client's leftover callbacks (its
#: C{samp.hub.disconnect}) stay available to one last C{pullCallbacks}.
TOMBSTONE_TIME = 120.0


class WebProfile(xmlrpc.XMLRPC):
    """
    The Web Profile XML-RPC endpoint of a L{Hub}.

    Every method answers its SAMP result or an XML-RPC fault whose
    faultString says what was wrong; methods without a SAMP result answer
    C{""}.

    @ivar port: the port the site listens on, for translator URLs (set by
        the service once listening).
    @ivar sessions: the registered web clients (L{WebSessions}).
    @ivar policy: what they may send and see (L{WebPolicy}), plugged into
        the hub core.
    """

    log = Logger()
    allowNone = False
    useDateTime = False

    def __init__(
        self,
        hub: Hub,
        consent: IConsentPolicy,
        reactor: Any,
        *,
        restriction: Optional[MessageRestriction] = None,
        tracker: Optional[UrlTracker] = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_queue: int = MAX_QUEUE,
        max_pull_wait: float = MAX_PULL_WAIT,
        max_clients: int = 100,
        max_consent_pending: int = 10,
        consent_timeout: float = 300.0,
        tombstone_time: float = TOMBSTONE_TIME,
    ) -> None:
        super().__init__(allowNone=False, useDateTime=False)
        self.hub = hub
        self.consent = consent
        self.reactor = reactor
        self.max_queue = max_queue
        self.max_pull_wait = max_pull_wait
        self.max_clients = max_clients
        self.max_consent_pending = max_consent_pending
        self.consent_timeout = consent_timeout
        self.port: Optional[int] = None
        self.sessions = WebSessions(hub, reactor, idle_timeout, tombstone_time)
        self.policy = WebPolicy(
            hub, self.sessions, restriction or MessageRestriction(), tracker or UrlTracker()
        )
        hub.set_policy("web", self.policy)
        self._consent_pending = 0
        self._web = self.sessions.for_key
        methods: Dict[str, Tuple[Callable[..., Any], int, int, bool]] = {
            "register": (self.register, 1, 1, True),
            "unregister": (self._plain(hub.unregister), 1, 1, False),
            "declareMetadata": (self._sending(hub.declare_metadata), 2, 2, False),
            "getMetadata": (self.getMetadata, 2, 2, False),
            "declareSubscriptions": (self._plain(hub.declare_subscriptions), 2, 2, False),
            "getSubscriptions": (self._plain(hub.get_subscriptions), 2, 2, False),
            "getRegisteredClients": (self._plain(hub.get_registered_clients), 1, 1, False),
            "getSubscribedClients": (self._plain(hub.get_subscribed_clients), 2, 2, False),
            "notify": (self._sending(hub.notify), 3, 3, False),
            "notifyAll": (self._sending(hub.notify_all), 2, 2, False),
            "call": (self._sending(hub.call), 4, 4, False),
            "callAll": (self._sending(hub.call_all), 3, 3, False),
            "callAndWait": (self.callAndWait, 4, 4, False),
            "reply": (self._sending(hub.reply), 3, 3, False),
            "ping": (lambda *key: "", 0, 1, False),
            "allowReverseCallbacks": (self.allowReverseCallbacks, 2, 2, False),
            "pullCallbacks": (self.pullCallbacks, 2, 2, True),
        }
        # Only callAndWait's Deferred is cancelled when the page hangs up; a
        # pull's callbacks stay queued for the next pull.
        self.table = MethodTable(
            PREFIX,
            {
                name: Procedure(f, low, high, with_request, name == "callAndWait")
                for name, (f, low, high, with_request) in methods.items()
            },
            "the SAMP Web Profile",
            refusals=(SAMPHubError,),
        )

    @property
    def restriction(self) -> MessageRestriction:
        """
        Which MTypes pages may send (the policy's).
        """
        return self.policy.restriction

    @property
    def tracker(self) -> UrlTracker:
        """
        Which URLs pages may have translated (the policy's).
        """
        return self.policy.tracker

    @property
    def clients(self) -> List[WebClient]:
        """
        The registered web clients.
        """
        return self.sessions.clients

    def for_token(self, token: str) -> Optional[WebClient]:
        """
        @return: the web client whose translator token is C{token}, or
            C{None} (compared in constant time).
        """
        return self.sessions.for_token(token)

    def close(self) -> None:
        """
        Forget leftover state (the hub is stopping).
        """
        self.sessions.close()

    # -- the method table ----------------------------------------------------

    def _plain(self, method: Callable[..., Any]) -> Callable[..., Any]:
        # A core method for web clients' keys only; None answers "".
        def web_method(private_key: Any, *args: Any) -> Any:
            self._web(private_key)
            result = method(private_key, *args)
            return "" if result is None else result

        return web_method

    def _sending(self, method: Callable[..., Any]) -> Callable[..., Any]:
        # Like _plain, for methods whose last argument is content the page
        # sends (metadata, message, response): URL tracking (WEB-URL-3).
        def web_method(private_key: Any, *args: Any) -> Any:
            state = self._web(private_key)
            result = method(private_key, *args)
            self.policy.outgoing(state, args[-1])
            return "" if result is None else result

        return web_method

    def getMetadata(self, private_key: Any, client_id: Any) -> Dict[str, Any]:
        state = self._web(private_key)
        metadata = self.hub.get_metadata(private_key, client_id)
        self.policy.received(state, self.hub.client_by_id(client_id), metadata)
        return metadata

    def callAndWait(
        self, private_key: Any, recipient_id: Any, message: Any, timeout: Any
    ) -> Deferred:
        """
        @return: a L{Deferred} firing with the response map, or failing with
            L{SAMPHubError} on timeout.
        """
        state = self._web(private_key)
        d = self.hub.call_and_wait(private_key, recipient_id, message, timeout)
        self.policy.outgoing(state, message)
        responder = self.hub.client_by_id(recipient_id)

        def answered(response: Dict[str, Any]) -> Dict[str, Any]:
            self.policy.received(state, responder, response)
            return response

        return d.addCallback(answered)

    # -- registration ------------------------------------------------------

    def register(self, request: Any, identity: Any) -> Deferred:
        """
        C{samp.webhub.register(identity-info)} (WEB-REG-*): ask the consent
        policy, then register.

        @param identity: a map with at least C{samp.name}, or (legacy) the
            application name as a string.
        @return: a L{Deferred} firing with the registration map (with
            C{samp.url-translator}), or failing with L{SAMPHubError} if
            consent was refused or the hub cannot take more web clients.
        """
        if isinstance(identity, str):
            self.log.info("Web Profile register() with a plain name (legacy form)")
            identity = {"samp.name": identity}
        check_map(identity, "identity-info")
        size, most = samp_size(identity), self.hub.limits.max_metadata_bytes
        if size > most:
            raise over_limit("identity-info", size, most, "bytes", "max-metadata-bytes")
        name = identity.get("samp.name")
        if not isinstance(name, str) or not name.strip():
            raise SAMPValueError("identity-info has no samp.name (the application's name)")
        if not self.hub.running:
            raise SAMPHubError("the hub is shutting down")
        if len(self.sessions) >= self.max_clients:
            raise SAMPHubError(f"too many web clients ({self.max_clients}); try again later")
        if self._consent_pending >= self.max_consent_pending:
            raise SAMPHubError("too many registration requests are waiting; try again later")

        def header(name: bytes) -> Optional[str]:
            value = request.getHeader(name)
            return None if value is None else value.decode("latin-1")

        peer = getattr(request.getClientAddress(), "host", "?")
        ask = ConsentRequest(
            name=name,
            origin=header(b"origin"),
            referer=header(b"referer"),
            peer=str(peer),
            identity=identity,
        )
        self._consent_pending += 1
        decision = maybeDeferred(self.consent.request, ask)
        if self.consent_timeout > 0:
            decision.addTimeout(self.consent_timeout, self.reactor)
        request.notifyFinish().addErrback(lambda _: decision.cancel())
        host = request_host_name(request)

        def decided(allowed: Any) -> Dict[str, str]:
            self._consent_pending -= 1
            if isinstance(allowed, Failure):
                if allowed.check(TimeoutError):
                    raise SAMPHubError(
                        "registration refused: no answer in time (nobody allowed this page "
                        "on the hub's status page or terminal)",
                        code=7,
                    )
                if not allowed.check(CancelledError):
                    self.log.failure("consent policy failed; refusing", allowed)
                allowed = False
            if allowed is not True:
                raise SAMPHubError(
                    "registration refused: the user (or the hub's consent policy) did not allow "
                    "this page to use SAMP",
                    code=7,
                )
            return self._registered(ask, host)

        return decision.addBoth(decided)

    def _registered(self, ask: ConsentRequest, host: str) -> Dict[str, str]:
        if not self.hub.running:
            raise SAMPHubError("the hub is shutting down")
        client = self.hub.register("web")
        state = self.sessions.add(client, ask.origin, self.tracker.new_permitted())
        self.log.info(
            "web client {client_id} registered: {name} from {origin}",
            client_id=client.public_id,
            name=printable(ask.name),
            origin=printable(ask.origin),
        )
        result = self.hub.registration_map(client)
        port = f":{self.port}" if self.port is not None else ""
        result["samp.url-translator"] = f"http://{host}{port}/translator/{state.token}?ref="
        return result

    # -- callbacks -----------------------------------------------------------

    def _overflow(self, state: WebClient, queue: WebCallbackQueue) -> None:
        self.log.warn(
            "callback queue of web client {client_id} ({name}) overflowed ({n} callbacks "
            "waiting); ejecting it",
            client_id=state.client.public_id,
            name=printable(state.client.name),
            n=queue.max_size,
        )
        self.reactor.callLater(
            0,
            self.hub.eject,
            state.client,
            f"callback queue overflow: more than {queue.max_size} callbacks waiting "
            "(the client stopped pulling them)",
        )

    def allowReverseCallbacks(self, private_key: Any, allow: Any) -> str:
        """
        C{samp.webhub.allowReverseCallbacks(private-key, allow)} (WEB-CB-1):
        C{"1"} makes the client callable through its queue, C{"0"} stops
        that and discards waiting callbacks.
        """
        state = self._web(private_key)
        if not isinstance(allow, str):
            raise SAMPValueError('allow must be a SAMP boolean ("1" or "0")')
        try:
            on = decode_int(allow.strip()) != 0
        except ValueError:
            raise SAMPValueError('allow must be a SAMP boolean ("1" or "0")') from None
        if on and state.queue is None:
            queue = WebCallbackQueue(
                self.reactor,
                self.max_queue,
                on_overflow=lambda q: self._overflow(state, q),
                on_callback=lambda method, params: self.policy.incoming(state, method, params),
                rewrite=self.policy.rewrite,
                max_bytes=self.hub.limits.max_queue_bytes,
            )
            state.queue = queue
            self.hub.set_callback(private_key, queue)
        elif not on and state.queue is not None:
            queue, state.queue = state.queue, None
            dropped = queue.discard()
            if dropped:
                self.log.info(
                    "web client {client_id} turned callbacks off; {n} waiting callbacks dropped",
                    client_id=state.client.public_id,
                    n=dropped,
                )
            self.hub.set_callback(private_key, None)
        return ""

    def pullCallbacks(self, request: Any, private_key: Any, timeout: Any) -> Any:
        """
        C{samp.webhub.pullCallbacks(private-key, timeout-secs)} (WEB-CB-2..4).

        @return: a L{Deferred} firing with the list of callback maps: at once
            if any are queued, else as soon as one is, else C{[]} after
            C{timeout} seconds (at most C{max_pull_wait}).
        """
        try:
            state = self._web(private_key)
        except SAMPHubError:
            left = self.sessions.tombstone(private_key)
            if left is None:
                raise
            return left
        if state.queue is None:
            raise SAMPHubError(
                "the client is not callable: call samp.webhub.allowReverseCallbacks(key, \"1\") "
                "first"
            )
        seconds = min(max(timeout_seconds(timeout), 0.0), self.max_pull_wait)
        self.sessions.pause_idle(state)
        d = state.queue.pull(seconds)
        request.notifyFinish().addErrback(lambda _: d.cancel())

        def done(result: Any) -> Any:
            self.sessions.resume_idle(state)
            if isinstance(result, Failure) and result.check(CancelledError):
                return []  # the page hung up; nothing was taken from the queue
            return result

        return d.addBoth(done)

    # -- XML-RPC plumbing --------------------------------------------------

    def render_POST(self, request: Any) -> Any:
        if reject_unsafe_xml(self, request, check_content_type=False):
            return server.NOT_DONE_YET
        return super().render_POST(request)

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (
            b"SAMP hub, Web Profile: POST XML-RPC calls (samp.webhub.*) to this URL.\n"
            b"JavaScript client: /samptwist-web.js\n"
        )

    def lookupProcedure(self, procedurePath: str) -> Callable[..., Any]:
        return self.table.lookup(procedurePath)
