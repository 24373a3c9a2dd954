"""
The Web Profile site shares the Standard Profile's input protections
(issue 8): a request size limit and refusal of DTDs/entities.
"""

import xmlrpc.client

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from samptwist.hub.service import HubService


@pytest.fixture
def web_hub(tmp_path):
    service = HubService(reactor, lockfile=tmp_path / "lock",
                         web_listen="tcp:0:interface=127.0.0.1", web_consent="deny",
                         max_request_size=4096)
    service.startService()
    pytest_twisted.blockon(service.ready)
    pytest_twisted.blockon(service.web.ready)
    yield service
    pytest_twisted.blockon(service.stopService())


@pytest_twisted.ensureDeferred
async def test_web_body_size_limit(web_hub):
    body = xmlrpc.client.dumps(({"samp.name": "x" * 10_000},), "samp.webhub.register").encode()
    r = await treq.post(web_hub.web.url, body, headers={"Content-Type": "text/plain"})
    assert r.code == 413 and b"4096 bytes" in await r.content()


@pytest_twisted.ensureDeferred
async def test_web_refuses_dtd(web_hub):
    body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>'
            b"samp.webhub.ping</methodName><params/></methodCall>")
    r = await treq.post(web_hub.web.url, body, headers={"Content-Type": "text/plain"})
    with pytest.raises(xmlrpc.client.Fault, match="DTD"):
        xmlrpc.client.loads(await r.content())
    ok = xmlrpc.client.dumps((), "samp.webhub.ping").encode()
    r = await treq.post(web_hub.web.url, ok, headers={"Content-Type": "text/plain"})
    assert xmlrpc.client.loads(await r.content())[0] == ("",)
