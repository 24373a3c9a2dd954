"""
Lockfile location, format and safe writing (STD-LOCK-*, STD-LOCKFMT-*, STD-LOCKSEC-*).
"""

import os
import stat
from pathlib import Path

import pytest

from samptwist.errors import LockfileError
from samptwist.lockfile import (
    LockInfo,
    create_exclusive,
    format_lockfile,
    hub_lockfile_path,
    inspect_lockfile,
    lockfile_url,
    new_secret,
    parse_lockfile,
    remove_if_own,
    replace_stale,
)

INFO = LockInfo("s3cret", "http://127.0.0.1:1234/xmlrpc", "1.3", {"hub.impl": "x"})


def test_round_trip():
    text = format_lockfile(INFO)
    assert parse_lockfile(text) == INFO


def test_format_is_astropy_friendly():
    """DIFF-13: no blank lines, no trailing spaces, every non-comment line is name=value."""
    for line in format_lockfile(INFO).splitlines():
        assert line and line == line.rstrip()
        assert line.startswith("#") or "=" in line


def test_tolerant_parse():
    """STD-LOCKFMT-1/2/3/6: CRLF and CR, comments, blanks, bad lines, '=' in values."""
    text = (
        "# comment\r\n\r\nsamp.secret=a=b \r\ngarbage line\rsamp.hub.xmlrpc.url=http://h/x\n"
        "bad name=1\nsamp.profile.version=1.3\nx.y=z"
    )
    info = parse_lockfile(text)
    assert info.secret == "a=b " and info.url == "http://h/x" and info.extra == {"x.y": "z"}


def test_missing_key():
    """STD-LOCKFMT-4/6."""
    with pytest.raises(LockfileError, match="samp.secret"):
        parse_lockfile("samp.hub.xmlrpc.url=http://h/\nsamp.profile.version=1.3\n")


def test_locations(tmp_path):
    """STD-LOCK-1/2/3/4."""
    env = {"HOME": str(tmp_path)}
    assert lockfile_url(env) == (tmp_path / ".samp").as_uri()
    assert hub_lockfile_path(env) == tmp_path / ".samp"
    env["SAMP_HUB"] = "std-lockurl:file:///tmp/some%20where/lock"
    assert hub_lockfile_path(env) == Path("/tmp/some where/lock")
    env["SAMP_HUB"] = "std-lockurl:http://127.0.0.1/lock"
    assert lockfile_url(env) == "http://127.0.0.1/lock"
    with pytest.raises(LockfileError, match="not a local file"):
        hub_lockfile_path(env)
    env["SAMP_HUB"] = "web-appname:x"
    with pytest.raises(LockfileError, match="not a Standard Profile"):
        lockfile_url(env)


def test_create_exclusive_mode(tmp_path):
    """STD-LOCKSEC-1: created 0600, never over an existing file, no temp files left."""
    path = tmp_path / "sub" / ".samp"
    old = os.umask(0)
    try:
        assert create_exclusive(path, INFO)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not create_exclusive(path, LockInfo("other", "http://x/", "1.3"))
    assert parse_lockfile(path.read_text()).secret == "s3cret"
    assert sorted(p.name for p in path.parent.iterdir()) == [".samp"]


def test_writing_never_waits_for_the_disk(tmp_path, monkeypatch):
    """The hub writes its lockfile in the reactor, at start: complete from
    the moment it appears (written aside, then linked), with no fsync, which
    would block on the disk and buys nothing for a file that describes a
    live process."""
    def no_flush(fd):
        raise AssertionError("fsync in the lockfile's writing")

    monkeypatch.setattr(os, "fsync", no_flush)
    monkeypatch.setattr(os, "fdatasync", no_flush, raising=False)
    path = tmp_path / ".samp"
    assert create_exclusive(path, INFO)
    state = inspect_lockfile(path)
    assert state.kind == "valid" and state.info == INFO
    assert replace_stale(path, state, LockInfo("new", "http://127.0.0.1:9/xmlrpc", "1.3"))
    assert parse_lockfile(path.read_text()).secret == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".samp"]


def test_replace_only_if_unchanged(tmp_path):
    path = tmp_path / ".samp"
    create_exclusive(path, INFO)
    stale = inspect_lockfile(path)
    assert stale.kind == "valid" and stale.info.secret == "s3cret"
    path.unlink()  # another hub replaced it meanwhile
    create_exclusive(path, LockInfo("someone-else", "http://127.0.0.1:3/xmlrpc", "1.3"))
    mine = LockInfo("mine", "http://127.0.0.1:2/xmlrpc", "1.3")
    assert not replace_stale(path, stale, mine)
    assert parse_lockfile(path.read_text()).secret == "someone-else"
    assert replace_stale(path, inspect_lockfile(path), mine)
    assert parse_lockfile(path.read_text()).secret == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".samp"]


@pytest.mark.parametrize(
    "content, detail",
    [
        (b"", "is empty"),
        (b"# SAMP lockfile\nsamp.secret=abc\nsamp.hub.xml", "lacks samp.secret or"),
        (b"\x00\xff" * 5000, "not a usable lockfile"),
        (b"x" * 70_000, "is over 65536 bytes"),
    ],
    ids=["empty", "truncated", "garbage", "huge"],
)
def test_inspect_broken(tmp_path, content, detail):
    path = tmp_path / ".samp"
    path.write_bytes(content)
    state = inspect_lockfile(path)
    assert state.kind == "broken" and detail in state.detail
    assert inspect_lockfile(path).same_file(state)
    assert replace_stale(path, state, INFO)
    assert inspect_lockfile(path).info.secret == "s3cret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_symlink_is_replaced_never_followed(tmp_path):
    """A symlink at the lockfile path: neither read nor written through."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lockfile = tmp_path / "other.samp"
    create_exclusive(lockfile, LockInfo("theirs", "http://127.0.0.1:9/xmlrpc", "1.3"))
    for target in (victim, lockfile, tmp_path / "nowhere"):
        path = tmp_path / ".samp"
        path.symlink_to(target)
        state = inspect_lockfile(path)
        assert state.kind == "symlink" and str(target) in state.detail and state.info is None
        assert not remove_if_own(path, "theirs")
        assert replace_stale(path, state, INFO)
        assert not path.is_symlink() and inspect_lockfile(path).info.secret == "s3cret"
        path.unlink()
    assert victim.read_text() == "precious\n"
    assert inspect_lockfile(lockfile).info.secret == "theirs"


def test_inspect_other_kinds(tmp_path):
    assert inspect_lockfile(tmp_path / "none").kind == "missing"
    (tmp_path / "dir").mkdir()
    assert inspect_lockfile(tmp_path / "dir").detail == "is a directory"
    os.mkfifo(tmp_path / "fifo")
    assert inspect_lockfile(tmp_path / "fifo").kind == "other"  # and did not block
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.write_text("x")
        locked.chmod(0)
        assert inspect_lockfile(locked).kind == "unreadable"


def test_remove_if_own(tmp_path):
    """STD-LOCKSEC-4: only our own lockfile is removed."""
    path = tmp_path / ".samp"
    create_exclusive(path, INFO)
    assert not remove_if_own(path, "not-mine")
    assert path.exists()
    assert remove_if_own(path, "s3cret")
    assert not path.exists()
    assert not remove_if_own(path, "s3cret")


def test_secret_random():
    """STD-SECRET-1: unguessable."""
    secrets_ = {new_secret() for _ in range(100)}
    assert len(secrets_) == 100 and min(map(len, secrets_)) >= 40
