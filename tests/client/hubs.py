"""
Running real hubs for the client's integration tests: ours (in-process
HubService), astropy's (pyvo.samp.SAMPHubServer, in-process, its own threads)
and JSAMP's (a ``jsamp hub`` subprocess).  Readiness is detected by watching
for the lockfile on a reactor-driven LoopingCall with a bounded deadline.
Only processes started here are ended, by their own PID.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional

import peers
from twisted.internet import defer, protocol, reactor, task
from twisted.internet.threads import deferToThread

from samptwist.client.proxy import HubProxy
from samptwist.hub.service import HubService
from samptwist.lockfile import read_lockfile

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


async def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll C{predicate} on the reactor (no sleeping) until true or C{timeout}."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await task.deferLater(reactor, interval, lambda: None)


class Collector(protocol.ProcessProtocol):
    """Collects a child's output and fires ``ended`` with its exit status."""

    def __init__(self) -> None:
        self.out: List[bytes] = []
        self.ended: defer.Deferred = defer.Deferred()
        self.exited = False

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.exited = True
        self.ended.callback(getattr(reason.value, "exitCode", None))

    def text(self) -> str:
        return b"".join(self.out).decode("utf-8", "replace")


def spawn(argv: List[str], env: dict, cwd: Optional[str] = None):
    proto = Collector()
    transport = reactor.spawnProcess(proto, argv[0], argv, env=env, path=cwd)
    return proto, transport


async def end_process(proto: Collector, transport: Any, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM this one child, wait (bounded), then SIGKILL."""
    if proto.exited:
        return
    try:
        transport.signalProcess("TERM")
    except Exception:
        return
    try:
        await wait_until(lambda: proto.exited, timeout, "child exit")
    except AssertionError:
        if not proto.exited:
            transport.signalProcess("KILL")
            await wait_until(lambda: proto.exited, 5, "child exit after SIGKILL")


async def run(argv: List[str], env: dict, timeout: float = 120.0) -> tuple:
    """Run a child to completion, bounded; returns (exit status, output)."""
    proto, transport = spawn(argv, env)
    try:
        await wait_until(lambda: proto.exited, timeout, " ".join(argv[:3]), interval=0.1)
    finally:
        await end_process(proto, transport)
    return (await proto.ended), proto.text()


def child_env(home: Path, lockfile: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SAMP_HUB"}
    env.update(
        HOME=str(home),
        SAMP_HUB=f"std-lockurl:{lockfile.as_uri()}",
        JAVA_TOOL_OPTIONS=f"-Duser.home={home}",
        PYTHONUNBUFFERED="1",
    )
    return env


async def wait_for_hub(lockfile: Path, timeout: float = START_TIMEOUT) -> None:
    """
    JSAMP writes its lockfile a moment before it accepts registrations
    ("Hub not running"): wait, bounded, until a register/unregister works.
    """
    info = read_lockfile(lockfile)
    proxy = HubProxy(info.url, reactor, timeout=5.0)
    deadline = reactor.seconds() + timeout
    try:
        while True:
            try:
                reg = await proxy.call("register", info.secret)
                await proxy.call("unregister", reg["samp.private-key"])
                return
            except Exception:
                if reactor.seconds() > deadline:
                    raise
            await task.deferLater(reactor, 0.05, lambda: None)
    finally:
        await proxy.close()


class RestartableHub:
    """
    A hub of some kind on ``lockfile``; ``start``/``stop`` may be repeated
    (for reconnection tests): ours in this process, pyvo's in a thread,
    JSAMP's as a child process.  (Not :class:`samptwist.RunningHub`, nor
    ``tests.peers.HubProcess``.)
    """

    kind = "?"

    def __init__(self, lockfile: Path, home: Path) -> None:
        self.lockfile = lockfile
        self.home = home

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class OurHub(RestartableHub):
    kind = "samptwist"

    def __init__(self, lockfile: Path, home: Path) -> None:
        super().__init__(lockfile, home)
        self.service: Optional[HubService] = None

    async def start(self) -> None:
        self.service = HubService(reactor, listen="tcp:0:interface=127.0.0.1",
                                  lockfile=self.lockfile, shutdown_grace=2.0)
        self.service.startService()
        await self.service.ready

    async def stop(self) -> None:
        if self.service is not None and self.service.running:
            await self.service.stopService()
        self.service = None


class AstropyHub(RestartableHub):
    """pyvo.samp's hub (astropy.samp's successor)."""

    kind = "astropy"

    def __init__(self, lockfile: Path, home: Path) -> None:
        super().__init__(lockfile, home)
        self.samp = peers.require_samp_module("pyvo.samp")
        self.server: Any = None

    async def start(self) -> None:
        self.server = self.samp.SAMPHubServer(
            lockfile=str(self.lockfile), web_profile=False, addr="127.0.0.1"
        )
        await deferToThread(self.server.start, False)
        await wait_until(self.lockfile.exists, START_TIMEOUT, "astropy hub lockfile")

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await deferToThread(server.stop)


class JsampHub(RestartableHub):
    kind = "jsamp"

    def __init__(self, lockfile: Path, home: Path) -> None:
        super().__init__(lockfile, home)
        self.exe = peers.require_jsamp()
        self.proc: Any = None

    async def start(self) -> None:
        argv = [self.exe, "hub", "-mode", "no-gui", "-profiles", "std"]
        self.proc = spawn(argv, child_env(self.home, self.lockfile), cwd=str(self.home))
        proto = self.proc[0]
        await wait_until(lambda: self.lockfile.exists() or proto.exited, START_TIMEOUT,
                         "jsamp hub lockfile")
        if proto.exited:
            raise AssertionError(f"jsamp hub exited:\n{proto.text()}")
        # The file may appear before its content is complete.
        await wait_until(lambda: "samp.hub.xmlrpc.url" in self.lockfile.read_text(),
                         START_TIMEOUT, "complete jsamp lockfile")
        await wait_for_hub(self.lockfile)

    async def stop(self) -> None:
        if self.proc is not None:
            proto, transport = self.proc
            self.proc = None
            await end_process(proto, transport)
            if self.lockfile.exists():  # JSAMP leaves it if killed
                self.lockfile.unlink()


HUB_KINDS = {"samptwist": OurHub, "astropy": AstropyHub, "jsamp": JsampHub}
