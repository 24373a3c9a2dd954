"""
A blocking hub for scripts and notebooks, with the constructor and methods of
pyvo.samp's (formerly astropy.samp's) C{SAMPHubServer}::

    from samptwist.samp import SAMPHubServer, SAMPIntegratedClient

    hub = SAMPHubServer(web_profile=False, lockfile="/tmp/my.samp")
    hub.start()
    client = SAMPIntegratedClient()
    client.connect(hub=hub)
    ...
    hub.stop()

The hub runs on the Twisted reactor in the same background thread as the
blocking client facade (L{samptwist._reactorthread}, which both share without
importing each other); the calling thread only waits for results.
"""

from __future__ import annotations

import queue
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

from .._log import Logger
from .._reactorthread import run_in_reactor
from ..constants import DEFAULT_LISTEN, WEB_PORT
from ..errors import SAMPHubError, SAMPWarning
from ..lockfile import MULTIPLE_DIRECTORY, MULTIPLE_PREFIX, home_directory
from .runner import RunningHub, start_hub
from .web.consent import DialogConsent, IConsentPolicy

log = Logger()


class WebProfileDialog:
    """
    The base of Web Profile consent dialogs, with pyvo's interface: a
    subclass defines C{show_dialog(samp_name, details, client, origin)},
    calls L{handle_queue} periodically (from its GUI's timer or a thread),
    and answers each dialog with L{consent} or L{reject}.  Pass an instance
    as C{SAMPHubServer(web_profile_dialog=...)}; the hub sets
    C{queue_request} and C{queue_result} (see
    L{samptwist.hub.web.consent.DialogConsent}).
    """

    queue_request: queue.Queue[Any]
    queue_result: queue.Queue[Any]

    def handle_queue(self) -> None:
        """
        Show the waiting registration request, if any: calls
        C{self.show_dialog(samp_name, identity, (host, port), origin)}.
        """
        pending = getattr(self, "queue_request", None)
        if pending is None:
            return
        try:
            identity, client, origin = pending.get_nowait()
        except queue.Empty:
            return
        if isinstance(identity, dict):
            name = identity.get("samp.name", "")
        else:
            name = str(identity)
        self.show_dialog(name, identity, client, origin)

    def show_dialog(self, samp_name: str, details: Any, client: Any, origin: str) -> None:
        """Override: ask the user, then call L{consent} or L{reject}."""
        raise NotImplementedError("a WebProfileDialog subclass defines show_dialog()")

    def consent(self) -> None:
        """Allow the request being shown."""
        self.queue_result.put(True)

    def reject(self) -> None:
        """Refuse the request being shown."""
        self.queue_result.put(False)


