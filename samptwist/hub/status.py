"""
The hub's live status page, served on the Standard Profile site at
C{/status?key=KEY}: registered clients with icons, metadata and
subscriptions, a rolling log of messages and replies with timings, uptime
and counters, updated live through server-sent events.

Web Profile consent (C{--web-consent page}, or C{auto} without a
terminal): pages asking to register are listed live, with Allow once, Deny
and Always allow buttons and the always-allowed origins (revocable).  The
buttons post to C{/status/consent}, which takes only C{POST} with a JSON
body, the key, a same-origin (or absent) C{Origin} and C{Sec-Fetch-Site},
and a page token that only a same-origin read of C{state.json} or the
event feed hands out (L{PageTokens}): another site can neither send such a
request (it would need a CORS preflight, which is never answered) nor know
the token.

Who can read it: only the user who can read the lockfile or the hub's log.
The page and its feeds need C{key}, derived from the lockfile secret
(L{status_key}); the hub logs the full URL when it starts, and
C{samptwist clients --status-url} prints it.  Requests must come from a
loopback address with a loopback C{Host} (no DNS rebinding); the data feeds
refuse cross-site fetches (C{Sec-Fetch-Site}); no CORS headers are ever sent,
and every answer carries C{X-Content-Type-Options: nosniff},
C{Cross-Origin-Resource-Policy: same-origin}, a strict Content Security
Policy and C{Referrer-Policy: no-referrer} (client icons are loaded from
their own URLs and must not learn the key).

What it shows: metadata and subscriptions (what any registered client may
read anyway), and for each message its MType, sender, recipient, status and
timing.  Never private keys, the secret, msg-ids or message parameters.
"""

from __future__ import annotations

import collections
import functools
import hmac
import json
import secrets
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple

from twisted.application.service import Service
from twisted.internet import task
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from .._log import Logger
from .._net import peer_is_loopback, status_host_is_allowed
from ..statuspage import TOKEN_HEADER, status_key
from . import events
from .core import Client, Hub

if TYPE_CHECKING:
    from .web.pageconsent import StatusPageConsent

#: entries kept in the rolling message log
HISTORY = 200
#: live feeds open at once
MAX_STREAMS = 16
#: seconds between keep-alive comments on the live feed
HEARTBEAT = 15.0
#: page tokens kept valid at once (one per page load or state.json read)
MAX_TOKENS = 64
#: largest body of a consent answer
MAX_ANSWER = 4096

SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"cross-origin-resource-policy": b"same-origin",
    b"cross-origin-opener-policy": b"same-origin",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
    b"cache-control": b"no-store",
    b"content-security-policy": (
        b"default-src 'none'; script-src 'self'; style-src 'self'; "
        b"img-src http: https: data:; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'none'"
    ),
}


def _client_record(client: Client, now: float) -> Dict[str, Any]:
    return {
        "id": client.public_id,
        "name": client.name,
        "profile": client.profile,
        "callable": client.target is not None,
        "metadata": client.metadata,
        "subscriptions": client.subscriptions,
        "idle": round(max(0.0, now - client.last_seen), 1) if client.last_seen else None,
    }


class PageTokens:
    """
    Tokens handed to each status page load: a consent answer must carry one
    (CSRF defence).  The newest L{MAX_TOKENS} stay valid.
    """

    def __init__(self, limit: int = MAX_TOKENS) -> None:
        self._tokens: Deque[str] = collections.deque(maxlen=limit)

    def mint(self) -> str:
        """
        @return: a new token (128 random bits or more).
        """
        token = secrets.token_urlsafe(24)
        self._tokens.append(token)
        return token

    def valid(self, given: Optional[bytes]) -> bool:
        """
        @return: whether C{given} is one of the live tokens (constant time).
        """
        if not given:
            return False
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(given, token.encode())
        return ok


_CLIENT_EVENTS: Dict[type, str] = {
    events.ClientRegistered: "register",
    events.ClientUnregistered: "unregister",
    events.MetadataDeclared: "metadata",
    events.SubscriptionsDeclared: "subscriptions",
}
_CLIENT_EVENT_TYPES = (
    events.ClientRegistered, events.ClientUnregistered, events.MetadataDeclared,
    events.SubscriptionsDeclared,
)


def _message_entry(event: Any) -> Dict[str, Any]:
    # The log entry of an events.Notified or events.Called.
    if isinstance(event, events.Called):
        sender, recipient = event.pending.sender, event.pending.recipient
    else:
        sender, recipient = event.sender, event.recipient
    entry: Dict[str, Any] = {
        "kind": "call" if isinstance(event, events.Called) else "notify",
        "mtype": str(event.message.get("samp.mtype", "")),
        "sender": sender.public_id,
        "sender_name": sender.name,
        "recipient": recipient.public_id,
        "recipient_name": recipient.name,
    }
    if isinstance(event, events.Called):
        entry["call"] = event.pending.number
    return entry


