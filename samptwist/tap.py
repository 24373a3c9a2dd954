"""
C{twistd samphub}: command-line options and the service maker.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from twisted.logger import LogLevel
from twisted.python import usage

from ._log import Logger, set_level
from .constants import DEFAULT_LISTEN, DEFAULT_WEB_LISTEN
from .errors import HubAlreadyRunning, LockfileError
from .hub.limits import DEFAULT_LIMITS, Limits
from .hub.service import HubService, plain_tcp
from .lockfile import hub_lockfile_path

log = Logger()


class Options(usage.Options):
    """
    Options of C{twistd samphub} (and C{samptwist hub}).
    """

    synopsis = "[options]"
    longdesc = (
        "Run a SAMP 1.3 hub. Standard Profile clients find it through the lockfile "
        "(~/.samp, or the file named by SAMP_HUB=std-lockurl:file://...)."
    )
    optParameters = [
        ["listen", "l", DEFAULT_LISTEN, "Endpoint of the Standard Profile XML-RPC server."],
        ["lockfile", None, None, "Lockfile to write (default: SAMP_HUB's file, else ~/.samp)."],
        ["secret", None, None, "Fixed registration secret (for testing; default: random)."],
        ["log-level", None, "info", "Least important level logged: debug, info, warn, error."],
        ["web-listen", None, DEFAULT_WEB_LISTEN, "Endpoint of the Web Profile server."],
        ["web-consent", None, "auto",
         "Who decides on Web Profile registrations: prompt (ask on this terminal), page "
         "(ask on the hub's status page and with 'samptwist web'), deny, origins:URL[,URL] "
         "(allow those page origins), allow-all (unsafe), or auto (prompt if stdin is a "
         "terminal, else page). See docs/web-profile.md."],
        ["web-consent-timeout", None, None,
         "Seconds a Web Profile registration waits for the user's answer, then is refused "
         "(default: 120 on the status page, 60 on the terminal)."],
        ["callback-timeout", None, "30", "Seconds a client's callback may take to answer."],
        ["max-failures", None, "3",
         "Consecutive unreachable callbacks after which a client is ejected (0: never)."],
        ["shutdown-grace", None, "5",
         "Seconds to wait for clients to take the shutdown notification."],
        ["label", None, "", "Human-readable hub name, written to the lockfile as hub.label."],
        ["hub-timeout", None, "0",
         "Stop the hub after this many seconds without client activity (0: never)."],
        ["client-timeout", None, "0",
         "Unregister clients silent for this many seconds (0: never)."],
        ["max-request-size", None, "64M",
         "Largest request body accepted, in bytes (suffixes K, M, G allowed)."],
        ["max-clients", None, str(DEFAULT_LIMITS.max_clients),
         "Most clients registered at once (0: no limit)."],
        ["max-pending-calls", None, str(DEFAULT_LIMITS.max_pending_calls),
         "Most calls one client may have waiting for replies."],
        ["max-connections", None, "0",
         "Most HTTP connections open at once; beyond that the longest idle one is closed "
         "(0: from the open-files limit, less a reserve)."],
        ["idle-timeout", None, "60", "Seconds after which an idle connection is closed."],
        ["max-queue-bytes", None, "64M",
         "Most bytes of messages waiting for one slow client (suffixes K, M, G allowed)."],
    ]
    optFlags = [["no-web", None, "Do not run the Web Profile."]]

    def postOptions(self) -> None:
        if not self["no-web"] or self["web-consent"] != "auto":
            # The Web Profile stack is imported only for a hub that runs it.
            from .hub.web.consent import consent_from_spec

            try:
                consent_from_spec(self["web-consent"], None)
            except ValueError as e:
                raise usage.UsageError(f"--web-consent: {e}") from None
        level = self["log-level"].lower()
        if level == "warning":
            level = "warn"
        try:
            self["log-level"] = LogLevel.levelWithName(level)
        except Exception:
            raise usage.UsageError(f"unknown --log-level {self['log-level']!r}") from None
        for name in ("hub-timeout", "client-timeout"):
            try:
                self[name] = float(self[name])
            except ValueError:
                raise usage.UsageError(f"--{name} needs a number of seconds") from None
            if self[name] < 0:
                raise usage.UsageError(f"--{name} must not be negative")
        names = ["callback-timeout", "shutdown-grace", "idle-timeout"]
        if self["web-consent-timeout"] is not None:  # else: the policy's own default
            names.append("web-consent-timeout")
        for name in names:
            try:
                self[name] = float(self[name])
            except ValueError:
                raise usage.UsageError(f"--{name} needs a number of seconds") from None
            if self[name] <= 0:
                raise usage.UsageError(f"--{name} must be positive")
        self["max-request-size"] = parse_size(self["max-request-size"], "--max-request-size")
        self["max-queue-bytes"] = parse_size(self["max-queue-bytes"], "--max-queue-bytes")
        for name in ("max-failures", "max-clients", "max-pending-calls", "max-connections"):
            try:
                self[name] = int(self[name])
            except ValueError:
                raise usage.UsageError(f"--{name} needs a whole number") from None
            if self[name] < 0:
                raise usage.UsageError(f"--{name} must not be negative")
        if self["max-pending-calls"] == 0:
            raise usage.UsageError("--max-pending-calls must be positive")
        if self["lockfile"] is None:
            try:
                self["lockfile"] = hub_lockfile_path()
            except LockfileError as e:
                raise usage.UsageError(str(e)) from None
        if self["secret"] is not None and not self["secret"].strip():
            raise usage.UsageError("--secret must not be empty")


def parse_size(text: str, option: str) -> int:
    """
    @return: a byte count from C{text} such as C{"1048576"}, C{"512K"},
        C{"64M"} or C{"1G"}.
    @raise usage.UsageError: for anything else.
    """
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    value = text.strip().upper().removesuffix("B")
    scale = units.get(value[-1:], 1)
    if scale != 1:
        value = value[:-1]
    try:
        size = int(value) * scale
    except ValueError:
        raise usage.UsageError(f"{option} needs a size such as 1048576, 512K or 64M") from None
    if size <= 0:
        raise usage.UsageError(f"{option} must be positive")
    return size


def makeService(options: Any, reactor: Any = None) -> HubService:
    """
    Build the hub service from parsed L{Options}.  If the hub cannot start
    (a live hub owns the lockfile), the reason is logged in one line and the
    process exits with status 1.
    """
    if reactor is None:
        reactor = reactor_for(options)
    set_level(options["log-level"])
    _handle_sigint()
    service = HubService(
        reactor,
        listen=options["listen"],
        lockfile=options["lockfile"],
        secret=options["secret"],
        callback_timeout=options["callback-timeout"],
        max_failures=options["max-failures"],
        shutdown_grace=options["shutdown-grace"],
        web_listen=None if options["no-web"] else options["web-listen"],
        web_consent=options["web-consent"],
        web_options=(
            {"consent_timeout": options["web-consent-timeout"]}
            if options["web-consent-timeout"] is not None else None
        ),
        max_request_size=options["max-request-size"],
        label=options["label"],
        hub_timeout=options["hub-timeout"],
        client_timeout=options["client-timeout"],
        max_connections=options["max-connections"],
        idle_timeout=options["idle-timeout"],
        limits=Limits(
            max_clients=options["max-clients"],
            max_pending_calls=options["max-pending-calls"],
            max_queue_bytes=options["max-queue-bytes"],
        ),
    )
    service.when_ready().addErrback(_fatal, reactor)
    service.when_stopped().addCallback(lambda _: _stop_reactor(reactor))
    reactor.addSystemEventTrigger("after", "shutdown", _exit_normally, reactor)
    return service


def reactor_for(options: Any) -> Any:
    """
    @return: the global reactor (L{default_reactor}), with TLS support only if
        one of the hub's endpoints (parsed L{Options}) may need it.
    """
    listens = [options["listen"]] + ([] if options["no-web"] else [options["web-listen"]])
    return default_reactor(tls=not all(plain_tcp(d) for d in listens))


def default_reactor(tls: bool) -> Any:
    """
    @param tls: whether the hub listens with TLS itself (an C{ssl:} endpoint
        or another kind that may need the reactor's TLS support).
    @return: the global reactor, installing the default one if none is.

    Twisted's default reactor imports pyOpenSSL, cryptography and
    service_identity wherever they are installed (C{reactor} ->
    C{epollreactor} -> C{posixbase} -> C{tcp} -> C{_newtls} ->
    C{twisted.protocols.tls} -> C{OpenSSL}, and C{posixbase} ->
    C{twisted.internet.ssl} -> C{_sslverify} -> C{service_identity}), only
    for C{listenSSL}, C{connectSSL} and C{startTLS}: about 11 MB of RSS and
    a tenth of a second of a cold start, in a hub that listens on plain TCP
    and never uses them.  For such a hub it is installed with C{OpenSSL}
    hidden, so that Twisted takes its own branch for a system without
    pyOpenSSL; it is visible again as soon as the reactor is imported.  An
    C{https:} callback still works: Twisted's C{Agent}, imported on the
    first one, imports the TLS stack then and wraps plain TCP connections
    (C{wrapClientTLS}), which needs nothing of the reactor's TLS support
    (C{tests/unit/test_imports.py} checks both).
    """
    if tls or "twisted.internet.reactor" in sys.modules or "OpenSSL" in sys.modules:
        from twisted.internet import reactor
        return reactor
    sys.modules["OpenSSL"] = None  # type: ignore[assignment]
    try:
        from twisted.internet import reactor
    finally:
        if sys.modules.get("OpenSSL", 0) is None:
            del sys.modules["OpenSSL"]
    return reactor


def _handle_sigint() -> None:
    # A process started in the background by a non-interactive shell
    # (`twistd samphub &` in a script) inherits SIGINT ignored, and Twisted
    # handles SIGINT only where Python's default handler is installed: such
    # a hub ignored `kill -INT`, so it was killed instead, and `twistd
    # --profile ... --savestats` never got to write its profile.  The hub
    # stops cleanly on SIGINT, as on SIGTERM, however it was started.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_reactor(reactor: Any) -> None:
    # The hub stopped by itself (--hub-timeout): end the process too.
    from twisted.internet.error import ReactorNotRunning

    try:
        reactor.stop()
    except ReactorNotRunning:
        pass


def _exit_normally(reactor: Any) -> None:
    # Since Twisted 24, twistd re-raises SIGTERM/SIGINT after shutdown so the
    # process dies of the signal.  A hub stopped by a signal has shut down
    # cleanly (event sent, lockfile removed), so it exits with status 0.
    #
    # The one private name of the plugin, kept here: Twisted (26.10) has no
    # public way to say "this shutdown was clean".  The reactor records the
    # signal only in its private `_exitSignal` (declared by the private
    # `_ISupportsExitSignalCapturing`), which twistd's `startReactor` copies
    # after `reactor.run()` returns and `runApp` re-raises; clearing it in
    # an "after shutdown" trigger lets the process exit 0 while twistd still
    # saves a --profile first (tests/integration/test_twistd.py).
    if hasattr(reactor, "_exitSignal"):
        reactor._exitSignal = None


def _fatal(failure: Any, reactor: Any) -> None:
    if failure.check(HubAlreadyRunning):
        message = f"samphub: {failure.value}"
    else:
        message = f"samphub: cannot start: {failure.getErrorMessage()}"
    log.critical("{message}", message=message)
    # twistd has replaced sys.stderr with a log file object: write to the
    # real standard error so the user sees one plain line.
    os.write(2, (message + "\n").encode("utf-8", "replace"))

    def exit_failed() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    reactor.addSystemEventTrigger("after", "shutdown", exit_failed)
    if reactor.running:
        reactor.stop()
    else:
        reactor.callWhenRunning(reactor.stop)
