"""
JSAMP's own Web Profile client (`SAMP_HUB=web-appname:...`) against our web
hub (issue 5).  JSAMP's web client only knows http://localhost:21012 and sends
no Origin, so the test runs hub and peers inside a private network namespace
(`unshare -n`: never the shared port 21012) with `--web-consent allow-all`.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import in_ci, require_jsamp, require_samp_module

SCRIPT = r'''
import os, subprocess, sys, threading
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from web.webhub import web_hub
from pyvo.samp import SAMPIntegratedClient
from pyvo.samp import conf
conf.use_internet = False

tmp = Path(sys.argv[2])
with web_hub(tmp, "--web-consent", "allow-all",
             web_listen="tcp:21012:interface=127.0.0.1") as hub:
    assert hub.web_url == "http://127.0.0.1:21012/", hub.log()
    got = {}
    done = threading.Event()
    viewer = SAMPIntegratedClient(name="std-viewer", addr="127.0.0.1")
    viewer.connect(hub_params=hub.params)
    def load(private_key, sender_id, msg_id, mtype, params, extra):
        got.update(params)
        got["sender"] = sender_id
        viewer.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"rows": "3"}})
        done.set()
    viewer.bind_receive_call("table.load.votable", load)
    env = dict(os.environ, SAMP_HUB="web-appname:jsamp-web-test",
               JAVA_TOOL_OPTIONS="-Duser.home=" + str(tmp))
    out = subprocess.run(
        [sys.argv[3], "messagesender", "-mtype", "table.load.votable",
         "-param", "url", "http://127.0.0.1:9/t.vot", "-mode", "sync",
         "-targetname", "std-viewer"],
        env=env, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    print("JSAMP-OUT", out.returncode, out.stdout.replace("\n", " "))
    print("RECEIVED", done.wait(10), got.get("url"), got.get("sender"))
    viewer.disconnect()
    print("HUBLOG", "(web profile)" in hub.log())
'''


def test_jsamp_web_client_calls_standard_client(tmp_path):
    """WEB-HTTP-5: a JSAMP Web Profile client calls a pyvo Standard Profile client
    through our hub, and gets the reply."""
    jsamp = require_jsamp()
    require_samp_module("pyvo.samp")
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode != 0:
        if in_ci():
            pytest.fail("unshare -n is needed for the JSAMP web-client test")
        pytest.skip("unshare -n not permitted here")
    script = tmp_path / "inns.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), str(Path(__file__).resolve().parents[1]),
         str(tmp_path), jsamp],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "JSAMP-OUT 0" in out and '"samp.status": "samp.ok"' in out, out + result.stderr
    assert '"rows": "3"' in out
    assert "RECEIVED True http://127.0.0.1:9/t.vot c" in out
