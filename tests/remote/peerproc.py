"""
Running the tests' pyvo peer (scripts/farpeer.py) as a process, on the
desktop side or on the simulated remote machine, and talking to it in JSON
lines with bounded waits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import peers

SCRIPT = Path(__file__).resolve().parent / "scripts" / "farpeer.py"
ROOT = Path(__file__).resolve().parents[2]


class PeerProcess:
    def __init__(self, argv: List[str], env: Dict[str, str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.events = peers.Inbox()
        self._seq = 0
        self.stderr: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        ready = self.wait(lambda e: e.get("event") == "ready", 60, "the peer to register")
        self.id = ready["id"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, ""):
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "garbage", "line": line})
        self.events.put({"event": "exit"})

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, ""):
            self.stderr.append(line.rstrip())

    def wait(self, predicate: Callable[[Dict[str, Any]], bool], timeout: float,
             what: str) -> Dict[str, Any]:
        def check(event: Dict[str, Any]) -> bool:
            if event.get("event") == "exit":
                raise AssertionError(f"peer {self.name} exited: {self.stderr[-20:]}")
            return predicate(event)

        return self.events.wait_for(check, timeout,
                                    what=f"{what} ({self.name}; stderr {self.stderr[-5:]})")

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def ask(self, event: str, timeout: float = 90.0, **command: Any) -> Dict[str, Any]:
        """Send a command; return its event (or raise on the peer's error)."""
        self._seq += 1
        seq = self._seq
        self.send(seq=seq, **command)
        if command.get("op") == "call":  # the response comes later, by its tag
            self.wait(lambda e: e.get("seq") == seq and e.get("event") in ("sent", "error"),
                      timeout, f"{command} sent")
            tag = command["tag"]
            return self.wait(lambda e: e.get("event") == "response" and e.get("tag") == tag,
                             timeout, f"the response to {tag}")
        got = self.wait(lambda e: e.get("seq") == seq and e.get("event") in (event, "error"),
                        timeout, f"{event} after {command}")
        if got["event"] == "error":
            raise AssertionError(f"peer {self.name}: {got['text']}")
        return got

    def names(self) -> List[str]:
        return list(self.ask("clients", op="clients")["names"])

    def wait_names(self, predicate: Callable[[List[str]], bool], timeout: float,
                   what: str) -> List[str]:
        """
        The names of the clients the peer sees, once C{predicate} holds:
        asked again after each hub event the peer receives (no polling).
        """
        deadline = time.monotonic() + timeout
        while True:
            seen = max((e.get("n", 0) for e in self.events.snapshot()
                        if e.get("event") == "hub-event"), default=0)
            names = self.names()
            if predicate(names):
                return names
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise AssertionError("timed out")
                self.wait(lambda e, seen=seen: e.get("event") == "hub-event"
                          and e.get("n", 0) > seen,
                          remaining, "a hub event")
            except AssertionError:
                raise AssertionError(f"{what}: {self.name} sees {names}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(op="quit")
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)


def peer_argv(name: str) -> List[str]:
    return [sys.executable, str(SCRIPT), name]


def desktop_peer(env: Dict[str, str], name: str) -> PeerProcess:
    env = dict(env, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return PeerProcess(peer_argv(name), env, name)


def remote_peer(machine: Any, name: str, env: Optional[Dict[str, str]] = None) -> PeerProcess:
    return PeerProcess(machine.enter() + peer_argv(name), env or machine.env(), name)
