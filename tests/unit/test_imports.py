"""
What each entry point imports (issue 16): the hub process (C{twistd
samphub}, which imports L{samptwist.tap}) loads neither the client library
nor treq, Twisted's HTTP client, the endpoint machinery (which pulls in
pyOpenSSL and cryptography) nor the Web Profile, and a running hub that
listens on plain TCP has no TLS stack until an https callback needs one;
the client does not import the hub.  Checked in fresh interpreters, so
nothing this test process has imported already hides a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Set

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: every samptwist module `import samptwist.tap` may load
TAP_MODULES = {
    "samptwist", "samptwist._http", "samptwist._httpclient", "samptwist._lazy", "samptwist._log",
    "samptwist._oneshot", "samptwist._version", "samptwist._xmlrpc", "samptwist.errors",
    "samptwist.constants", "samptwist.hub", "samptwist.hub.activity", "samptwist.hub.callbacks",
    "samptwist.hub.checks", "samptwist.hub.core", "samptwist.hub.events", "samptwist.hub.messaging",
    "samptwist.hub.failures", "samptwist.hub.pending",
    "samptwist.hub.policy", "samptwist.hub.registry", "samptwist.hub.subscriptions",
    "samptwist.hub.delivery", "samptwist.hub.fastlane", "samptwist.hub.httpguard",
    "samptwist.hub.limits",
    "samptwist.hub.pages",
    "samptwist.hub.service", "samptwist.hub.standard", "samptwist.hub.status",
    "samptwist.lockfile", "samptwist.mtype", "samptwist.tap", "samptwist.types",
    "samptwist._net", "samptwist.statuspage",
}
#: third-party distributions it may load: Twisted and what twisted.web needs
TAP_THIRD_PARTY = {
    "twisted", "zope", "attr", "attrs", "constantly", "incremental", "hyperlink", "idna",
    "typing_extensions",
}
#: ... and what a running hub adds: the hub's own client, made on start
RUNNING_MODULES = TAP_MODULES | {"samptwist.hub.hubclient"}
#: never in a Standard Profile hub until it needs them
FORBIDDEN = (
    "samptwist.client", "samptwist.hub.web", "samptwist._agentpost", "samptwist.samp",
    "treq", "OpenSSL", "cryptography", "service_identity", "twisted.web.client",
    "twisted.internet.endpoints", "twisted.internet.ssl", "twisted.internet._sslverify",
    "twisted.protocols.tls", "requests",
)


#: run in the fresh interpreter: print its modules, and the top-level ones
#: installed in site-packages (third-party distributions)
_REPORT = """
import json, sys, sysconfig
paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
def installed(name):
    where = getattr(sys.modules[name], "__file__", None) or ""
    return any(where.startswith(p) for p in paths)
tops = {m for m in sys.modules if "." not in m and sys.modules[m] is not None}
print(json.dumps([sorted(sys.modules), sorted(t for t in tops if installed(t))]))
"""


def _run(statement: str) -> list:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", statement + "\n" + _REPORT], env=env, capture_output=True,
        text=True, timeout=120, check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def modules_after(statement: str) -> Set[str]:
    """@return: sys.modules of a fresh interpreter after C{statement}."""
    return set(_run(statement)[0])


def installed_after(statement: str) -> Set[str]:
    """@return: the top-level site-packages modules loaded by C{statement}."""
    return set(_run(statement)[1])


def third_party(statement: str, baseline: Set[str]) -> Set[str]:
    """@return: the other distributions C{statement} imports (samptwist itself
    may be installed or on the path)."""
    return installed_after(statement) - baseline - {"samptwist"}


@pytest.fixture(scope="module")
def baseline() -> Set[str]:
    """Site-packages modules a bare interpreter has already (.pth files)."""
    return installed_after("pass")


def forbidden_in(modules: Set[str]) -> Set[str]:
    return {m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}


def test_hub_plugin_imports(baseline):
    loaded = modules_after("import samptwist.tap")
    assert forbidden_in(loaded) == set()
    # twistd installs the reactor it was asked for (--reactor) after this
    assert "twisted.internet.reactor" not in loaded
    assert {m for m in loaded if m.startswith("samptwist")} == TAP_MODULES
    assert third_party("import samptwist.tap", baseline) <= TAP_THIRD_PARTY


def test_samptwist_hub_command_imports():
    """`samptwist hub` runs a hub in the CLI's process: the same rules (issue 16)."""
    loaded = modules_after(
        "import samptwist.cli, samptwist.cli.hub, samptwist.tap; "
        "samptwist.tap.reactor_for(samptwist.cli.hub.options(['--no-web']))"
    )
    assert forbidden_in(loaded) == set()
    assert "twisted.internet.reactor" in loaded


