"""
Cases for the blocking pyvo-style facade (samptwist.samp), run by
test_facade.py in a separate interpreter with C{-p no:twisted}: the facade
runs the reactor in a thread of its own, which the suite's pytest-twisted
reactor would not allow.  Each case has a private HOME.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
import warnings
import xmlrpc.client

import pytest

from samptwist.samp import (
    SAMPClient,
    SAMPClientError,
    SAMPHubError,
    SAMPHubProxy,
    SAMPHubServer,
    SAMPIntegratedClient,
    SAMPMsgReplierWrapper,
    SAMPProxyError,
    SAMPProxyTimeoutError,
    SAMPWarning,
    WebProfileDialog,
    conf,
    lockfile_helpers,
)
from samptwist.samp.utils import SAMPXXEServerProxy

WAIT = 10.0


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    return home


@pytest.fixture
def hub(tmp_path):
    server = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "lock"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def connected(hub):
    made = []

    def make(**kwargs):
        client = SAMPIntegratedClient(**kwargs)
        client.connect(hub=hub)
        made.append(client)
        return client

    yield make
    for client in made:
        client.disconnect()


def hub_stopped(server) -> threading.Event:
    """An Event set once the hub behind the facade has stopped (no polling)."""
    from samptwist._reactorthread import run_in_reactor

    done = threading.Event()
    service = server._running.service
    run_in_reactor(lambda: service.when_stopped().addBoth(lambda _: done.set()))
    return done


# -- SAMPHubProxy -------------------------------------------------------------


def test_hub_proxy_connect_register_unregister(hub):
    proxy = SAMPHubProxy()
    assert not proxy.is_connected and proxy.lockfile == {}
    proxy.connect(hub=hub, pool_size=2)
    assert proxy.is_connected
    assert proxy.lockfile["samp.secret"] == hub.params["samp.secret"]
    assert proxy.ping() == ""
    reg = proxy.register(proxy.lockfile["samp.secret"])
    key = reg["samp.private-key"]
    assert reg["samp.self-id"] not in proxy.get_registered_clients(key)  # others only
    assert reg["samp.hub-id"] in proxy.get_registered_clients(key)
    proxy.declare_metadata(key, {"samp.name": "p"})
    assert proxy.get_metadata(key, reg["samp.self-id"])["samp.name"] == "p"
    proxy.unregister(key)
    proxy.disconnect()
    proxy.disconnect()  # twice is harmless
    assert not proxy.is_connected and proxy.lockfile == {}


def test_hub_proxy_hub_params_and_errors(hub, tmp_path):
    proxy = SAMPHubProxy()
    proxy.connect(hub_params=hub.params)
    assert proxy.is_connected
    proxy.disconnect()
    with pytest.raises(ValueError):
        proxy.connect(hub=hub, hub_params=hub.params)
    stopped = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "other"))
    with pytest.raises(SAMPHubError, match="not running"):
        proxy.connect(hub=stopped)
    with pytest.raises(SAMPHubError, match="Unable to find a running SAMP Hub"):
        proxy.connect()  # nothing in this HOME's ~/.samp
    with pytest.raises(SAMPHubError, match="not connected"):
        proxy.ping()


def test_hub_proxy_finds_samp_hub_variable(hub, monkeypatch):
    monkeypatch.setenv("SAMP_HUB", "std-lockurl:" + hub.lockfile.as_uri())
    proxy = SAMPHubProxy()
    proxy.connect()
    assert proxy.lockfile["samp.hub.xmlrpc.url"] == hub.params["samp.hub.xmlrpc.url"]
    proxy.disconnect()


def test_hub_proxy_fault_is_samp_proxy_error(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub)
    with pytest.raises(SAMPProxyError) as caught:
        proxy.register("wrong secret")
    assert isinstance(caught.value, xmlrpc.client.Fault)
    assert "secret" in caught.value.faultString
    proxy.disconnect()


def test_hub_proxy_pool_is_shared_by_threads(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub, pool_size=2)
    results = queue.Queue()
    threads = [threading.Thread(target=lambda: results.put(proxy.ping())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert [results.get_nowait() for _ in range(8)] == [""] * 8
    proxy.disconnect()


def test_call_and_wait_timeout_raises_proxy_timeout(connected):
    sender = connected()
    silent = connected()
    silent.bind_receive_call("test.silent", lambda *args: None)  # never replies
    with pytest.raises(SAMPProxyTimeoutError):
        sender.ecall_and_wait(silent.get_public_id(), "test.silent", "1")


# -- SAMPClient ---------------------------------------------------------------


def test_client_lifecycle(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub)
    client = SAMPClient(proxy, name="low", description="low-level", metadata={"x.y": "1"})
    assert not client.is_running and not client.is_registered
    client.start()
    assert client.is_running
    client.register()
    assert client.is_registered and client.get_public_id() and client.get_private_key()
    with pytest.raises(SAMPClientError, match="already registered"):
        client.register()
    meta = proxy.get_metadata(client.get_private_key(), client.get_public_id())
    assert meta == {"samp.name": "low", "samp.description.text": "low-level", "x.y": "1"}
    client.unregister()
    assert not client.is_registered and client.get_private_key() is None
    client.stop()
    assert not client.is_running
    proxy.disconnect()
    with pytest.raises(SAMPClientError, match="not connected"):
        client.register()


def test_client_callback_addr_and_port(hub):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub)
    client = SAMPClient(proxy, addr="127.0.0.1", port=port)
    client.start()
    try:
        assert client._xmlrpcAddr == f"http://127.0.0.1:{port}/"
        client.register()
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT):
            pass
        client.unregister()
    finally:
        client.stop()
        proxy.disconnect()


def test_integrated_not_callable_sends_only(connected):
    sender = connected(callable=False)
    receiver = connected()
    got = queue.Queue()
    receiver.bind_receive_notification("demo.one", lambda *a: got.put("yes"))
    assert sender.is_connected
    sender.enotify(receiver.get_public_id(), "demo.one")
    assert got.get(timeout=WAIT) == "yes"
    assert sender.get_subscriptions(sender.get_public_id()) == {}
    with pytest.raises(SAMPClientError, match="not callable"):
        sender.bind_receive_call("demo.x", print)


def test_client_not_callable_refuses_bindings(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub)
    client = SAMPClient(proxy, callable=False)
    client.start()
    client.register()
    for bind in (lambda: client.bind_receive_notification("a.b", print),
                 lambda: client.bind_receive_call("a.b", print),
                 lambda: client.bind_receive_response("t", print),
                 lambda: client.declare_subscriptions()):
        with pytest.raises(SAMPClientError, match="not callable"):
            bind()
    client.unregister()
    client.stop()
    proxy.disconnect()


def test_client_subclass_receive_methods(hub, connected):
    got = queue.Queue()

    class Mine(SAMPClient):
        def receive_notification(self, private_key, sender_id, message):
            got.put(("note", private_key, sender_id, message))
            return ""

        def receive_call(self, private_key, sender_id, msg_id, message):
            got.put(("call", message["samp.mtype"]))
            self.hub.reply(private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
            return ""

        def receive_response(self, private_key, responder_id, msg_tag, response):
            got.put(("response", msg_tag, response["samp.status"]))
            return ""

    proxy = SAMPHubProxy()
    proxy.connect(hub=hub)
    mine = Mine(proxy)
    mine.start()
    mine.register()
    mine.declare_subscriptions({"demo.*": {}})
    other = connected()
    other.enotify(mine.get_public_id(), "demo.note", a="1")
    kind, key, sender, message = got.get(timeout=WAIT)
    assert (kind, key, sender) == ("note", mine.get_private_key(), other.get_public_id())
    assert message == {"samp.mtype": "demo.note", "samp.params": {"a": "1"}}
    assert other.ecall_and_wait(mine.get_public_id(), "demo.call", "5")["samp.status"] == "samp.ok"
    assert got.get(timeout=WAIT) == ("call", "demo.call")
    other.bind_receive_call("back.call", lambda k, s, m, t, p, e: other.reply(
        m, {"samp.status": "samp.ok", "samp.result": {}}))
    proxy.call(mine.get_private_key(), other.get_public_id(), "tag-1",
               {"samp.mtype": "back.call", "samp.params": {}})
    assert got.get(timeout=WAIT) == ("response", "tag-1", "samp.ok")
    mine.unregister()
    mine.stop()
    proxy.disconnect()


def test_builtin_ping_and_env(connected, monkeypatch):
    monkeypatch.setenv("SAMPTWIST_FACADE_TEST", "here")
    a, b = connected(), connected()
    pong = a.ecall_and_wait(b.get_public_id(), "samp.app.ping", "5")
    assert pong["samp.status"] == "samp.ok"
    env = a.ecall_and_wait(b.get_public_id(), "client.env.get", "5", name="SAMPTWIST_FACADE_TEST")
    assert env["samp.result"] == {"value": "here"}
    missing = a.ecall_and_wait(b.get_public_id(), "client.env.get", "5", name="NO_SUCH_VAR_X")
    assert missing["samp.status"] == "samp.warning"


# -- SAMPIntegratedClient -----------------------------------------------------


def test_notify_all_and_call_all_warn_when_nobody_listens(connected):
    client = connected()
    with pytest.warns(SAMPWarning, match="nobody|no client"):
        assert client.enotify_all("nobody.listens") == []
    with pytest.warns(SAMPWarning, match="no client"):
        assert client.ecall_all("tag", "nobody.listens") == {}


def test_bindings_unbind_and_subscriptions(connected):
    a, b = connected(), connected()
    seen = queue.Queue()
    b.bind_receive_notification("demo.*", lambda k, s, mt, p, e: seen.put((mt, p)),
                                metadata={"x": "y"})
    assert a.get_subscribed_clients("demo.thing") == {b.get_public_id(): {"x": "y"}}
    a.enotify(b.get_public_id(), "demo.thing", extra_kws={"samp.msg-id": "x"}, k="v")
    assert seen.get(timeout=WAIT) == ("demo.thing", {"k": "v"})
    b.unbind_receive_notification("demo.*")
    assert a.get_subscribed_clients("demo.thing") == {}
    with pytest.raises(KeyError):
        b.unbind_receive_notification("demo.*")


def test_bind_receive_message_takes_calls_and_notifications(connected):
    a, b = connected(), connected()
    seen = queue.Queue()

    def both(private_key, sender_id, msg_id, mtype, params, extra):
        seen.put(msg_id)
        if msg_id is not None:
            b.ereply(msg_id, "samp.ok", {"done": "1"})

    b.bind_receive_message("demo.both", both)
    a.enotify(b.get_public_id(), "demo.both")
    assert seen.get(timeout=WAIT) is None
    assert a.ecall_and_wait(b.get_public_id(), "demo.both", "5")["samp.result"] == {"done": "1"}
    assert seen.get(timeout=WAIT) is not None


def test_raising_handler_gets_error_reply(connected):
    a, b = connected(), connected()

    def broken(*args):
        raise ValueError("no such table")

    b.bind_receive_call("demo.broken", broken)
    answer = a.ecall_and_wait(b.get_public_id(), "demo.broken", "5")
    assert answer["samp.status"] == "samp.error"
    assert "no such table" in answer["samp.error"]["samp.errortxt"]


def test_msg_replier_wrapper(connected):
    a, b = connected(), connected()

    @SAMPMsgReplierWrapper(b)
    def handler(private_key, sender_id, msg_id, mtype, params, extra):
        return {"answer": "42"}

    b.bind_receive_call("demo.wrapped", handler)
    answer = a.ecall_and_wait(b.get_public_id(), "demo.wrapped", "5")
    assert answer["samp.result"] == {"answer": "42"}


def test_integrated_receive_methods_delegate(connected):
    a = connected()
    assert a.receive_notification("wrong key", "x", {"samp.mtype": "a.b",
                                                     "samp.params": {}}) == ""
    assert a.receive_response("wrong key", "x", "t", {}) == ""


def test_integrated_subclass_receive_methods(connected, hub):
    got = queue.Queue()

    class Mine(SAMPIntegratedClient):
        def receive_call(self, private_key, sender_id, msg_id, message):
            got.put(message["samp.mtype"])
            self.ereply(msg_id, "samp.ok", {"mine": "1"})
            return ""

    mine = Mine()
    mine.connect(hub=hub)
    try:
        mine.declare_subscriptions({"demo.*": {}})
        other = connected()
        assert other.ecall_and_wait(mine.get_public_id(), "demo.x", "5")["samp.result"] == {
            "mine": "1"}
        assert got.get(timeout=WAIT) == "demo.x"
        # not overridden: the usual dispatch to bound functions
        mine.bind_receive_notification("demo.note", lambda *a: got.put("note"))
        other.enotify(mine.get_public_id(), "demo.note")
        assert got.get(timeout=WAIT) == "note"
    finally:
        mine.disconnect()


def test_bind_before_connect_is_a_clear_error():
    client = SAMPIntegratedClient()
    assert not client.is_connected
    with pytest.raises(SAMPClientError, match="connect"):
        client.bind_receive_call("a.b", print)
    with pytest.raises(SAMPClientError, match="connect"):
        client.notify("c1", {"samp.mtype": "a.b", "samp.params": {}})


def test_reconnect_and_double_connect(hub):
    client = SAMPIntegratedClient()
    client.connect(hub=hub)
    with pytest.raises(SAMPClientError, match="already connected"):
        client.connect(hub=hub)
    first = client.get_public_id()
    client.disconnect()
    assert not client.is_connected and client.get_private_key() is None
    client.connect(hub=hub)
    assert client.get_public_id() != first
    client.disconnect()


def test_clients_unregister_at_interpreter_exit(hub, connected):
    import subprocess
    import sys

    watcher = connected()
    script = (
        "import sys\n"
        "from samptwist.samp import SAMPIntegratedClient\n"
        "c = SAMPIntegratedClient(name='leaver')\n"
        "c.connect(hub_params={'samp.secret': sys.argv[1], 'samp.hub.xmlrpc.url': sys.argv[2]})\n"
        "print(c.get_public_id())\n"  # and exit without disconnect()
    )
    params = hub.params
    done = subprocess.run([sys.executable, "-c", script, params["samp.secret"],
                           params["samp.hub.xmlrpc.url"]], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    leaver = done.stdout.strip()
    assert leaver.startswith("c")
    assert leaver not in watcher.get_registered_clients()  # unregistered, not timed out


def test_disconnect_after_hub_stopped_warns(tmp_path):
    server = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "gone"))
    server.start()
    client = SAMPIntegratedClient()
    client.connect(hub=server)
    server.stop()
    with pytest.warns(SAMPWarning, match="could not unregister"):
        client.disconnect()
    assert not client.is_connected


# -- non-SAMP values ------------------------------------------------------------


def test_python_values_are_encoded_once_warned(connected):
    from samptwist.client import serverproxy

    serverproxy._reported.clear()
    a, b = connected(), connected()
    got = queue.Queue()
    b.bind_receive_notification("demo.values", lambda k, s, mt, p, e: got.put(p))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a.enotify(b.get_public_id(), "demo.values", n=1331, x=0.5, ok=True, no=False,
                  pair=(1, "b"), nested={"deep": [2.5]})
        a.enotify(b.get_public_id(), "demo.values", n=7)
    assert got.get(timeout=WAIT) == {"n": "1331", "x": "0.5", "ok": "1", "no": "0",
                                     "pair": ["1", "b"], "nested": {"deep": ["2.5"]}}
    assert got.get(timeout=WAIT) == {"n": "7"}
    kinds = sorted(str(w.message).split()[2] for w in caught if w.category is SAMPWarning)
    assert kinds == ["bool", "float", "int", "tuple"]  # each once, not per message
    assert [w.filename for w in caught if w.category is SAMPWarning] == [__file__] * 4


@pytest.mark.parametrize("bad, why", [(None, "NoneType"), (float("nan"), "nan"),
                                      (b"raw", "bytes"), ({1: "a"}, "not a string")])
def test_unencodable_values_fail_before_sending(connected, bad, why):
    from samptwist.errors import SAMPValueError

    a, b = connected(), connected()
    with pytest.raises(SAMPValueError, match=why):
        a.enotify(b.get_public_id(), "demo.values", v=bad)


# -- SAMPHubServer arguments ------------------------------------------------------


def test_mode_multiple_found_by_a_real_pyvo_client(private_home):
    from pyvo.samp import SAMPIntegratedClient as PyvoClient
    from pyvo.samp.lockfile_helpers import get_running_hubs

    server = SAMPHubServer(web_profile=False, mode="multiple", pool_size=1)
    server.start()
    try:
        path = private_home / ".samp-1" / f"samp-hub-{server.id}"
        assert server.lockfile == path
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not (private_home / ".samp").exists()
        found = get_running_hubs()
        assert list(found) == [str(path)]
        theirs = PyvoClient(name="pyvo")
        theirs.connect(hub_params=found[str(path)])
        ours = SAMPIntegratedClient()
        ours.connect(hub=server)
        got = threading.Event()
        theirs.bind_receive_notification("demo.multi", lambda *a: got.set())
        ours.enotify_all("demo.multi")
        assert got.wait(WAIT)
        ours.disconnect()
        theirs.disconnect()
    finally:
        server.stop()
    assert not path.exists()


def test_constructor_arguments(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = SAMPHubServer(secret="s3cret", addr="127.0.0.1", port=port, label="my hub",
                           lockfile=str(tmp_path / "l"), web_profile=False, pool_size=3)
    server.start()
    try:
        params = server.params
        assert params["samp.secret"] == "s3cret"
        assert params["hub.label"] == "my hub"
        assert params["samp.hub.xmlrpc.url"].startswith(f"http://127.0.0.1:{port}/")
        assert server.lockfile == tmp_path / "l"
        with pytest.raises(SAMPHubError, match="already running"):
            server.start()
    finally:
        server.stop()
    default = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "m"))
    default.start()
    assert default.params["hub.label"] == f"Hub {default.id}"
    default.stop()


def test_hub_timeout_stops_an_idle_hub(tmp_path):
    server = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "l"), timeout=1)
    server.start()
    assert hub_stopped(server).wait(WAIT)
    assert not server.is_running
    assert not (tmp_path / "l").exists()


def test_client_timeout_unregisters_a_silent_client(tmp_path):
    server = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "l"), client_timeout=1)
    server.start()
    try:
        silent, watcher = SAMPIntegratedClient(), SAMPIntegratedClient()
        silent.connect(hub=server)
        watcher.connect(hub=server)
        gone = silent.get_public_id()
        left = threading.Event()

        def unregistered(private_key, sender_id, mtype, params, extra):
            if params.get("id") == gone:
                left.set()

        watcher.bind_receive_notification("samp.hub.event.unregister", unregistered)
        deadline = time.monotonic() + WAIT
        while not left.wait(0.25):  # woken by the hub's event
            assert time.monotonic() < deadline, "the silent client was not unregistered"
            # keeps the watcher itself active meanwhile (samp.hub.ping carries no
            # key, so it is nobody's activity)
            watcher.get_registered_clients()
        assert gone not in watcher.get_registered_clients()
        watcher.disconnect()
    finally:
        server.stop()


def test_web_port_taken_warns_and_runs_without(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = SAMPHubServer(lockfile=str(tmp_path / "l"), web_port=port)
        with pytest.warns(SAMPWarning, match="Web Profile could not listen"):
            server.start()
        try:
            assert server.is_running
        finally:
            server.stop()


class _Dialog(WebProfileDialog):
    def __init__(self, allow):
        self.allow = allow
        self.seen = []
        self.polling = True

    def show_dialog(self, samp_name, details, client, origin):
        self.seen.append((samp_name, details, client[0], origin))
        self.consent() if self.allow else self.reject()

    def poll(self):
        # Woken by each request the hub queues (a bounded wait on the queue).
        while self.polling:
            try:
                request = self.queue_request.get(timeout=0.25)
            except queue.Empty:
                continue
            self.queue_request.put(request)
            self.handle_queue()


@pytest.mark.parametrize("allow", [True, False])
def test_web_profile_dialog_decides(tmp_path, allow):
    dialog = _Dialog(allow)
    server = SAMPHubServer(web_profile_dialog=dialog, web_port=0,
                           lockfile=str(tmp_path / "l"))
    server.start()  # sets the dialog's queues
    poller = threading.Thread(target=dialog.poll, daemon=True)
    poller.start()
    try:
        assert server._web_port != 0
        web = SAMPXXEServerProxy(f"http://127.0.0.1:{server._web_port}/")
        if allow:
            reg = web.samp.webhub.register({"samp.name": "Page"})
            assert reg["samp.private-key"] and reg["samp.url-translator"]
            web.samp.webhub.unregister(reg["samp.private-key"])
        else:
            with pytest.raises(SAMPProxyError, match="refused"):
                web.samp.webhub.register({"samp.name": "Page"})
        assert dialog.seen == [("Page", {"samp.name": "Page"}, "127.0.0.1", "")]
    finally:
        server.stop()
        dialog.polling = False


@pytest.mark.parametrize("policy", ["allow-all", "deny", "policy object"])
def test_web_profile_dialog_takes_samptwist_policies(tmp_path, policy):
    from samptwist.hub.web.consent import AllowAll

    server = SAMPHubServer(web_profile_dialog=AllowAll() if policy == "policy object" else policy,
                           web_port=0, lockfile=str(tmp_path / "l"))
    server.start()
    try:
        web = SAMPXXEServerProxy(f"http://127.0.0.1:{server._web_port}/")
        if policy == "deny":
            with pytest.raises(SAMPProxyError, match="refused"):
                web.samp.webhub.register({"samp.name": "Page"})
        else:
            assert web.samp.webhub.register({"samp.name": "Page"})["samp.private-key"]
    finally:
        server.stop()


# -- conf, internals, lockfile helpers -------------------------------------------


def test_get_mtype_subtypes():
    assert SAMPHubServer.get_mtype_subtypes("a.b.c") == ["a.b.c", "a.b.*", "a.*", "*"]
    assert SAMPHubServer.get_mtype_subtypes("x") == ["x", "*"]


def test_conf_settings():
    assert conf.use_internet is True and conf.n_retries == 10
    conf.use_internet = False
    with conf.set_temp("n_retries", 2):
        assert conf.n_retries == 2
    assert conf.n_retries == 10
    conf.reset()
    assert conf.use_internet is True
    with pytest.raises(AttributeError, match="use_internet"):
        conf.use_internets = False


def test_thread_internals_name_their_replacement():
    from samptwist.samp import standard_profile, utils, web_profile
    from samptwist.samp._internals import NotProvided

    for module, name, hint in [
        (standard_profile, "ThreadingXMLRPCServer", "SAMPClient.start"),
        (standard_profile, "SAMPSimpleXMLRPCRequestHandler", "receive_"),
        (web_profile, "WebProfileXMLRPCServer", "samptwist.hub.web"),
        (web_profile, "WebProfileRequestHandler", "samptwist.hub.web"),
        (utils, "_HubAsClient", "hubclient"),
    ]:
        with pytest.raises(NotProvided, match=hint):
            getattr(module, name)
    with pytest.raises(AttributeError):
        standard_profile.something_else  # noqa: B018
    assert not hasattr(web_profile, "something_else")


def test_lockfile_helpers(private_home, hub, tmp_path):
    name = tmp_path / "written"
    lockfile_helpers.write_lockfile(name, {"samp.secret": "x", "samp.hub.xmlrpc.url": "http://h/"})
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
    assert lockfile_helpers.read_lockfile(str(name))["samp.secret"] == "x"
    assert lockfile_helpers.check_running_hub(str(hub.lockfile))[0]
    assert not lockfile_helpers.check_running_hub(str(name))[0]
    made = lockfile_helpers.create_lock_file(mode="multiple", hub_id="abc",
                                             hub_params={"samp.secret": "y",
                                                         "samp.hub.xmlrpc.url": "http://h/"})
    assert made == str(private_home / ".samp-1" / "samp-hub-abc")
    lockfile_helpers.remove_garbage_lock_files()  # its hub does not answer
    assert not os.path.exists(made)
    with pytest.warns(SAMPWarning, match="already running"):
        assert lockfile_helpers.create_lock_file(lockfilename=str(hub.lockfile),
                                                 hub_params=hub.params) is False


def test_text_dialog():
    from samptwist.samp.web_profile import web_profile_text_dialog

    answers = queue.Queue()
    asked = []
    web_profile_text_dialog(({"samp.name": "P"}, ("127.0.0.1", 0), "http://a.example"),
                            answers, ask=lambda q: asked.append(q) or "y")
    assert answers.get_nowait() is True and "http://a.example" in asked[0]
    web_profile_text_dialog(("Legacy", ("127.0.0.1", 0), ""), answers, ask=lambda q: "")
    assert answers.get_nowait() is False
