"""
Unit tests of every samp.webhub.* method, in memory (StubTreq + Clock).
"""

import xmlrpc.client

import pytest

from .harness import Web


@pytest.fixture
def web():
    return Web()


def test_register_identity_map(web):
    """WEB-REG-1, WEB-REG-3, HUB-REG-1: the registration map has key, ids and translator."""
    reg = web.call("register", {"samp.name": "page", "x-extra": "ok"})
    assert set(reg) == {"samp.private-key", "samp.hub-id", "samp.self-id", "samp.url-translator"}
    assert reg["samp.hub-id"] == "hub"
    assert reg["samp.url-translator"].startswith("http://127.0.0.1/translator/")
    assert reg["samp.private-key"] not in reg["samp.url-translator"]
    assert web.hub.client_by_id(reg["samp.self-id"]).profile == "web"


def test_register_legacy_string_and_missing_name(web):
    """WEB-REG-2: a plain string is the app name; a map without samp.name is refused."""
    reg = web.call("register", "legacy page")
    assert reg["samp.self-id"].startswith("c")
    assert "samp.name" in web.fault("register", {"other": "x"}).faultString


def test_translator_uses_request_host(web):
    """Notes 7: the translator URL uses the host name the page used (localhost)."""
    reg = web.call("register", {"samp.name": "p"}, host="http://localhost:21012/")
    assert reg["samp.url-translator"].startswith("http://localhost/translator/")


def test_arity_unknown_method_and_ping(web):
    """WEB-HTTP-3/4, HUB-PING-1: ping works without a key; arity and names checked."""
    assert web.call("ping") == ""
    assert "takes 1 argument" in web.fault("register").faultString
    assert "no such method" in web.fault("setXmlrpcCallback", "k", "u").faultString
    body = xmlrpc.client.dumps(("k",), "samp.hub.ping").encode()
    response, data = web.request("POST", "", body, {"Content-Type": "text/xml"}).result
    with pytest.raises(xmlrpc.client.Fault):
        xmlrpc.client.loads(data)


def test_standard_key_is_not_a_web_key(web):
    """WEB-HTTP-4, WEB-SEC-6: a Standard Profile key is refused by the Web Profile."""
    std, _ = web.standard()
    assert "private key" in web.fault("getRegisteredClients", std.private_key).faultString
    assert "private key" in web.fault("getRegisteredClients", "nonsense").faultString


def test_metadata_subscriptions_and_lists(web):
    """WEB-HTTP-5, DATA-META-3, MT-SUB-5/6: both profiles share one hub state."""
    std, _ = web.standard({"table.load.votable": {}})
    reg = web.register("page", subs={"samp.app.*": {}})
    key, me = reg["samp.private-key"], reg["samp.self-id"]
    assert sorted(web.call("getRegisteredClients", key)) == sorted(["hub", std.public_id])
    assert web.call("getMetadata", key, me) == {"samp.name": "page"}
    assert web.call("getMetadata", key, std.public_id) == {"samp.name": "desktop"}
    assert web.call("getSubscriptions", key, me) == {"samp.app.*": {}}
    assert web.call("getSubscribedClients", key, "table.load.votable") == {std.public_id: {}}
    assert me in web.hub.get_registered_clients(std.private_key)


def test_standard_notifies_web_client(web):
    """WEB-CB-2, WEB-CB-4: a Standard Profile notification arrives through pullCallbacks."""
    std, _ = web.standard()
    reg = web.register(subs={"table.load.votable": {}})
    message = {"samp.mtype": "table.load.votable", "samp.params": {"url": "http://x.org/t.xml"}}
    web.hub.notify(std.private_key, reg["samp.self-id"], message)
    web.hub.notify(std.private_key, reg["samp.self-id"], message)
    callbacks = web.pull(reg["samp.private-key"])
    assert callbacks == [
        {"samp.methodName": "receiveNotification", "samp.params": [std.public_id, message]}
    ] * 2
    assert web.pull(reg["samp.private-key"]) == []


