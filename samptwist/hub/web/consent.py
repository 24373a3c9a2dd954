"""
Consent to Web Profile registrations (WEB-AUTH-*): the L{IConsentPolicy}
interface and the policies C{twistd samphub --web-consent} offers.

A policy answers one L{ConsentRequest} with a L{Deferred} firing C{True}
(register the page) or C{False} (refuse it).  Policies never block the
reactor: the terminal prompt reads its answer asynchronously, and other
clients are served while a question is pending (WEB-AUTH-1, notes 13/14).

Other front ends (a desktop dialog, a web UI) plug in by providing
L{IConsentPolicy} and passing the object as C{HubService(web_consent=...)}.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from ..._log import Logger

log = Logger()

#: Default seconds the terminal prompt waits for an answer before refusing.
PROMPT_TIMEOUT = 60.0


def printable(text: Optional[str], limit: int = 200) -> str:
    """
    @return: C{text} quoted and escaped so that it is safe to show on a
        terminal or in a log (no control characters or escape sequences, no
        bidirectional overrides), cut to about C{limit} characters.
    """
    if text is None:
        return "(none)"
    shown = ascii(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def normalize_origin(origin: str) -> Optional[str]:
    """
    @return: C{origin} as C{scheme://host[:port]} (lower case, default port
        dropped, trailing slash removed), or C{None} if it is not an
        http/https origin.
    """
    if not isinstance(origin, str) or not origin.isascii():
        return None
    text = origin.strip()
    if text.endswith("/"):
        text = text[:-1]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if (
        scheme not in ("http", "https")
        or not host
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or parts.password is not None
        or any(c in host for c in " \t\r\n")
    ):
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class ConsentRequest:
    """
    One Web Profile registration asking to be allowed.

    Every field except C{peer} is a claim made by the page and cannot be
    verified; a consent front end says so (WEB-AUTH-1).

    @ivar name: the declared C{samp.name}.
    @ivar origin: the C{Origin} header exactly as received, C{None} if absent.
    @ivar referer: the C{Referer} header as received, C{None} if absent.
    @ivar peer: the TCP peer address (always loopback; checked earlier).
    @ivar identity: the whole identity-info map the page sent.
    """

    name: str
    origin: Optional[str]
    referer: Optional[str] = None
    peer: str = "127.0.0.1"
    identity: Dict[str, Any] = field(default_factory=dict)

    @property
    def origin_known(self) -> bool:
        """
        Whether the request named a real http(s) origin (not missing, not
        C{null} as sent by file: pages and sandboxed frames).
        """
        return self.origin is not None and normalize_origin(self.origin) is not None

    @property
    def referer_mismatch(self) -> bool:
        """
        Whether the Referer's origin differs from the Origin header
        (WEB-AUTH-2): suspicious, shown as a warning.
        """
        if self.referer is None or self.origin is None:
            return False
        try:
            parts = urlsplit(self.referer)
        except ValueError:
            return True
        referer_origin = normalize_origin(f"{parts.scheme}://{parts.netloc}")
        return referer_origin != normalize_origin(self.origin)

    def describe(self) -> List[str]:
        """
        @return: lines describing the request for a person, every claim
            escaped with L{printable}.
        """
        origin = printable(self.origin)
        if not self.origin_known:
            origin += "  <-- UNKNOWN ORIGIN (no Origin header, 'null', or not http/https)"
        lines = [
            f"  application name (claimed): {printable(self.name)}",
            f"  page origin:                {origin}",
            f"  referring page:             {printable(self.referer)}",
        ]
        if self.referer_mismatch:
            lines.append("  WARNING: the referring page does not match the origin")
        return lines


class IConsentPolicy(Interface):
    """
    Decides whether a web page may register with the hub.
    """

    def request(request: ConsentRequest) -> Deferred:
        """
        Ask for consent.

        @return: a L{Deferred} firing with C{True} to allow, C{False} to
            refuse.  It should not fail; a failure counts as a refusal.  The
            hub cancels it if the page hangs up or a time limit passes, so
            implementations should stop asking then.
        """

    def describe() -> str:
        """
        @return: one line saying what the policy does, for the hub's log.
        """

    timeout = Attribute(
        """
        Seconds the policy waits for a person's answer before refusing
        (settable: the Web Profile's C{consent_timeout} sets it), or C{None}
        for a policy that answers without asking anyone.
        """
    )

    def close() -> None:
        """
        Stop asking: the hub is stopping.  Questions still open are refused;
        nothing is asked after this.
        """


class _Unasked:
    """What a policy that asks nobody has of L{IConsentPolicy}: no wait,
    nothing to close."""

    timeout: Optional[float] = None

    def close(self) -> None:
        pass


@implementer(IConsentPolicy)
class DenyAll(_Unasked):
    """
    Refuse every web registration (C{--web-consent deny}).

    @ivar reason: why, for the log line of each refusal.
    """

    def __init__(self, reason: str = "--web-consent deny") -> None:
        self.reason = reason

    def request(self, request: ConsentRequest) -> Deferred:
        log.warn(
            "Web Profile registration of {name} from {origin} refused: {reason}",
            name=printable(request.name),
            origin=printable(request.origin),
            reason=self.reason,
        )
        return succeed(False)

    def describe(self) -> str:
        return f"refuse every web registration ({self.reason})"


@implementer(IConsentPolicy)
class AllowAll(_Unasked):
    """
    Accept every web registration (C{--web-consent allow-all}).  Only for
    tests and demos: any page in any browser on this machine may then use
    the hub.  Logged loudly (notes 15).
    """

    def request(self, request: ConsentRequest) -> Deferred:
        log.warn(
            "Web Profile registration of {name} from {origin} accepted WITHOUT asking "
            "(--web-consent allow-all)",
            name=printable(request.name),
            origin=printable(request.origin),
        )
        return succeed(True)

    def describe(self) -> str:
        return "ACCEPT EVERY web page without asking (allow-all): unsafe outside tests"


@implementer(IConsentPolicy)
class AllowOrigins(_Unasked):
    """
    Accept registrations whose Origin header names one of the listed page
    origins (C{--web-consent origins:URL[,URL]}); refuse all others,
    including requests without an Origin.
    """

    def __init__(self, origins: Iterable[str]) -> None:
        """
        @raise ValueError: if an entry is not an http/https origin.
        """
        self.origins = set()
        for origin in origins:
            normal = normalize_origin(origin)
            if normal is None:
                raise ValueError(
                    f"{origin!r} is not a page origin (expected http[s]://host[:port])"
                )
            self.origins.add(normal)
        if not self.origins:
            raise ValueError("origins: needs at least one origin")

    def request(self, request: ConsentRequest) -> Deferred:
        origin = normalize_origin(request.origin) if request.origin is not None else None
        allowed = origin is not None and origin in self.origins
        if allowed:
            log.info(
                "Web Profile registration of {name} from {origin} accepted (listed origin)",
                name=printable(request.name),
                origin=printable(request.origin),
            )
        else:
            log.warn(
                "Web Profile registration of {name} from {origin} refused: origin not listed "
                "in --web-consent origins:",
                name=printable(request.name),
                origin=printable(request.origin),
            )
        return succeed(allowed)

    def describe(self) -> str:
        return "accept pages from " + ", ".join(sorted(self.origins)) + "; refuse others"


@implementer(IConsentPolicy)
class DialogConsent:
    """
    Ask an object with pyvo's C{WebProfileDialog} interface (the blocking
    facade's C{web_profile_dialog}), without blocking the reactor.

    The dialog gets two thread-safe queues, C{queue_request} and
    C{queue_result}, as pyvo's hub gives it: each request is put on
    C{queue_request} as C{(identity, (peer, 0), origin)}, where the dialog's
    C{handle_queue} (polled by its own GUI loop or thread) finds it and
    shows it; its C{consent()} or C{reject()} puts C{True} or C{False} on
    C{queue_result}, which this policy polls every C{interval} seconds on
    the reactor.  Requests are asked one at a time, in order.

    @param dialog: the dialog object; its C{queue_request} and
        C{queue_result} attributes are set here.
    @param reactor: provides C{callLater} (a L{task.Clock<twisted.internet.task.Clock>} in tests).
    """

    def __init__(self, dialog: Any, reactor: Any, interval: float = 0.05) -> None:
        import queue

        self.dialog = dialog
        self.reactor = reactor
        self.interval = interval
        self._waiting: Deque[Tuple[ConsentRequest, Deferred]] = deque()
        self._asking: Optional[Tuple[ConsentRequest, Deferred]] = None
        self._poll: Optional[IDelayedCall] = None
        self._empty = queue.Empty
        dialog.queue_request = queue.Queue(1)
        dialog.queue_result = queue.Queue(1)

    #: the dialog's person answers when they like: no wait of our own
    timeout: Optional[float] = None

    def describe(self) -> str:
        return f"ask the web_profile_dialog {type(self.dialog).__name__}"

    def close(self) -> None:
        """
        Stop polling the dialog and refuse every open question (the hub is
        stopping); a later answer on C{queue_result} is never read.
        """
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None
        open_ = list(self._waiting)
        self._waiting.clear()
        if self._asking is not None:
            open_.insert(0, self._asking)
            self._asking = None
        for _, d in open_:
            if not d.called:
                d.callback(False)

    def request(self, request: ConsentRequest) -> Deferred:
        def cancel(d: Deferred) -> None:
            self._withdraw(d)

        d: Deferred = Deferred(cancel)
        self._waiting.append((request, d))
        if self._asking is None:
            self._next()
        return d

    def _next(self) -> None:
        while self._waiting:
            request, d = self._waiting.popleft()
            if d.called:
                continue
            self._asking = (request, d)
            identity: Any = dict(request.identity) or request.name
            # never blocks: one question at a time, so the queue is empty
            self.dialog.queue_request.put_nowait(
                (identity, (request.peer, 0), request.origin or "")
            )
            self._schedule()
            return
        self._asking = None

    def _schedule(self) -> None:
        self._poll = self.reactor.callLater(self.interval, self._check)

    def _check(self) -> None:
        self._poll = None
        try:
            answer = self.dialog.queue_result.get_nowait()
        except self._empty:
            self._schedule()
            return
        asking, self._asking = self._asking, None
        if asking is not None and not asking[1].called:
            asking[1].callback(answer is True)
        self._next()

    def _withdraw(self, d: Deferred) -> None:
        if self._asking is not None and self._asking[1] is d:
            # Take the question back if the dialog has not seen it yet; an
            # answer it gives later is read and dropped by the poll.
            try:
                self.dialog.queue_request.get_nowait()
            except self._empty:
                self._asking = (self._asking[0], Deferred())
                return
            if self._poll is not None and self._poll.active():
                self._poll.cancel()
                self._poll = None
            self._asking = None
            self.reactor.callLater(0, self._next)


class _Answers(LineReceiver):
    """
    Reads the user's answers, one per line, from the terminal.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1024

    def __init__(self, prompt: TerminalPrompt) -> None:
        self.prompt = prompt

    def lineReceived(self, line: bytes) -> None:
        self.prompt._answer(line.strip().decode("ascii", "replace"))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.prompt._terminal_lost(reason)


@implementer(IConsentPolicy)
class TerminalPrompt:
    """
    Ask on the hub's controlling terminal (C{--web-consent prompt}).

    The terminal is opened as C{/dev/tty} (its own file description, so the
    hub's stdin and stdout are left alone) the first time a page asks.
    Questions are asked one at a time; the others wait their turn.

    The prompt never hangs and never crashes the hub: with no terminal,
    with the hub in the background, on end-of-file, after C{timeout}
    seconds, or with more than C{max_pending} questions waiting, the
    registration is refused with a log line saying why (notes 13).

    @ivar timeout: seconds to wait for each answer.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        tty_path: str = "/dev/tty",
        timeout: float = PROMPT_TIMEOUT,
        max_pending: int = 5,
        attach: Optional[Callable[[LineReceiver], Any]] = None,
    ) -> None:
        """
        @param attach: connects the answer protocol to a transport and
            returns it; by default the terminal at C{tty_path} is opened.
            Tests pass a function attaching a C{StringTransport}.
        """
        self.reactor = reactor
        self.tty_path = tty_path
        self.timeout = timeout
        self.max_pending = max_pending
        self._attach = attach or self._open_terminal
        self._protocol: Optional[_Answers] = None
        self._transport: Any = None
        self._fd: Optional[int] = None
        self._broken: Optional[str] = None
        self._queue: Deque[Tuple[ConsentRequest, Deferred]] = deque()
        self._active: Optional[Tuple[ConsentRequest, Deferred, IDelayedCall]] = None

    def describe(self) -> str:
        return f"ask on the terminal {self.tty_path} (refuse after {self.timeout:g}s)"

    # -- the terminal ------------------------------------------------------

    def _open_terminal(self, protocol: LineReceiver) -> Any:
        from twisted.internet.stdio import StandardIO

        fd = os.open(self.tty_path, os.O_RDWR | os.O_NOCTTY)
        try:
            if not os.isatty(fd):
                raise OSError(f"{self.tty_path} is not a terminal")
            out = os.dup(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return StandardIO(protocol, stdin=fd, stdout=out, reactor=self.reactor)  # type: ignore[call-arg]

    def _ensure_terminal(self) -> bool:
        if self._broken is not None:
            return False
        if self._transport is None:
            protocol = _Answers(self)
            try:
                self._transport = self._attach(protocol)
            except Exception as e:
                self._broken = f"cannot open the terminal {self.tty_path}: {e}"
                log.error(
                    "Web Profile consent prompt unavailable ({why}); web registrations are "
                    "refused. Start the hub with --web-consent origins:URL or deny.",
                    why=self._broken,
                )
                return False
            self._protocol = protocol
            self._pause()
        return True

    def _foreground(self) -> bool:
        if self._fd is None:
            return True
        try:
            return os.tcgetpgrp(self._fd) == os.getpgrp()
        except OSError:
            return False

    def _pause(self) -> None:
        # Read only while a question is pending: a background process reading
        # its terminal would be stopped by SIGTTIN.
        pause = getattr(self._transport, "pauseProducing", None)
        if pause is not None:
            pause()

    def _resume(self) -> None:
        resume = getattr(self._transport, "resumeProducing", None)
        if resume is not None:
            resume()

    def _write(self, text: str) -> None:
        try:
            self._transport.write(text.encode("ascii", "replace"))
        except Exception:
            log.failure("cannot write to the terminal")

    def _terminal_lost(self, reason: Any) -> None:
        if self._broken is None:
            self._broken = "the terminal was closed"
            log.error(
                "Web Profile consent prompt: {why}; further web registrations are refused",
                why=self._broken,
            )
        self._transport = None
        active, self._active = self._active, None
        waiting = list(self._queue)
        self._queue.clear()
        if active is not None:
            active[2].cancel()
            waiting.insert(0, (active[0], active[1]))
        for request, d in waiting:
            self._refuse(request, d, self._broken)

    def close(self) -> None:
        """
        Stop asking: refuse every pending question and close the terminal.
        """
        transport = self._transport
        self._broken = "the hub is stopping"
        self._terminal_lost(None)
        if transport is not None:
            try:
                transport.loseConnection()
            except Exception:
                pass

    # -- questions ---------------------------------------------------------

    def request(self, request: ConsentRequest) -> Deferred:
        if not self._ensure_terminal():
            return self._refused(request, self._broken or "no terminal")
        if len(self._queue) >= self.max_pending:
            return self._refused(request, f"{len(self._queue)} other requests are waiting")

        def cancel(d: Deferred) -> None:
            self._withdraw(d)

        d: Deferred = Deferred(cancel)
        self._queue.append((request, d))
        if self._active is None:
            self._next()
        return d

    def _refused(self, request: ConsentRequest, why: str) -> Deferred:
        d: Deferred = Deferred()
        self._refuse(request, d, why)
        return d

    def _refuse(self, request: ConsentRequest, d: Deferred, why: str) -> None:
        log.warn(
            "Web Profile registration of {name} from {origin} refused: {why}",
            name=printable(request.name),
            origin=printable(request.origin),
            why=why,
        )
        if not d.called:
            d.callback(False)

    def _next(self) -> None:
        while self._active is None and self._queue:
            request, d = self._queue.popleft()
            if not self._foreground():
                self._refuse(request, d, "the hub is not in the terminal's foreground")
                continue
            lines = [
                "",
                "*** A web page asks to register with this SAMP hub (Web Profile):",
                *request.describe(),
                "  These claims cannot be verified. Accept only a page you opened yourself.",
                f"Allow it? [y/N] (refused in {self.timeout:g}s) ",
            ]
            self._write("\n".join(lines))
            timer = self.reactor.callLater(self.timeout, self._timed_out)
            self._active = (request, d, timer)
            self._resume()

    def _finish(self, allowed: bool, note: str, why: str = "the user said no") -> None:
        active, self._active = self._active, None
        if active is None:
            return
        request, d, timer = active
        if timer.active():
            timer.cancel()
        self._pause()
        self._write(note + "\n")
        if allowed:
            log.info(
                "Web Profile registration of {name} from {origin} accepted on the terminal",
                name=printable(request.name),
                origin=printable(request.origin),
            )
            if not d.called:
                d.callback(True)
        else:
            self._refuse(request, d, why)
        self._next()

    def _answer(self, text: str) -> None:
        if self._active is None:
            return  # typed while nothing was asked
        allowed = text.lower() in ("y", "yes")
        self._finish(allowed, "accepted" if allowed else "refused")

    def _timed_out(self) -> None:
        if self._active is not None:
            why = f"no answer within {self.timeout:g}s"
            self._finish(False, f"({why}; refused)", why)

    def _withdraw(self, d: Deferred) -> None:
        for item in list(self._queue):
            if item[1] is d:
                self._queue.remove(item)
                return
        if self._active is not None and self._active[1] is d:
            request, _, timer = self._active
            self._active = None
            if timer.active():
                timer.cancel()
            self._pause()
            self._write("(request withdrawn by the page)\n")
            log.info(
                "Web Profile registration of {name} withdrawn before an answer",
                name=printable(request.name),
            )
            self._next()


def stdin_is_terminal() -> bool:
    """
    @return: whether the hub's stdin is a terminal someone could answer on.
    """
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def consent_from_spec(spec: Optional[str], reactor: Any) -> IConsentPolicy:
    """
    Build the policy named by a C{--web-consent} value.

    @param spec: C{"prompt"}, C{"page"} (ask on the hub's status page, see
        L{samptwist.hub.web.pageconsent}), C{"deny"}, C{"allow-all"},
        C{"origins:URL[,URL...]"}, or C{"auto"}/C{None}: C{prompt} when stdin
        is a terminal, else C{page}.
    @raise ValueError: for anything else.
    """
    text = (spec or "auto").strip()
    if text == "auto":
        if stdin_is_terminal():
            return TerminalPrompt(reactor)
        text = "page"
    if text == "page":
        # Imported here: the page front end builds on this module.
        from .pageconsent import StatusPageConsent

        return StatusPageConsent(reactor)
    if text == "prompt":
        return TerminalPrompt(reactor)
    if text == "deny":
        return DenyAll()
    if text == "allow-all":
        return AllowAll()
    if text.startswith("origins:"):
        return AllowOrigins(o for o in text[len("origins:"):].split(",") if o.strip())
    raise ValueError(
        f"unknown web consent policy {spec!r}: expected prompt, page, deny, allow-all or "
        "origins:URL[,URL]"
    )