def test_twistd_plugin_imports(baseline):
    """The plugin module twistd loads, and the parsed options of a
    --no-web hub, import no more than samptwist.tap."""
    loaded = modules_after(
        "from twisted.plugins.samptwist_plugin import *\n"
        "import samptwist.tap\n"
        "samptwist.tap.Options().parseOptions(['--no-web', '--lockfile', '/nonexistent/.samp'])"
    )
    assert forbidden_in(loaded) == set()
    assert {m for m in loaded if m.startswith("samptwist")} == TAP_MODULES


#: a --no-web hub made as twistd makes it, started, and stopped once ready
_RUN_HUB = """
import sys
from samptwist.tap import Options, makeService
opts = Options()
opts.parseOptions(["--no-web", "--lockfile", sys.argv[1]])
service = makeService(opts)
from twisted.internet import reactor
service.startService()
service.when_ready().addCallback(lambda _: service.stopService())
reactor.run()
"""


def run_hub_report(tmp_path: Path) -> Any:
    """Start and stop a default hub in a fresh interpreter; @return: its
    report (the modules loaded, the distributions installed)."""
    script = tmp_path / "run_hub.py"
    script.write_text(_RUN_HUB + _REPORT)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / ".samp")], env=env, capture_output=True,
        text=True, timeout=120, check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_running_hub_imports(baseline, tmp_path):
    """A hub on its default (plain TCP) endpoint, from makeService to
    ready: still no TLS stack, not even the one Twisted's reactor imports
    wherever pyOpenSSL is installed (see L{samptwist.tap.default_reactor})."""
    modules, installed = run_hub_report(tmp_path)
    assert "samptwist.hub.hubclient" in modules  # it did start
    assert forbidden_in(set(modules)) == set()
    assert {m for m in modules if m.startswith("samptwist")} == RUNNING_MODULES
    assert set(installed) - baseline - {"samptwist"} <= TAP_THIRD_PARTY


#: the standard library's top-level modules the hub's own code may add to
#: those Twisted loads for it (L{_TWISTED_FLOOR}): the secret's generator
#: and the open-files limit (C{--max-connections 0})
OWN_STDLIB = {"secrets", "resource"}

#: what a Standard Profile hub cannot do without, loaded by Twisted itself:
#: the reactor (installed as L{samptwist.tap.default_reactor} installs it
#: for a plain TCP hub), twisted.web.xmlrpc, services and option parsing
_TWISTED_FLOOR = """
import sys
sys.modules["OpenSSL"] = None
from twisted.internet import reactor
del sys.modules["OpenSSL"]
import twisted.web.xmlrpc, twisted.application.service, twisted.python.usage
"""

#: _RUN_HUB, recording every question to the resolver
_RUN_HUB_RESOLVER = """
import socket
asked = []
for _name in ("getfqdn", "gethostbyaddr", "gethostbyname", "gethostbyname_ex", "getaddrinfo"):
    def _record(*args, _name=_name, _real=getattr(socket, _name)):
        asked.append(_name)
        return _real(*args)
    setattr(socket, _name, _record)
""" + _RUN_HUB + """
print("asked", asked)
"""


def test_running_hub_top_level_modules(tmp_path):
    """
    From makeService to ready, the hub's own code adds no more than
    L{OWN_STDLIB} to the top-level modules Twisted needs for it
    (C{stringprep} and C{encodings.idna} were the sign of a host-name
    look-up at import).  The rest of the start's cost is Twisted's.
    """
    modules = set(run_hub_report(tmp_path)[0])
    floor = modules_after(_TWISTED_FLOOR)
    assert "samptwist.hub.hubclient" in modules  # it did start
    assert "encodings.idna" not in modules

    def tops(names: Set[str]) -> Set[str]:
        return {m.partition(".")[0] for m in names}

    assert tops(modules) - tops(floor) - {"samptwist"} == OWN_STDLIB


def test_start_asks_no_resolver(tmp_path):
    """
    Nothing between the plugin's import and a ready hub asks the resolver
    (C{getfqdn()} may take seconds on a badly configured machine): this
    machine's full name is looked up only when a callback URL needs it
    (L{samptwist._net.own_host_names}).
    """
    script = tmp_path / "run_hub.py"
    script.write_text(_RUN_HUB_RESOLVER)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / ".samp")], env=env, capture_output=True,
        text=True, timeout=120, check=True,
    )
    assert out.stdout.splitlines()[-1] == "asked []", out.stderr


def test_ssl_endpoint_keeps_the_reactors_tls():
    """A hub that listens with TLS itself gets the reactor as Twisted makes it."""
    loaded = modules_after(
        "from samptwist.tap import default_reactor\n"
        "from twisted.internet.interfaces import IReactorSSL\n"
        "assert IReactorSSL.providedBy(default_reactor(tls=True))"
    )
    assert "OpenSSL" in loaded


