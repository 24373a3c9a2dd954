"""
Carrying a L{Link} over a byte stream: the desktop side runs a command (the
system's C{ssh}, C{docker exec -i}, any pipe) whose standard input and output
reach the far side's agent, and keeps doing so with backoff when it ends;
the far side speaks over its own standard input and output.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from .agent import Agent, Link
from .protocol import GREETING

#: bytes the far side may print before its greeting (a login banner)
MAX_PREAMBLE = 64 * 1024


class _Address:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.text}>"


class _StdinTransport:
    """
    The transport a L{Link} sees on the desktop side: it writes to the
    command's standard input.
    """

    def __init__(self, process: Any, reactor: Any, description: str) -> None:
        self.process = process
        self.reactor = reactor
        self.description = description
        self._ending = False

    def write(self, data: bytes) -> None:
        if not self._ending:
            self.process.write(data)

    def writeSequence(self, data: Sequence[bytes]) -> None:
        for piece in data:
            self.write(piece)

    def loseConnection(self) -> None:
        if self._ending:
            return
        self._ending = True
        self.process.closeStdin()
        # ssh ends when the far side does; insist if it does not.
        self.reactor.callLater(3.0, self._signal, "TERM")

    def abortConnection(self) -> None:
        self._ending = True
        self._signal("KILL")

    def _signal(self, name: str) -> None:
        try:
            self.process.signalProcess(name)
        except Exception:
            pass  # already gone

    def getPeer(self) -> _Address:
        return _Address(self.description)

    def getHost(self) -> _Address:
        return _Address("desktop")


class ProcessStream(ProcessProtocol):
    """
    Runs the command that reaches the far side; once the far side's
    greeting arrives, its standard input and output are the link.

    @ivar ended: fires with this object when the command ended.
    @ivar greeted: whether the far side's agent answered.
    @ivar stderr_tail: the last lines the command wrote to standard error.
    """

    def __init__(self, link: Link, reactor: Any, description: str,
                 on_stderr: Callable[[str], None]) -> None:
        self.link = link
        self.reactor = reactor
        self.description = description
        self.on_stderr = on_stderr
        self.greeted = False
        self.preamble = b""
        self.stderr_tail: Deque[str] = deque(maxlen=20)
        self._stderr = b""
        self.reason: Optional[Failure] = None
        self.ended: Deferred = Deferred()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 1:
            self._stdout(data)
        elif childFD == 2:
            self._stderr += data
            *lines, self._stderr = self._stderr.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self.stderr_tail.append(line)
                    self.on_stderr(line)

    def _stdout(self, data: bytes) -> None:
        if self.greeted:
            self.link.dataReceived(data)
            return
        self.preamble += data
        at = self.preamble.find(GREETING)
        if at < 0:
            if len(self.preamble) > MAX_PREAMBLE:
                self.stderr_tail.append("the far side printed too much without starting "
                                        "the samptwist agent")
                self.transport.signalProcess("KILL")  # type: ignore[union-attr]
            return
        rest = self.preamble[at + len(GREETING):]
        self.preamble = self.preamble[:at]
        self.greeted = True
        self.link.makeConnection(_StdinTransport(self.transport, self.reactor,
                                                 self.description))
        if rest:
            self.link.dataReceived(rest)

    def processEnded(self, reason: Failure) -> None:
        if self._stderr.strip():
            self.stderr_tail.append(self._stderr.decode("utf-8", "replace").rstrip())
        self.reason = reason
        if self.greeted:
            self.link.connectionLost(reason)
        self.ended.callback(self)

    def exit_text(self) -> str:
        """
        @return: how the command ended, in words.
        """
        reason = self.reason
        if reason is None:
            return "still running"
        if reason.check(ProcessDone):
            return "it exited"
        code = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        if signal:
            return f"it was killed by signal {signal}"
        return f"it exited with status {code}"


class Connector:
    """
    Keeps a link to the far side up: runs C{argv}, and when it ends waits
    (C{first_delay}, doubling up to C{max_delay}; back to C{first_delay}
    after a link that lasted 30 s)
    and runs it again.
    """

    def __init__(self, reactor: Any, agent: Agent, argv: List[str], *,
                 description: str, say: Callable[[str], None],
                 complain: Callable[[str], None], env: Optional[dict] = None,
                 first_delay: float = 1.0, max_delay: float = 30.0,
                 retry: bool = True) -> None:
        self.reactor = reactor
        self.agent = agent
        self.argv = argv
        self.description = description
        self.say = say
        self.complain = complain
        self.env = dict(os.environ if env is None else env)
        # This side's hub is not the far side's: never hand its lockfile on.
        self.env.pop("SAMP_HUB", None)
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.retry = retry
        self.attempts = 0
        self.current: Optional[ProcessStream] = None
        self._stopping = False
        self._wait: Optional[Deferred] = None

    def stop(self) -> None:
        """
        End the current command (by its PID) and do not start another.
        """
        self._stopping = True
        if self._wait is not None and not self._wait.called:
            self._wait.cancel()
        current = self.current
        if current is not None and current.reason is None and current.transport is not None:
            if current.greeted:
                current.link.transport.loseConnection()  # type: ignore[union-attr]
            else:
                current.transport.signalProcess("TERM")

    def start_once(self) -> ProcessStream:
        """
        Run the command once.

        @return: its L{ProcessStream} (C{ended} fires when it ends).
        """
        self.attempts += 1
        link = Link(self.agent)
        self.agent.attach(link)
        stream = ProcessStream(link, self.reactor, self.description,
                               lambda line: self.complain(f"[{self.description}] {line}"))
        self.reactor.spawnProcess(stream, self.argv[0], self.argv, env=self.env,
                                  childFDs={0: "w", 1: "r", 2: "r"})
        self.current = stream
        return stream

    async def run(self) -> int:
        """
        Keep the link up until L{stop}.

        @return: the exit status: 0 after L{stop}, 1 if the far side could
            not be started at the first attempt (or at all, without retry).
        """
        delay = self.first_delay
        ever_linked = False
        while not self._stopping:
            started = self.reactor.seconds()
            stream = self.start_once()
            await stream.ended
            lasted = self.reactor.seconds() - started
            ever_linked = ever_linked or stream.greeted
            if self._stopping:
                return 0
            if not stream.greeted:
                tail = "; ".join(list(stream.stderr_tail)[-3:]) or \
                    stream.preamble.decode("utf-8", "replace").strip()[-300:]
                text = (f"could not start the samptwist agent on {self.description} "
                        f"({stream.exit_text()}){': ' + tail if tail else ''}")
                if not ever_linked or not self.retry:
                    self.complain(text)
                    return 1
                self.complain(text)
            else:
                why = stream.link.cut_reason or stream.exit_text()
                if not self.retry:
                    self.complain(f"the link to {self.description} ended ({why})")
                    return 1
                if lasted >= 30:
                    delay = self.first_delay
            self.say(f"reconnecting to {self.description} in {delay:g}s")
            self._wait = deferLater(self.reactor, delay, lambda: None)
            try:
                await self._wait
            except Exception:
                return 0
            delay = min(delay * 2, self.max_delay)
        return 0
