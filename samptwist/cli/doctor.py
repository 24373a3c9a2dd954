"""
C{samptwist doctor}: what works and what does not for SAMP on this desktop,
line by line and in plain words; exit status 1 when something is broken.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import stat
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO, Tuple
from urllib.parse import urlsplit

import treq

from .._httpclient import HTTPClient
from .._net import is_localhost_name, is_loopback_address
from .._xmlrpc import Fault, NotXmlRpc, encode_call, parse_answer
from ..client.discovery import lockfile_location
from ..constants import DEFAULT_WEB_LISTEN
from ..errors import LockfileError
from ..lockfile import LockInfo, path_from_url, read_lockfile
from ..statuspage import status_key
from ._common import add_hub_options

HELP = "explain what works and what does not: lockfile, hub, Web Profile, browsers"
DESCRIPTION = """\
Checks, in order: which lockfile clients will read and its permissions,
whether its hub answers (or the lockfile is stale) and which hub it is,
whether a SAMP Web Profile listens on port 21012 and which program owns the
port, how web pages are asked for consent, and whether a Chromium-based
browser lets a page of a given origin reach the hub.  Exit status 1 when
something is broken.
"""
EPILOG = """examples:
  samptwist doctor
  samptwist doctor --origin https://aladin.cds.unistra.fr
  samptwist doctor --json
