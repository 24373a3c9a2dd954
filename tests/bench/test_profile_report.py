"""
The py-spy report of C{python3 -m benchmarks.profile}: how collapsed stacks
are counted (the profile itself needs ptrace and minutes; not a test).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.profile import aggregate, report

RAW = """\
<module> (twistd:8);run (/x/site-packages/twisted/internet/base.py:1) 3
<module> (twistd:8);doPoll (/x/site-packages/twisted/internet/epollreactor.py:9) 50
<module> (twistd:8);EPollReactor.doPoll (/x/site-packages/twisted/internet/epollreactor.py:9) 40
<module> (twistd:8);render_POST (/w/samptwist/hub/standard.py:10);\
loads (/p/lib/python3.11/xmlrpc/client.py:5) 4
<module> (twistd:8);render_POST (/w/samptwist/hub/standard.py:12) 1
"""


def test_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "raw.txt"
    path.write_text(RAW)
    total, inclusive, own = aggregate(str(path))
    assert total == 58  # the 40 samples waiting in EPollReactor.doPoll left out
    assert inclusive["<module> (twistd)"] == 58
    assert inclusive["render_POST (samptwist/hub/standard.py)"] == 5  # two lines, one function
    assert own["loads (xmlrpc/client.py)"] == 4
    assert own["run (twisted/internet/base.py)"] == 3
    text = report(str(path))
    assert "8.6  render_POST (samptwist/hub/standard.py)" in text
    assert "<module> (twistd)" not in text.split("self %:")[0]  # on every stack