def test_web_calls_standard_and_gets_response(web):
    """WEB-CB-2, MSG-TAG-1: web call -> Standard reply -> receiveResponse pulled."""
    std, rec = web.standard()
    reg = web.register()
    key = reg["samp.private-key"]
    msg_id = web.call("call", key, std.public_id, "tag-1", {"samp.mtype": "coord.pointAt.sky",
                                                            "samp.params": {}})
    assert rec.got[-1] == ("receiveCall", (reg["samp.self-id"], msg_id,
                                          {"samp.mtype": "coord.pointAt.sky", "samp.params": {}}))
    web.hub.reply(std.private_key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    (callback,) = web.pull(key)
    assert callback["samp.methodName"] == "receiveResponse"
    assert callback["samp.params"][:2] == [std.public_id, "tag-1"]


def test_web_replies_to_standard_call(web):
    """WEB-CB-2, HUB-CALL: Standard call -> web client pulls receiveCall and replies."""
    std, rec = web.standard()
    reg = web.register(subs={"samp.app.ping": {}})
    key = reg["samp.private-key"]
    ping = {"samp.mtype": "samp.app.ping"}
    msg_id = web.hub.call(std.private_key, reg["samp.self-id"], "t", ping)
    (callback,) = web.pull(key)
    assert callback["samp.methodName"] == "receiveCall"
    assert callback["samp.params"][1] == msg_id
    web.call("reply", key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    assert rec.got[-1][0] == "receiveResponse"


def test_self_ping_round_trip(web):
    """Notes 8: web client calls itself with samp.app.ping, pulls receiveCall, replies,
    pulls receiveResponse."""
    reg = web.register(subs={"samp.app.ping": {}})
    key, me = reg["samp.private-key"], reg["samp.self-id"]
    msg_id = web.call("call", key, me, "self", {"samp.mtype": "samp.app.ping", "samp.params": {}})
    (cb,) = web.pull(key)
    assert cb["samp.methodName"] == "receiveCall" and cb["samp.params"][1] == msg_id
    web.call("reply", key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    (cb,) = web.pull(key)
    assert cb == {"samp.methodName": "receiveResponse",
                  "samp.params": [me, "self", {"samp.status": "samp.ok", "samp.result": {}}]}


def test_notify_all_call_all_and_call_and_wait(web):
    """HUB-DELIV-3, HUB-WAIT-1 from a web sender."""
    std, rec = web.standard()
    reg = web.register()
    key = reg["samp.private-key"]
    msg = {"samp.mtype": "table.highlight.row", "samp.params": {"row": "1"}}
    assert web.call("notifyAll", key, msg) == [std.public_id]
    ids = web.call("callAll", key, "t", msg)
    assert list(ids) == [std.public_id]
    d = web.call_d("callAndWait", key, "hub", {"samp.mtype": "samp.app.ping"}, "5")
    web.flush()
    assert d.result == {"samp.status": "samp.ok", "samp.result": {}}


def test_call_and_wait_times_out(web):
    """HUB-WAIT-2: a web callAndWait ends with a fault after its timeout."""
    std, _ = web.standard()
    key = web.register()["samp.private-key"]
    d = web.call_d("callAndWait", key, std.public_id, {"samp.mtype": "samp.app.ping"}, "3")
    web.clock.advance(3)
    web.stub.flush()
    failures = []
    d.addErrback(failures.append)
    assert "timed out" in failures[0].value.faultString


def test_pull_before_allow_and_allow_off(web):
    """WEB-CB-1, WEB-CB-7: pull needs allowReverseCallbacks; "0" stops and discards."""
    std, _ = web.standard()
    reg = web.register(callable=False, subs={"*": {}})
    key = reg["samp.private-key"]
    assert "not callable" in web.fault("pullCallbacks", key, "0").faultString
    web.call("allowReverseCallbacks", key, "1")
    web.hub.notify(std.private_key, reg["samp.self-id"], {"samp.mtype": "x.y"})
    web.call("allowReverseCallbacks", key, "0")
    assert "not callable" in web.fault("pullCallbacks", key, "0").faultString
    web.call("allowReverseCallbacks", key, "1")
    assert web.pull(key) == []
    assert "boolean" in web.fault("allowReverseCallbacks", key, "maybe").faultString


def test_unregister(web):
    """HUB-REG, WEB-URL-2: after unregister the key and the translator stop working."""
    reg = web.register()
    key = reg["samp.private-key"]
    assert web.call("unregister", key) == ""
    assert "private key" in web.fault("getRegisteredClients", key).faultString
    path = reg["samp.url-translator"].split("/", 3)[3]
    response, _ = web.request("GET", path + "file%3A%2F%2F%2Fetc%2Fhostname").result
    assert response.code == 403