class SAMPHubServer:
    """
    A SAMP hub started and stopped from ordinary (blocking) Python code.

    Arguments are pyvo's:

    @param secret: the registration secret (default: random).
    @param addr: address to listen on (default C{127.0.0.1}).
    @param port: Standard Profile port (0: any free port).
    @param lockfile: lockfile path; default C{SAMP_HUB}'s file, else
        C{~/.samp} (in C{mode="multiple"}: C{~/.samp-1/samp-hub-ID}).
    @param timeout: stop the hub after this many seconds without client
        activity (0: never).
    @param client_timeout: unregister clients silent for this long (0: never).
    @param mode: C{"single"} or C{"multiple"}.
    @param label: human-readable name written to the lockfile.
    @param web_profile: run the Web Profile (on C{web_port}).
    @param web_profile_dialog: decides Web Profile registrations: an object
        with pyvo's L{WebProfileDialog} interface (asked through
        L{DialogConsent}), a samptwist consent policy or C{--web-consent}
        string; C{None}: the C{auto} policy (a terminal prompt, else deny).
    @param web_port: Web Profile port (keep 21012 except in tests).
    @param pool_size: accepted for compatibility; connection pooling is
        automatic.
    """

    def __init__(
        self,
        secret: Optional[str] = None,
        addr: Optional[str] = None,
        port: int = 0,
        lockfile: Optional[str] = None,
        timeout: float = 0,
        client_timeout: float = 0,
        mode: str = "single",
        label: str = "",
        web_profile: bool = True,
        web_profile_dialog: Any = None,
        web_port: int = WEB_PORT,
        pool_size: int = 20,
    ) -> None:
        if mode not in ("single", "multiple"):
            raise ValueError(f"mode must be 'single' or 'multiple', not {mode!r}")
        self._id = str(uuid.uuid4())
        self._secret = secret
        self._addr = addr or "127.0.0.1"
        self._port = int(port)
        self._custom_lockfile = lockfile
        self._timeout = float(timeout)
        self._client_timeout = float(client_timeout)
        self._mode = mode
        self._label = label or ""
        self._web_profile = bool(web_profile)
        self._web_profile_dialog = web_profile_dialog
        self._web_port = int(web_port)
        self._pool_size = int(pool_size)
        self._running: Optional[RunningHub] = None
        self._lock = threading.Lock()

    @staticmethod
    def get_mtype_subtypes(mtype: str) -> List[str]:
        """
        @return: the subscription patterns that match C{mtype}, most specific
            first: C{"a.b.c"}, C{"a.b.*"}, C{"a.*"}, C{"*"}.
        """
        atoms = mtype.split(".")
        return [mtype] + [".".join(atoms[:n] + ["*"]) for n in range(len(atoms) - 1, -1, -1)]

    # pyvo's read-only attributes
    @property
    def id(self) -> str:
        """A unique id of this hub object."""
        return self._id

    @property
    def label(self) -> str:
        return self._label

    @property
    def is_running(self) -> bool:
        """Whether the hub is running (it may stop by itself after C{timeout})."""
        running = self._running
        return running is not None and running.is_running

    @property
    def params(self) -> Dict[str, str]:
        """
        The lockfile's contents (C{samp.secret}, C{samp.hub.xmlrpc.url}, ...),
        which pyvo clients accept as C{hub_params}.

        @raise RuntimeError: if the hub is not running.
        """
        if self._running is None:
            raise RuntimeError("the hub is not running")
        return self._running.params

    @property
    def lockfile(self) -> Optional[Path]:
        """The lockfile path while running."""
        return None if self._running is None else self._running.lockfile

    def _lockfile_path(self) -> Optional[Path]:
        if self._custom_lockfile is not None:
            return Path(self._custom_lockfile)
        if self._mode == "multiple":
            directory = home_directory() / MULTIPLE_DIRECTORY
            directory.mkdir(mode=0o700, exist_ok=True)
            return directory / f"{MULTIPLE_PREFIX}-{self._id}"
        return None

    def _listen(self, port: int, addr: str) -> str:
        if ":" in addr:
            addr = addr.replace(":", "\\:")
        return f"tcp:{port}:interface={addr}"

    def _consent(self, reactor: Any) -> Any:
        # Reactor thread: a pyvo-style dialog object is asked through
        # DialogConsent; samptwist policies and --web-consent strings pass.
        dialog = self._web_profile_dialog
        if dialog is None or isinstance(dialog, str) or IConsentPolicy.providedBy(dialog):
            return dialog
        return DialogConsent(dialog, reactor)

    def start(self, wait: bool = False) -> None:
        """
        Start the hub; return once its lockfile is written.

        If the Web Profile's port is taken (another hub runs one), the hub
        runs without it and a L{SAMPWarning} says so, as pyvo does.

        @param wait: if true, then block until the hub stops (Ctrl-C stops
            it).
        @raise samptwist.errors.HubAlreadyRunning: if a live hub owns the
            lockfile.
        @raise SAMPHubError: if this hub already runs.
        """
        with self._lock:
            if self.is_running:
                raise SAMPHubError("Hub is already running")
            options: Dict[str, Any] = {"label": self._label or f"Hub {self._id}"}
            if self._timeout:
                options["hub_timeout"] = self._timeout
            if self._client_timeout:
                options["client_timeout"] = self._client_timeout

            def go() -> Any:
                from twisted.internet import reactor

                return start_hub(
                    listen=self._listen(self._port, self._addr)
                    if (self._port or self._addr != "127.0.0.1")
                    else DEFAULT_LISTEN,
                    lockfile=self._lockfile_path(),
                    secret=self._secret,
                    web=self._web_profile,
                    web_listen=self._listen(self._web_port, "127.0.0.1"),
                    web_consent=self._consent(reactor),
                    **options,
                )

            self._running = running = run_in_reactor(go, timeout=60)
            web = running.service.web
            if web is not None:
                if web.url is None:
                    warnings.warn(
                        f"the Web Profile could not listen on port {self._web_port} (another "
                        "hub's Web Profile?); this hub runs without it",
                        SAMPWarning,
                        stacklevel=2,
                    )
                else:
                    self._web_port = int(web.profile.port)
        if wait:
            self._wait_until_stopped()

    def _wait_until_stopped(self) -> None:
        running = self._running
        if running is None:
            return
        done = threading.Event()

        def watch() -> None:
            running.service.stopped.addBoth(lambda _: done.set())

        run_in_reactor(watch)
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.stop()

    def stop(self) -> None:
        """
        Stop the hub: notify C{samp.hub.event.shutdown}, close the port,
        remove the lockfile.  Stopping a stopped hub does nothing.
        """
        with self._lock:
            running = self._running
            if running is None:
                return
            run_in_reactor(running.stop, timeout=60)

    def __enter__(self) -> SAMPHubServer:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        running = self._running
        state = f"running at {running.url}" if running and self.is_running else "stopped"
        return f"<SAMPHubServer {state}>"