_HTTPS_ROUND_TRIP = """
import sys
from samptwist.tap import default_reactor
reactor = default_reactor(tls=False)
assert "OpenSSL" not in sys.modules, "the reactor imported the TLS stack"
from twisted.internet import ssl
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.client import Agent, readBody
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

class Hello(Resource):
    isLeaf = True
    def render_GET(self, request):
        return b"hello over TLS"

@implementer(IPolicyForHTTPS)
class Unverified:
    def creatorForNetloc(self, host, port):
        return ssl.CertificateOptions()

cert = ssl.KeyPair.generate().selfSignedCert(1, CN="localhost")
port = reactor.listenTCP(0, TLSMemoryBIOFactory(cert.options(), False, Site(Hello())),
                         interface="127.0.0.1")
result = []
url = b"https://127.0.0.1:%d/" % port.getHost().port
d = Agent(reactor, contextFactory=Unverified()).request(b"GET", url)
d.addCallback(readBody).addBoth(result.append).addBoth(lambda _: reactor.stop())
reactor.callLater(30, reactor.stop)
reactor.run()
print(repr(result[0]) if result else "timed out")
"""


def test_https_works_with_the_reactor_installed_without_tls():
    """The TLS stack hidden while the reactor is installed is there for the
    first https callback: Twisted's Agent (the hub's https path) talks TLS
    over the reactor's plain TCP."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _HTTPS_ROUND_TRIP], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "b'hello over TLS'", out.stderr


def test_web_profile_imported_when_asked_for():
    loaded = modules_after(
        "import samptwist.tap\n"
        "samptwist.tap.Options().parseOptions(['--lockfile', '/nonexistent/.samp'])"
    )
    assert "samptwist.hub.web.consent" in loaded


def test_package_root_imports_nothing_heavy(baseline):
    """import samptwist: the version and the exceptions; the rest on use."""
    loaded = modules_after("import samptwist")
    assert {m for m in loaded if m.startswith("samptwist")} == {
        "samptwist", "samptwist._lazy", "samptwist._version", "samptwist.errors",
    }
    assert third_party("import samptwist", baseline) == set()
    loaded = modules_after("from samptwist import SAMPClient, start_hub, __version__")
    assert "samptwist.client" in loaded and "samptwist.hub.runner" in loaded


def test_client_does_not_import_the_hub():
    loaded = modules_after("import samptwist.client")
    assert {m for m in loaded if m.startswith("samptwist.hub")} == set()


def test_constants_import_nothing_of_ours(baseline):
    """Both sides import samptwist.constants: it needs neither (nor Twisted)."""
    loaded = modules_after("import samptwist.constants")
    assert {m for m in loaded if m.startswith("samptwist")} == {
        "samptwist", "samptwist._lazy", "samptwist._version", "samptwist.errors",
        "samptwist.constants"}
    assert third_party("import samptwist.constants", baseline) == set()


def test_pyvo_style_client_imports_no_hub_module():
    """
    C{from samptwist.samp import SAMPIntegratedClient}: samptwist.samp
    imports its names on first use (PEP 562), so a client script loads no
    samptwist.hub module; the hub facade is still there when asked for.
    """
    loaded = modules_after("from samptwist.samp import SAMPIntegratedClient, SAMPHubProxy")
    assert "samptwist.samp.integrated_client" in loaded
    assert {m for m in loaded if m.startswith("samptwist.hub")} == set()
    loaded = modules_after("import samptwist.samp")
    assert {m for m in loaded if m.startswith("samptwist.")} == {
        "samptwist.samp", "samptwist._lazy", "samptwist._version", "samptwist.errors"}
    loaded = modules_after("from samptwist.samp import SAMPHubServer")
    assert "samptwist.hub.blocking" in loaded


def test_pyvo_style_names_are_all_there():
    """The lazy package still lists and gives every name of its __all__."""
    import samptwist.samp as samp

    assert set(samp.__all__) <= set(dir(samp))
    assert all(getattr(samp, name) is not None for name in samp.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        samp.nothing  # noqa: B018


@pytest.mark.parametrize("command", ["clients", "doctor"])
def test_client_cli_commands_import_no_hub_module(command):
    """
    C{samptwist clients} (its --status-url too) and C{samptwist doctor}
    derive the status page's address from samptwist.statuspage, shared with
    the hub, so they load no samptwist.hub module.
    """
    loaded = modules_after(f"import samptwist.cli.{command}")
    assert "samptwist.statuspage" in loaded
    assert {m for m in loaded if m.startswith("samptwist.hub")} == set()


def test_status_page_names_shared_with_the_hub():
    """The hub's status page uses the very functions the CLI uses."""
    from samptwist import statuspage
    from samptwist.hub import status

    assert status.status_key is statuspage.status_key
    assert status.TOKEN_HEADER is statuspage.TOKEN_HEADER
    key = statuspage.status_key("s3cret")
    assert len(key) == 32 and "s3cret" not in key
    assert statuspage.status_url("http://127.0.0.1:5/xmlrpc", "s3cret") == (
        f"http://127.0.0.1:5/status?key={key}")