"""

#: the standard Web Profile port (WEB-1), the port of the default Web Profile endpoint
WEB_PORT = int(DEFAULT_WEB_LISTEN.split(":")[1])
TIMEOUT = 5.0

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"


@dataclass
class Check:
    """
    One line of the diagnosis.

    @ivar name: what was checked.
    @ivar status: C{ok}, C{warn}, C{FAIL} (something is broken) or C{info}.
    @ivar summary: the finding, in plain words.
    @ivar details: further facts (for C{--json} and the indented lines).
    """

    name: str
    status: str
    summary: str
    details: Dict[str, Any] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_options(parser)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--origin", action="append", default=[], metavar="URL",
        help="a web page origin to check (may be repeated), e.g. https://example.org",
    )
    parser.add_argument(
        "--web-port", type=int, default=WEB_PORT, metavar="PORT",
        help=f"port of the Web Profile to look for (default {WEB_PORT}, the standard one)",
    )


# -- the browser's rules (Chromium 142+ Local Network Access) ----------------


def _loopback_host(host: str) -> bool:
    return is_localhost_name(host) or is_loopback_address(host)


def _private_host(host: str) -> bool:
    # Chromium's "local" address space, a browser's notion, not a hub policy.
    try:
        return ipaddress.ip_address(host.strip("[]")).is_private
    except ValueError:
        return host.endswith((".local", ".lan", ".home.arpa"))


def browser_verdict(origin: str) -> Tuple[str, str]:
    """
    Whether a Chromium-based browser lets a page of C{origin} call a hub on
    C{http://127.0.0.1:21012} (see docs/web-profile.md).

    @return: C{(status, explanation)}: C{ok} (plain CORS works), C{warn}
        (works once the user grants the browser's local-network permission)
        or C{FAIL} (the browser blocks it; nothing the hub can change).
    """
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname or ""
    except ValueError:
        return FAIL, "not a URL"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return FAIL, "not an http(s) page origin: browsers send such pages' requests as 'null'"
    if _loopback_host(host):
        return OK, "a page on this machine: the browser allows it (plain CORS, no prompt)"
    where = "a local-network" if _private_host(host) else "a public"
    if scheme == "http":
        return FAIL, (
            f"{where} page over plain http: Chromium blocks its requests to 127.0.0.1 "
            "(Local Network Access needs a secure context); serve the page over https"
        )
    return WARN, (
        f"{where} https page: works after the user allows the browser's 'local network "
        "access' prompt for that site (Chromium 142 and later); a denied prompt blocks it"
    )


# -- who owns a port (Linux /proc) -------------------------------------------


def port_owner(port: int) -> Optional[Tuple[Optional[int], str]]:
    """
    @return: C{(pid, command line)} of the process listening on loopback
        TCP C{port}, C{(None, why)} if it cannot be seen (another user's
        process), or C{None} if nothing listens or this is not Linux.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) <= 9 or cols[3] != "0A":  # 0A: LISTEN
                        continue
                    if int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(cols[9])
        except OSError:
            continue
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                if os.readlink(fd.path) in wanted:
                    return int(entry.name), _cmdline(int(entry.name))
        except OSError:
            continue
    return None, "a process this user cannot inspect (another user's?)"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    words = [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    text = " ".join(words)
    return text if len(text) <= 160 else text[:157] + "..."


# -- talking to hubs ---------------------------------------------------------


async def _xmlrpc(reactor: Any, url: str, method: str, *params: Any) -> Tuple[str, Any]:
    """
    Call C{method} on the XML-RPC server at C{url}, through the library's one
    HTTP client (L{HTTPClient}) and codec (L{samptwist._xmlrpc}).

    @return: C{("answer", value)}, C{("fault", text)}, C{("http", code)},
        C{("garbage", text)} or C{("down", why)}.
    """
    http = HTTPClient(reactor, timeout=TIMEOUT, user_agent="samptwist-doctor")
    try:
        # a persistent connection that we close (below), not the server: the
        # TIME_WAIT stays on our side, and the server's port can be bound
        # again at once when it stops
        answer = await http.post(url, encode_call(method, params))
    except Exception as e:
        return "down", str(e) or type(e).__name__
    finally:
        await http.close()
    if answer.code != 200:
        return "http", answer.code
    try:
        return "answer", parse_answer(answer.body)
    except Fault as fault:
        return "fault", fault.faultString
    except NotXmlRpc:
        return "garbage", answer.body[:80].decode("latin-1")


def hub_implementation(info: LockInfo) -> str:
    """
    @return: which hub wrote the lockfile C{info}, in words.
    """
    impl = info.extra.get("hub.impl", "")
    if impl.startswith("samptwist"):
        return impl
    if impl.startswith("org.astrogrid.samp") or "profile.impl" in info.extra:
        return "JSAMP (Java; TOPCAT and Aladin run this hub)"
    if impl:
        return impl
    if "hub.label" in info.extra or "hub.start.date" in info.extra:
        return "astropy.samp or pyvo.samp (Python)"
    return "an unknown implementation (its lockfile does not say)"


def _pid_alive(pid_text: str) -> Optional[bool]:
    try:
        pid = int(pid_text)
    except ValueError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _permissions(path: Path) -> Check:
    try:
        st = path.stat()
    except OSError as e:
        return Check("permissions", WARN, f"cannot check {path}: {e.strerror or e}")
    mode = stat.S_IMODE(st.st_mode)
    details = {"path": str(path), "mode": f"{mode:04o}", "owner_uid": st.st_uid}
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return Check("permissions", FAIL, f"{path} belongs to another user (uid {st.st_uid}): "
                     "its hub is not yours", details)
    if mode & 0o077:
        return Check("permissions", FAIL, f"{path} is readable or writable by other users "
                     f"(mode {mode:04o}): they could use your hub as you; run chmod 600 "
                     f"{path}", details)
    return Check("permissions", OK, f"{path} is private to you (mode {mode:04o})", details)


# -- the diagnosis -----------------------------------------------------------


async def diagnose(reactor: Any, args: argparse.Namespace) -> List[Check]:
    """
    @return: the checks, in the order shown.
    """
    checks: List[Check] = []
    info: Optional[LockInfo] = None
    hub_up = False
    try:
        where = lockfile_location(args.lockfile)
    except LockfileError as e:
        checks.append(Check("lockfile", FAIL, str(e)))
        where = ""
    path: Optional[Path] = None
    if where:
        source = ("--lockfile" if args.lockfile else
                  "SAMP_HUB" if os.environ.get("SAMP_HUB") else "the default ~/.samp")
        scheme = urlsplit(where).scheme
        if scheme != "file":
            checks.append(Check("lockfile", INFO, f"lockfile {where} (from {source}) is on a "
                                "web server; not checked further", {"url": where}))
        else:
            path = path_from_url(where)
            if path.is_dir():
                checks.append(Check("lockfile", FAIL, f"{path} is a directory, not a lockfile "
                                    "(a multi-hub directory? set SAMP_HUB)", {"path": str(path)}))
                path = None
            elif not path.exists():
                checks.append(Check("lockfile", FAIL, f"no lockfile at {path} (from {source}): "
                                    "no hub is running; start one ('samptwist hub', or TOPCAT)",
                                    {"path": str(path)}))
                path = None
            else:
                try:
                    info = read_lockfile(path)
                    checks.append(Check("lockfile", OK, f"{path} (from {source}) names a hub at "
                                        f"{info.url}", {"path": str(path), "url": info.url}))
                except (LockfileError, OSError) as e:
                    checks.append(Check("lockfile", FAIL, f"{path} is unusable: {e}",
                                        {"path": str(path)}))
                checks.append(_permissions(path))
    default = Path.home() / ".samp"
    if default.is_file() and (path is None or path.resolve() != default.resolve()):
        extra = _permissions(default)
        extra.name = "~/.samp"
        checks.append(extra)
    impl = ""
    if info is not None:
        impl = hub_implementation(info)
        kind, value = await _xmlrpc(reactor, info.url, "samp.hub.ping")
        pid = info.extra.get("hub.pid", "")
        if kind in ("answer", "fault"):
            hub_up = True
            checks.append(Check("hub", OK, f"the hub answers at {info.url}",
                                {"url": info.url, "pid": pid}))
        else:
            alive = _pid_alive(pid) if pid else None
            gone = f"; its process {pid} is gone" if alive is False else ""
            checks.append(Check(
                "hub", FAIL,
                f"stale lockfile: the hub it names does not answer ({value}){gone}. Clients "
                f"will fail; a new hub replaces this file (or delete {path})",
                {"url": info.url, "pid": pid, "error": str(value)}))
        checks.append(Check("implementation", INFO if hub_up else WARN,
                            f"{impl}" + ("" if hub_up else " (not running)"), {"impl": impl}))
    checks.extend(_stale_multi_hub(await _multi_hub(reactor)))
    web_ok, web_check = await _web_profile(reactor, args.web_port, info if hub_up else None)
    checks.append(web_check)
    checks.append(await _consent(reactor, info if hub_up else None, impl, web_ok))
    for origin in args.origin or []:
        status, why = browser_verdict(origin)
        if status != FAIL and not web_ok:
            status, why = FAIL, why + "; but no SAMP Web Profile answers, so nothing to reach"
        checks.append(Check("browser", status, f"page {origin}: {why}", {"origin": origin}))
    if not args.origin:
        checks.append(Check("browser", INFO, "Chromium-based browsers: pages on this machine "
                            "(http://localhost, http://127.0.0.1) reach the hub; https pages "
                            "elsewhere after the user allows 'local network access'; plain http "
                            "pages elsewhere are blocked. Check one with --origin URL"))
    return checks


async def _multi_hub(reactor: Any) -> List[Tuple[Path, str]]:
    """
    @return: C{(path, problem)} for each lockfile in C{~/.samp-1} (the
        multiple-hubs convention) whose hub does not answer.
    """
    found: List[Tuple[Path, str]] = []
    directory = Path.home() / ".samp-1"
    try:
        entries = sorted(directory.iterdir())[:50]
    except OSError:
        return found
    for entry in entries:
        try:
            other = read_lockfile(entry)
        except (LockfileError, OSError) as e:
            found.append((entry, f"unusable ({e})"))
            continue
        kind, value = await _xmlrpc(reactor, other.url, "samp.hub.ping")
        if kind not in ("answer", "fault"):
            found.append((entry, f"its hub at {other.url} does not answer"))
    return found


def _stale_multi_hub(stale: List[Tuple[Path, str]]) -> List[Check]:
    return [Check("stale lockfile", WARN, f"{p}: {why}; delete it", {"path": str(p)})
            for p, why in stale]


async def _web_profile(reactor: Any, port: int, info: Optional[LockInfo]) -> Tuple[bool, Check]:
    url = f"http://127.0.0.1:{port}/"
    owner = port_owner(port)
    details: Dict[str, Any] = {"url": url, "port": port}
    if owner is not None:
        details["owner_pid"], details["owner"] = owner
    kind, value = await _xmlrpc(reactor, url, "samp.webhub.ping")
    who = ""
    if owner is not None:
        pid, command = owner
        who = f" (port owned by pid {pid}: {command})" if pid else f" (port owned by {command})"
    if kind == "down" and owner is None:
        return False, Check("web profile", WARN, f"nothing listens on port {port}: web pages "
                            "cannot reach any hub. Run a hub with its Web Profile "
                            "('samptwist hub' has it unless --no-web)", details)
    if kind not in ("answer", "fault"):
        return False, Check("web profile", FAIL, f"port {port} is held by something that is not "
                            f"a SAMP Web Profile{who}; no hub can offer one until it is freed",
                            details)
    ours = info is not None and owner is not None and str(owner[0]) == info.extra.get("hub.pid")
    if info is not None and info.extra.get("hub.pid") and owner is not None and owner[0] \
            and not ours:
        return True, Check("web profile", WARN, f"a SAMP Web Profile answers on port {port}, "
                           f"but not from the hub of the lockfile{who}: web pages and desktop "
                           "applications use different hubs", details)
    owner_text = "the lockfile's hub" if ours else (who.strip(" ()") or "unknown process")
    return True, Check("web profile", OK, f"a SAMP Web Profile answers at {url} ({owner_text})",
                       details)


async def _consent(reactor: Any, info: Optional[LockInfo], impl: str, web_ok: bool) -> Check:
    if info is None or not web_ok:
        return Check("consent", INFO, "no running hub with a Web Profile to ask")
    if impl.startswith("samptwist"):
        base = info.url.rsplit("/", 1)[0]
        try:
            response = await treq.get(f"{base}/status/state.json",
                                      params={"key": status_key(info.secret)},
                                      timeout=TIMEOUT, reactor=reactor)
            state = json.loads(await response.content())
            consent = state["consent"]
        except Exception as e:
            return Check("consent", WARN, f"cannot read the hub's status page ({e})")
        mode = consent.get("mode", "?")
        waiting = len(consent.get("pending", []))
        extra = f"; {waiting} page(s) waiting: see 'samptwist web'" if waiting else ""
        remembered = len(consent.get("origins", []))
        if remembered:
            extra += f"; {remembered} origin(s) always allowed"
        status = WARN if "refuse every" in mode else OK
        return Check("consent", status, f"web pages are asked: {mode}{extra}",
                     {"mode": mode, "pending": waiting, "remembered": remembered})
    if impl.startswith("JSAMP"):
        return Check("consent", INFO, "JSAMP asks in a dialog window (needs a display)")
    return Check("consent", INFO, "this hub asks on its own terminal or window")


async def run(reactor: Any, args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    out = out or sys.stdout
    checks = await diagnose(reactor, args)
    broken = any(c.status == FAIL for c in checks)
    if args.json:
        out.write(json.dumps({"ok": not broken, "checks": [asdict(c) for c in checks]},
                             indent=2) + "\n")
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            out.write(f"{c.status:<4}  {c.name:<{width}}  {c.summary}\n")
        out.write("something is broken (FAIL above)\n" if broken else "nothing is broken\n")
    return 1 if broken else 0
