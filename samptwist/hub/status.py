"""
The hub's live status page, served on the Standard Profile site at
C{/status?key=KEY}: registered clients with icons, metadata and
subscriptions, a rolling log of messages and replies with timings, uptime
and counters, updated live through server-sent events.

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
import hashlib
import hmac
import ipaddress
import json
from typing import Any, Deque, Dict, List, Optional
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet import task
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from .._log import Logger
from .core import Client, Hub

#: entries kept in the rolling message log
HISTORY = 200
#: live feeds open at once
MAX_STREAMS = 16
#: seconds between keep-alive comments on the live feed
HEARTBEAT = 15.0

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

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


def status_key(secret: str) -> str:
    """
    @return: the key of the status page of the hub whose lockfile secret is
        C{secret} (it does not reveal the secret).
    """
    digest = hmac.new(secret.encode("utf-8"), b"samptwist status page", hashlib.sha256)
    return digest.hexdigest()[:32]


def status_url(hub_url: str, secret: str) -> str:
    """
    @return: the status page URL of the hub at C{hub_url} (its XML-RPC URL).
    """
    base = hub_url.rsplit("/", 1)[0]
    return f"{base}/status?key={status_key(secret)}"


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


class StatusMonitor(Service):
    """
    Watches a L{Hub} through C{observe} and keeps what the status page shows:
    a rolling log and the live feeds.
    """

    log = Logger()

    def __init__(self, hub: Hub, reactor: Any, history: int = HISTORY) -> None:
        self.hub = hub
        self.reactor = reactor
        self.entries: Deque[Dict[str, Any]] = collections.deque(maxlen=history)
        self.streams: List[Any] = []
        self._seq = 0
        self._calls: Dict[str, Any] = {}  # msg-id -> (call number, start); never shown
        self._heartbeat: Optional[task.LoopingCall] = None
        hub.observe(self._observe)

    # -- what the hub does -------------------------------------------------

    def _observe(self, event: str, details: Dict[str, Any]) -> None:
        now = self.reactor.seconds()
        if event in ("register", "unregister", "metadata", "subscriptions"):
            client: Client = details["client"]
            entry: Dict[str, Any] = {
                "kind": event, "client": client.public_id, "name": client.name,
            }
            if event == "unregister":
                entry["reason"] = str(details.get("reason", ""))
            self._add(entry, now)
            if self.streams:
                # One record, not the whole list: an event costs the same at
                # 10 and at 10,000 clients, and nothing without a page open.
                record = None if event == "unregister" else _client_record(client, now)
                self._broadcast("client", {"id": client.public_id, "record": record})
        elif event in ("notify", "call"):
            message = details["message"]
            entry = {
                "kind": event,
                "mtype": str(message.get("samp.mtype", "")),
                "sender": details["sender"].public_id,
                "sender_name": details["sender"].name,
                "recipient": details["recipient"].public_id,
                "recipient_name": details["recipient"].name,
            }
            if event == "call":
                self._seq += 1
                entry["call"] = self._seq
                self._calls[details["msg_id"]] = (self._seq, now, entry["mtype"])
            self._add(entry, now)
        elif event == "reply":
            pending = details["pending"]
            number, start, mtype = self._calls.pop(pending.msg_id, (None, now, ""))
            response = details["response"]
            status = response.get("samp.status", "") if isinstance(response, dict) else ""
            entry = {
                "kind": "reply",
                "call": number,
                "mtype": mtype,
                "sender": pending.recipient.public_id,
                "sender_name": pending.recipient.name,
                "recipient": pending.sender.public_id,
                "recipient_name": pending.sender.name,
                "status": str(status),
                "ms": round((now - start) * 1000.0, 1),
            }
            error = response.get("samp.error") if isinstance(response, dict) else None
            if isinstance(error, dict) and isinstance(error.get("samp.errortxt"), str):
                entry["error"] = error["samp.errortxt"][:200]
            self._add(entry, now)

    def _add(self, entry: Dict[str, Any], now: float) -> None:
        entry["t"] = round(now - self.hub.started, 3)
        self.entries.append(entry)
        if self.streams:
            self._broadcast("log", {"entry": entry, "stats": self.stats()})

    # -- views ---------------------------------------------------------------

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
            "pending_calls": len(self._calls),
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
            "log": list(self.entries),
        }

    # -- live feeds ----------------------------------------------------------

    def add_stream(self, request: Any) -> bool:
        """
        Send events to C{request} (an open server-sent-events answer) until it
        closes.

        @return: C{False} if too many feeds are open already.
        """
        if len(self.streams) >= MAX_STREAMS or not self.running:
            return False
        self.streams.append(request)

        def gone(_: Any) -> None:
            if request in self.streams:
                self.streams.remove(request)

        request.notifyFinish().addBoth(gone)
        self._write(request, "state", self.state())
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


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_ok(request: Any) -> bool:
    host = request.getHeader(b"host")
    if host is None:
        return False
    name = urlsplit("//" + host.decode("ascii", "replace")).hostname or ""
    return name.lower() in LOOPBACK_NAMES or _is_loopback(name)


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

    def __init__(self, monitor: StatusMonitor, key: str) -> None:
        super().__init__()
        self.monitor = monitor
        self.key = key

    def render(self, request: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        if request.method not in (b"GET", b"HEAD"):
            return self._refuse(request, 405, "only GET")
        peer = getattr(request.getClientAddress(), "host", "")
        if not _is_loopback(peer):
            return self._refuse(request, 403, "the status page is for this machine only")
        if not _host_ok(request):
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
        return json.dumps(self.monitor.state()).encode()


class _Events(_Guarded):
    same_origin_only = True

    def serve(self, request: Any) -> Any:
        request.setHeader(b"content-type", b"text/event-stream")
        if request.method == b"HEAD":
            return b""
        if not self.monitor.add_stream(request):
            return self._refuse(request, 503, "too many status feeds open")
        return NOT_DONE_YET


class StatusResource(Resource):
    """
    C{/status} and its parts: C{status.js}, C{status.css}, C{state.json}
    (a snapshot) and C{events} (the live feed, C{text/event-stream}).
    """

    def __init__(self, monitor: StatusMonitor, secret: str) -> None:
        super().__init__()
        key = status_key(secret)
        self.page = _Page(monitor, key)
        self.putChild(b"status.js", _File(monitor, key, "status.js", b"text/javascript"))
        self.putChild(b"status.css", _File(monitor, key, "status.css", b"text/css"))
        self.putChild(b"state.json", _State(monitor, key))
        self.putChild(b"events", _Events(monitor, key))

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self.page
        return super().getChild(path, request)

    def render(self, request: Any) -> Any:
        return self.page.render(request)