class StatusMonitor(Service):
    """
    Watches a L{Hub} through C{observe} and keeps what the status page shows:
    a rolling log and the live feeds.
    """

    log = Logger()

    def __init__(self, hub: Hub, reactor: Any, history: int = HISTORY) -> None:
        self.hub = hub
        self.reactor = reactor
        #: the rolling log: entries, or the notify and call events not yet
        #: written out as entries (see L{log_entries})
        self.entries: Deque[Any] = collections.deque(maxlen=history)
        self.streams: List[Any] = []
        self._heartbeat: Optional[task.LoopingCall] = None
        self.consent: Optional[StatusPageConsent] = None
        #: what the page says about Web Profile consent when it does not ask
        self.consent_mode = "no Web Profile"
        self.tokens = PageTokens()
        hub.observe(self._observe)

    def attach_consent(self, consent: Any) -> None:
        """
        Show and answer the Web Profile consent requests of C{consent} (a
        L{StatusPageConsent}) on the page; any other policy is only named.
        """
        self.consent_mode = consent.describe()
        if callable(getattr(consent, "observe", None)) and hasattr(consent, "answer"):
            self.consent = consent
            consent.observe(lambda: self._broadcast("consent", self.consent_view()))

    def consent_view(self) -> Dict[str, Any]:
        """
        @return: C{{"asks": bool, "mode": str, "pending": [...], "origins":
            [...]}}: whether the page answers consent requests, and which.
        """
        if self.consent is None:
            return {"asks": False, "mode": self.consent_mode, "pending": [], "origins": []}
        return {"asks": True, "mode": self.consent_mode, **self.consent.view()}

    # -- what the hub does -------------------------------------------------

    def _observe(self, event: events.HubEvent) -> None:
        # Hub events arrive on a later turn than the hub call that caused
        # them, in order; what the page knows of a call lives in the hub's
        # own record (PendingCall), which goes when the call ends.
        now = event.at
        entry: Dict[str, Any]
        if isinstance(event, _CLIENT_EVENT_TYPES):
            kind = _CLIENT_EVENTS[type(event)]
            client: Client = event.client
            entry = {"kind": kind, "client": client.public_id, "name": client.name}
            if isinstance(event, events.ClientUnregistered):
                entry["reason"] = event.reason
            self._add(entry, now)
            if self.streams:
                # One record, not the whole list: an event costs the same at
                # 10 and at 10,000 clients, and nothing without a page open.
                record = (
                    None if isinstance(event, events.ClientUnregistered)
                    else _client_record(client, now)
                )
                self._broadcast("client", {"id": client.public_id, "record": record})
        elif isinstance(event, (events.Notified, events.Called)):
            if self.streams:
                self._add(_message_entry(event), now)
            else:
                # The commonest event, and nobody is watching: written out
                # only if a page asks for the log (log_entries).
                self.entries.append(event)
        elif isinstance(event, events.Replied):
            pending = event.pending
            response = event.response
            status = response.get("samp.status", "") if isinstance(response, dict) else ""
            entry = {
                "kind": "reply",
                "call": pending.number,
                "mtype": pending.mtype,
                "sender": pending.recipient.public_id,
                "sender_name": pending.recipient.name,
                "recipient": pending.sender.public_id,
                "recipient_name": pending.sender.name,
                "status": str(status),
                "ms": round((now - pending.started) * 1000.0, 1),
            }
            error = response.get("samp.error") if isinstance(response, dict) else None
            if isinstance(error, dict) and isinstance(error.get("samp.errortxt"), str):
                entry["error"] = error["samp.errortxt"][:200]
            self._add(entry, now)
        elif isinstance(event, events.CallEnded) and not event.answered and self.streams:
            # A time-out, cancel or departed caller logs nothing, but the
            # page's counters must not go stale until the next entry.
            self._broadcast("stats", self.stats())

    def _add(self, entry: Dict[str, Any], now: float) -> None:
        entry["t"] = round(now - self.hub.started, 3)
        self.entries.append(entry)
        if self.streams:
            self._broadcast("log", {"entry": entry, "stats": self.stats()})

    # -- views ---------------------------------------------------------------

    def log_entries(self) -> List[Dict[str, Any]]:
        """
        @return: the rolling log, oldest first, as the page shows it.
        """
        started = self.hub.started
        out = []
        for entry in self.entries:
            if not isinstance(entry, dict):
                event = entry
                entry = _message_entry(event)
                entry["t"] = round(event.at - started, 3)
            out.append(entry)
        return out

    def stats(self) -> Dict[str, Any]:
        s = self.hub.stats
        return {
            "clients": self.hub.client_count,
            "registrations": s.registrations,
            "notifications": s.notifications,
            "calls": s.calls,
            "replies": s.replies,
            "delivery_failures": s.delivery_failures,
            "ejections": s.ejections,
            "pending_calls": self.hub.pending_calls,
        }

    def clients(self) -> List[Dict[str, Any]]:
        now = self.reactor.seconds()
        return [_client_record(c, now) for c in self.hub.clients]

    def state(self) -> Dict[str, Any]:
        """
        @return: everything the page shows, as JSON-able data.
        """
        hub = self.hub.hub_client
        return {
            "hub": {
                "name": hub.name,
                "id": hub.public_id,
                "description": hub.metadata.get("samp.description.text", ""),
                "uptime": round(self.reactor.seconds() - self.hub.started, 3),
                "running": self.hub.running,
            },
            "stats": self.stats(),
            "clients": self.clients(),
            "log": self.log_entries(),
            "consent": self.consent_view(),
        }

    # -- live feeds ----------------------------------------------------------

    def add_stream(self, request: Any, **extra: Any) -> bool:
        """
        Send events to C{request} (an open server-sent-events answer) until it
        closes; its first C{state} event also carries C{extra}.

        @return: C{False} if too many feeds are open already.
        """
        if len(self.streams) >= MAX_STREAMS or not self.running:
            return False
        self.streams.append(request)

        def gone(_: Any) -> None:
            if request in self.streams:
                self.streams.remove(request)

        request.notifyFinish().addBoth(gone)
        self._write(request, "state", {**self.state(), **extra})
        return True

    def _broadcast(self, kind: str, data: Any) -> None:
        if not self.streams:
            return
        for request in list(self.streams):
            self._write(request, kind, data)

    def _write(self, request: Any, kind: str, data: Any) -> None:
        payload = json.dumps(data, separators=(",", ":"))
        try:
            request.write(f"event: {kind}\ndata: {payload}\n\n".encode())
        except Exception:
            if request in self.streams:
                self.streams.remove(request)

    def _beat(self) -> None:
        for request in list(self.streams):
            try:
                request.write(b": keep-alive\n\n")
            except Exception:
                self.streams.remove(request)

    def startService(self) -> None:
        super().startService()
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.clock = self.reactor
        self._heartbeat.start(HEARTBEAT, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        streams, self.streams = self.streams, []
        for request in streams:
            try:
                request.write(b"event: bye\ndata: {}\n\n")
                request.finish()
            except Exception:
                pass


@functools.cache
def _static(name: str) -> bytes:
    # Read once: no file I/O in the reactor per request.
    from importlib import resources

    return resources.files("samptwist.hub").joinpath("static", name).read_bytes()


class _Guarded(Resource):
    """
    Shared checks: loopback peer and Host, key, security headers.
    """

    isLeaf = True
    needs_key = True
    same_origin_only = False
    methods: Tuple[bytes, ...] = (b"GET", b"HEAD")

    def __init__(self, monitor: StatusMonitor, key: str) -> None:
        super().__init__()
        self.monitor = monitor
        self.key = key

    def render(self, request: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        if request.method not in self.methods:
            request.setHeader(b"allow", b", ".join(self.methods))
            return self._refuse(request, 405, "only " + self.methods[0].decode())
        if not peer_is_loopback(request.getClientAddress()):
            return self._refuse(request, 403, "the status page is for this machine only")
        if not status_host_is_allowed(request.getHeader(b"host")):
            return self._refuse(request, 403, "Host must be a loopback name (DNS rebinding?)")
        site = request.getHeader(b"sec-fetch-site")
        if self.same_origin_only and site not in (None, b"same-origin", b"none"):
            return self._refuse(request, 403, "cross-site requests are refused")
        if self.needs_key:
            given = (request.args.get(b"key") or [b""])[0]
            if not hmac.compare_digest(given, self.key.encode()):
                return self._refuse(
                    request, 403,
                    "open the status page with the URL the hub logged at start-up "
                    "(it carries a key), or see 'samptwist clients --status-url'",
                )
        return self.serve(request)

    def _refuse(self, request: Any, code: int, text: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (text + "\n").encode()

    def serve(self, request: Any) -> Any:
        raise NotImplementedError


class _Page(_Guarded):
    def serve(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return _static("status.html")


class _File(_Guarded):
    needs_key = False

    def __init__(self, monitor: StatusMonitor, key: str, name: str, ctype: bytes) -> None:
        super().__init__(monitor, key)
        self.name = name
        self.ctype = ctype

    def serve(self, request: Any) -> bytes:
        request.setHeader(b"content-type", self.ctype)
        return _static(self.name)


class _State(_Guarded):
    same_origin_only = True

    def serve(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({**self.monitor.state(), "token": self.monitor.tokens.mint()}).encode()


class _Events(_Guarded):
    same_origin_only = True

    def serve(self, request: Any) -> Any:
        request.setHeader(b"content-type", b"text/event-stream")
        if request.method == b"HEAD":
            return b""
        if not self.monitor.add_stream(request, token=self.monitor.tokens.mint()):
            return self._refuse(request, 503, "too many status feeds open")
        return NOT_DONE_YET


def _same_origin(request: Any) -> bool:
    origin = request.getHeader(b"origin")
    if origin is None:
        return True  # not a browser, or a same-origin GET: the other checks apply
    host = request.getHeader(b"host") or b""
    return hmac.compare_digest(origin.lower(), b"http://" + host.lower())


class _ConsentAnswer(_Guarded):
    """
    C{POST /status/consent?key=KEY}: answer a Web Profile consent request
    or forget a remembered origin.  The body is JSON, one of
    C{{"action": "allow" | "always" | "deny", "id": ID}} and
    C{{"action": "forget", "origin": ORIGIN}}; the answer is JSON
    C{{"ok": true}} or C{{"error": TEXT}} with a 4xx status.
    """

    same_origin_only = True
    methods = (b"POST",)

    def serve(self, request: Any) -> bytes:
        if not _same_origin(request):
            return self._refuse(request, 403, "cross-origin requests are refused")
        ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            return self._refuse(request, 415, "the body must be application/json")
        if not self.monitor.tokens.valid(request.getHeader(TOKEN_HEADER)):
            return self._refuse(
                request, 403, "missing or stale page token: reload the status page"
            )
        consent = self.monitor.consent
        if consent is None:
            return self._json(request, 409, {
                "error": f"this hub does not ask on its status page ({self.monitor.consent_mode})"
            })
        try:
            length = int(request.getHeader(b"content-length") or 0)
        except ValueError:
            length = MAX_ANSWER + 1
        if length > MAX_ANSWER:
            return self._refuse(request, 413, f"answers are at most {MAX_ANSWER} bytes")
        try:
            body = json.loads(request.content.read(MAX_ANSWER + 1)[:MAX_ANSWER])
            action = body["action"]
            target = body["origin" if action == "forget" else "id"]
            if not isinstance(target, str):
                raise TypeError(target)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._json(request, 400, {
                "error": 'expected {"action": "allow"|"always"|"deny", "id": ID} or '
                '{"action": "forget", "origin": ORIGIN}'
            })
        try:
            if action == "forget":
                found = consent.forget(target)
            elif action in ("allow", "always", "deny"):
                found = consent.answer(target, action != "deny", remember=action == "always")
            else:
                return self._json(request, 400, {"error": f"unknown action {action!r}"})
        except ValueError as e:
            return self._json(request, 400, {"error": str(e)})
        except OSError as e:
            return self._json(request, 500, {"error": f"cannot save: {e}"})
        if not found:
            what = "origin is not remembered" if action == "forget" else (
                "request is not waiting (answered, withdrawn or timed out)")
            return self._json(request, 404, {"error": f"that {what}"})
        return self._json(request, 200, {"ok": True})

    def _json(self, request: Any, code: int, data: Dict[str, Any]) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(data).encode()


class StatusResource(Resource):
    """
    C{/status} and its parts: C{status.js}, C{status.css}, C{state.json}
    (a snapshot), C{events} (the live feed, C{text/event-stream}) and
    C{consent} (answers to Web Profile consent requests).
    """

    def __init__(self, monitor: StatusMonitor, secret: str) -> None:
        super().__init__()
        key = status_key(secret)
        self.page = _Page(monitor, key)
        self.putChild(b"status.js", _File(monitor, key, "status.js", b"text/javascript"))
        self.putChild(b"status.css", _File(monitor, key, "status.css", b"text/css"))
        self.putChild(b"state.json", _State(monitor, key))
        self.putChild(b"events", _Events(monitor, key))
        self.putChild(b"consent", _ConsentAnswer(monitor, key))

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self.page
        return super().getChild(path, request)

    def render(self, request: Any) -> Any:
        return self.page.render(request)
