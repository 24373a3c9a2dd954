"""
An over-size request is answered with a readable HTTP 413 even while the
client is still writing its body (Standard and Web Profile alike): the hub
reads and discards the rest instead of resetting the connection.
"""

import os
import sys

import pytest
import pytest_twisted
from twisted.internet import reactor, utils

from samptwist.hub.service import HubService

# A blocking client, as a script or pyvo would write it: send everything,
# then read the answer.
CLIENT = r"""
import http.client, sys
from urllib.parse import urlsplit
url, size, chunked = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "chunked"
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
head = b"<?xml version='1.0'?><methodCall><methodName>samp.hub.ping</methodName><params>"
piece = b"<param><value><string>" + b"x" * (1 << 20) + b"</string></value></param>"
def body():
    yield head
    for _ in range(size // len(piece) + 1):
        yield piece
headers = {"Content-Type": "text/xml"}
if not chunked:
    headers["Content-Length"] = str(len(head) + len(piece) * (size // len(piece) + 1))
try:
    conn.request("POST", u.path, body=body(), headers=headers, encode_chunked=chunked)
    response = conn.getresponse()
except OSError as e:
    print("FAILED", type(e).__name__, e)
    sys.exit(1)
print(response.status, response.read().decode().strip())
"""


@pytest.fixture
def web_hub(tmp_path):
    service = HubService(reactor, lockfile=tmp_path / "lock",
                         web_listen="tcp:0:interface=127.0.0.1", web_consent="deny")
    service.startService()
    pytest_twisted.blockon(service.ready)
    pytest_twisted.blockon(service.web.ready)
    yield service
    pytest_twisted.blockon(service.stopService())


@pytest.mark.parametrize("profile", ["standard", "web"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_client_writing_70mb_reads_the_413(web_hub, profile, framing):
    url = web_hub.url if profile == "standard" else web_hub.web.url
    out, err, code = await utils.getProcessOutputAndValue(
        sys.executable, ["-c", CLIENT, url, str(70 * 1000 * 1000), framing], env=dict(os.environ)
    )
    text = out.decode() + err.decode()
    assert code == 0, text
    assert text.strip() == "413 request body exceeds the hub's limit of 67108864 bytes"
    # the hub goes on serving
    out, err, code = await utils.getProcessOutputAndValue(
        sys.executable, ["-c", CLIENT, url, "1000", framing], env=dict(os.environ)
    )
    assert code == 0 and out.startswith(b"200 "), out + err
