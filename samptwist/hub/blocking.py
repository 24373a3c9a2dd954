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
blocking client facade (L{samptwist.client.blocking}); the calling thread only
waits for results.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

from .._log import Logger
from ..client.blocking import run_in_reactor
from ..lockfile import home_directory
from .runner import RunningHub, start_hub
from .service import DEFAULT_LISTEN

log = Logger()


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
    @param web_profile_dialog: a consent policy object for web registrations
        (see docs/web-profile.md); C{None}: the C{auto} policy.
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
        web_port: int = 21012,
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
        self._running: Optional[RunningHub] = None
        self._lock = threading.Lock()

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
            return home_directory() / ".samp-1" / f"samp-hub-{self._id}"
        return None

    def _listen(self, port: int, addr: str) -> str:
        if ":" in addr:
            addr = addr.replace(":", "\\:")
        return f"tcp:{port}:interface={addr}"

    def start(self, wait: bool = False) -> None:
        """
        Start the hub; return once its lockfile is written.

        @param wait: if true, then block until the hub stops (Ctrl-C stops
            it).
        @raise samptwist.errors.HubAlreadyRunning: if a live hub owns the
            lockfile.
        @raise RuntimeError: if this hub already runs.
        """
        with self._lock:
            if self.is_running:
                raise RuntimeError("the hub is already running")
            options: Dict[str, Any] = {}
            if self._label:
                options["label"] = self._label
            if self._timeout:
                options["hub_timeout"] = self._timeout
            if self._client_timeout:
                options["client_timeout"] = self._client_timeout
            self._running = run_in_reactor(
                start_hub,
                listen=self._listen(self._port, self._addr)
                if (self._port or self._addr != "127.0.0.1")
                else DEFAULT_LISTEN,
                lockfile=self._lockfile_path(),
                secret=self._secret,
                web=self._web_profile,
                web_listen=self._listen(self._web_port, "127.0.0.1"),
                web_consent=self._web_profile_dialog,
                timeout=60,
                **options,
            )
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
