"""
A "remote machine" on this box, after /work/shared/docs/remote-test-recipe.md:
its own network, mount and PID namespaces (only its own loopback; a tmpfs
HOME the desktop side cannot see), a real OpenSSH server on its loopback
with throw-away keys, reached by ``ssh -F CONFIG remote`` through a
ProxyCommand that enters the namespace (nsenter + socat).  No address but
loopback is ever used.  Ended by killing the unshare process we started
(``--kill-child`` with a PID namespace takes everything inside with it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import peers

ROOT = Path(__file__).resolve().parents[2]
SSH_PORT = 2222
START_TIMEOUT = 30.0


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}",
                                                                    os.X_OK) else None)
    if found is None:
        raise LookupError(f"{name} is not installed (apt-get install {package})")
    return found


def require_tools() -> Dict[str, str]:
    """The programs the simulated machine needs (skip, or fail under CI)."""
    def probe() -> Dict[str, str]:
        if os.geteuid() != 0:
            raise LookupError("namespaces and sshd need root")
        tools = {name: _tool(name, package) for name, package in (
            ("sshd", "openssh-server"), ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client"),
            ("socat", "socat"), ("nsenter", "util-linux"), ("unshare", "util-linux"),
            ("ip", "iproute2"))}
        return tools

    return peers.require_peer("OpenSSH in namespaces", probe)


@dataclasses.dataclass
class RemoteMachine:
    root: Path
    proc: subprocess.Popen
    pid: int  # a process inside the namespaces (sshd), as seen from outside
    home: Path  # the remote user's HOME (inside the tmpfs: invisible here)
    ssh_config: Path
    tools: Dict[str, str]

    @property
    def ssh(self) -> List[str]:
        return [self.tools["ssh"], "-F", str(self.ssh_config)]

    def enter(self, pid_namespace: bool = False) -> List[str]:
        """Command prefix running a program on the remote machine (no ssh), in
        its network and mount namespaces; with C{pid_namespace} in its PID
        namespace too, so that what it leaves running (the far hub a --via
        link starts) ends with the machine.  (Not by default: nsenter then
        forks, and signals to it would not reach the program.)"""
        prefix = [self.tools["nsenter"], f"--net=/proc/{self.pid}/ns/net",
                  f"--mount=/proc/{self.pid}/ns/mnt"]
        return prefix + ([f"--pid=/proc/{self.pid}/ns/pid"] if pid_namespace else [])

    def env(self, **extra: str) -> Dict[str, str]:
        """Environment of a program run on the remote machine."""
        env = dict(os.environ)
        env.pop("SAMP_HUB", None)
        env.update(HOME=str(self.home), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
                   JAVA_TOOL_OPTIONS=f"-Duser.home={self.home}")
        env.update(extra)
        return env

    def run(self, argv: List[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run a command on the remote machine to completion (bounded)."""
        return subprocess.run(self.enter() + argv, env=self.env(), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def popen(self, argv: List[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.enter() + argv, env=self.env(), start_new_session=True,
                                **kwargs)

    def exists(self, path: Path) -> bool:
        return self.run(["test", "-e", str(path)]).returncode == 0


def _children(pid: int) -> List[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextlib.contextmanager
def remote_machine(tmp_path: Path) -> Iterator[RemoteMachine]:
    tools = require_tools()
    r = tmp_path / "far"
    (r / "remote-only").mkdir(parents=True)
    os.chmod(r, 0o755)
    for key in ("hostkey", "userkey"):
        subprocess.run([tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(r / key)],
                       check=True, timeout=30, stdin=subprocess.DEVNULL)
    shutil.copy(r / "userkey.pub", r / "authorized_keys")
    home = r / "remote-only" / "home"
    (r / "sshd_config").write_text(f"""\
Port {SSH_PORT}
ListenAddress 127.0.0.1
HostKey {r}/hostkey
AuthorizedKeysFile {r}/authorized_keys
PidFile {r}/remote-only/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
SetEnv HOME={home} PYTHONPATH={ROOT} PYTHONUNBUFFERED=1
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    script = (f"ip link set lo up && mount -t tmpfs none {r}/remote-only && "
              f"mkdir -p {home} && exec {tools['sshd']} -D -e -f {r}/sshd_config")
    log = open(r / "sshd.log", "w")
    proc = subprocess.Popen([tools["unshare"], "--net", "--mount", "--pid", "--fork",
                             "--kill-child", "--mount-proc", "bash", "-c", script],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = peers.Inbox()

    def drain() -> None:  # sshd's log, line by line, until it ends
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            log.write(line)
            log.flush()
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        # sshd (-D -e) says when it listens; the wait ends with that line or its end.
        said = lines.wait_for(lambda line: line is None or "Server listening" in line,
                              START_TIMEOUT, what="sshd listening")
        assert said is not None, f"sshd did not start: {(r / 'sshd.log').read_text()}"
        kids = _children(proc.pid)
        assert kids and Path(f"/proc/{kids[0]}/exe").resolve().name == "sshd", kids
        pid = kids[0]
        config = r / "ssh_config"
        config.write_text(f"""\
Host remote
  HostName 127.0.0.1
  Port {SSH_PORT}
  User root
  IdentityFile {r}/userkey
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ProxyCommand {tools['nsenter']} --net=/proc/{pid}/ns/net {tools['socat']} - \
TCP:127.0.0.1:{SSH_PORT}
""")
        machine = RemoteMachine(r, proc, pid, home, config, tools)
        done = subprocess.run(machine.ssh + ["remote", "echo", "$HOME"], capture_output=True,
                              text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and done.stdout.strip() == str(home), \
            f"ssh failed: {done.stdout} {done.stderr}\n{(r / 'sshd.log').read_text()}"
        assert not home.exists(), "the remote HOME is visible from the desktop side"
        yield machine
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()


def python() -> str:
    return sys.executable
