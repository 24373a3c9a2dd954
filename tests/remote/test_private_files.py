"""
Files that never cross a remote link, whoever names them in a message
(samptwist.remote.files.private_reason): ssh and GnuPG keys, SAMP lockfiles
(hub secrets), remembered consents, anything that starts like a private key;
and which do (SharePolicy): files in HOME outside its hidden files, in the
temporary directory, or in a directory shared with --share.
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from samptwist.remote.files import Exports, private_reason

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"


def make_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_bytes(KEY)
    (home / ".ssh" / "config").write_text("Host *\n")
    (home / ".samp").write_text("samp.secret=abc\nsamp.hub.xmlrpc.url=http://127.0.0.1:1/\n")
    (home / ".samp-1").mkdir()
    (home / ".samp-1" / "samp-hub-1").write_text("samp.secret=def\n")
    (home / "table.vot").write_text("<VOTABLE/>")
    return home


def test_secret_places_and_private_keys_are_refused(tmp_path):
    home = make_home(tmp_path)
    lock = tmp_path / "private.samp"
    lock.write_text("samp.secret=ghi\n")
    env = {"SAMP_HUB": f"std-lockurl:{lock.as_uri()}"}
    stray_key = tmp_path / "backup-key"
    stray_key.write_bytes(b"\n  " + KEY)
    link = tmp_path / "innocent.vot"
    link.symlink_to(home / ".ssh" / "id_ed25519")
    config = tmp_path / "cfg"
    (config / "samptwist").mkdir(parents=True)
    (config / "samptwist" / "web-origins.json").write_text("{}")
    env["XDG_CONFIG_HOME"] = str(config)

    def why(p: Path):
        return private_reason(p, home=home, env=env)

    assert "holds secrets" in why(home / ".ssh" / "config")
    assert "holds secrets" in why(home / ".samp")
    assert "holds secrets" in why(home / ".samp-1" / "samp-hub-1")
    assert "holds secrets" in why(lock)
    assert "holds secrets" in why(link)  # the resolved path counts
    assert "holds secrets" in why(config / "samptwist" / "web-origins.json")
    assert why(stray_key) == "it is a private key"
    assert why(home / "table.vot") is None
    assert why(tmp_path / "absent.vot") is None


def test_a_message_naming_a_key_keeps_its_file_url(tmp_path, monkeypatch):
    home = make_home(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    exports = Exports(Clock())
    key_url = (home / ".ssh" / "id_ed25519").as_uri()
    table_url = (home / "table.vot").as_uri()
    out = exports.outgoing({"url": key_url, "also": [table_url]}, 4321)
    assert out["url"] == key_url  # untranslated: unreadable on the other side
    assert out["also"][0].startswith("http://127.0.0.1:4321/")
    assert out["also"][0].endswith("/table.vot")
    assert len(exports.entries) == 1
    (entry,) = exports.entries.values()
    assert entry.target == os.path.realpath(home / "table.vot")


def test_only_files_in_shared_places_cross(tmp_path):
    from samptwist.remote.files import SharePolicy

    home = tmp_path / "home"
    (home / ".config" / "gcloud").mkdir(parents=True)
    (home / "data").mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    elsewhere = tmp_path / "survey"
    elsewhere.mkdir()
    files = {name: tmp_path / name for name in (
        "home/data/t.vot", "home/.netrc", "home/.config/gcloud/creds.json", "tmp/a.fits",
        "survey/big.fits")}
    for path in files.values():
        path.write_text("x")
    policy = SharePolicy(home=home, env={}, temp=str(temp))
    assert policy.refuse(files["home/data/t.vot"]) is None
    assert policy.refuse(files["tmp/a.fits"]) is None
    assert "hidden" in policy.refuse(files["home/.netrc"])
    assert "hidden" in policy.refuse(files["home/.config/gcloud/creds.json"])
    assert "outside the shared places" in policy.refuse(files["survey/big.fits"])
    assert "--share DIR" in policy.refuse(files["survey/big.fits"])
    # A link from a shared place to elsewhere counts where it leads.
    (home / "data" / "link.fits").symlink_to(files["survey/big.fits"])
    assert "outside" in policy.refuse(home / "data" / "link.fits")
    shared = SharePolicy(home=home, env={}, temp=str(temp), shared=[str(elsewhere)])
    assert shared.refuse(files["survey/big.fits"]) is None
    assert shared.refuse(home / "data" / "link.fits") is None


def test_a_key_in_a_shared_place_is_refused_when_read(tmp_path):
    from samptwist.remote.files import FileSource
    from samptwist.remote.protocol import Refused
    from samptwist.testing import failure_of

    key = tmp_path / "backup"
    key.write_bytes(KEY)
    f = failure_of(Deferred.fromCoroutine(FileSource(str(key), 10 ** 6).start()))
    assert f.check(Refused) and "private key" in str(f.value)
