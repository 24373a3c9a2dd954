"""
Idle connections cannot lock clients out: a local program opening and holding
far more connections than the hub has file descriptors, while a new client
registers; the hub logs the flood once, never an EMFILE line per connection.
"""

import http.client
import resource
import socket
import xmlrpc.client
from urllib.parse import urlsplit

from tests.peers import running_hub

HUB_FILES = 256  # the hub's soft RLIMIT_NOFILE
FLOOD = 1200  # connections held open by the flooder, per round


def register(url, secret, timeout=20.0):
    """A new client's first request, on a fresh connection, as pyvo makes it."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("POST", u.path, xmlrpc.client.dumps((secret,), "samp.hub.register"),
                     {"Content-Type": "text/xml"})
        (answer,), _ = xmlrpc.client.loads(conn.getresponse().read())
        return answer
    finally:
        conn.close()


def flood(url, count):
    u = urlsplit(url)
    held = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((u.hostname, u.port))
        held.append(s)
    return held


def test_connection_flood_under_low_rlimit(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 3 * FLOOD + 256)
    assert want > 2 * FLOOD, f"the test process itself needs {2 * FLOOD} descriptors"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    held = []
    try:
        with running_hub(tmp_path, "--log-level", "info", nofile=HUB_FILES) as hub:
            for _ in range(2):
                held += flood(hub.url, FLOOD)
                reg = register(hub.url, hub.secret)
                assert reg["samp.hub-id"] == "hub"
                # and the client carries on, on a keep-alive connection
                proxy = xmlrpc.client.ServerProxy(hub.url)
                key = reg["samp.private-key"]
                assert reg["samp.self-id"] in [
                    reg["samp.self-id"], *proxy.samp.hub.getRegisteredClients(key)
                ]
                proxy.samp.hub.unregister(key)
                proxy("close")()
            log = hub.log_text()
        assert "EMFILE" not in log and "Too many open files" not in log, hub.describe()
        flood_lines = [line for line in log.splitlines() if "a connection flood?" in line]
        assert len(flood_lines) == 1, hub.describe()
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
