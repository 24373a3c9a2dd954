"""
Fixtures of the remote-session tests.
"""

from __future__ import annotations

import errno
import os
from typing import Any, List, Tuple

import pytest


@pytest.fixture
def pipes():
    """
    @return: a function that makes a pipe (C{(read, write)}); every end
        still open is closed after the test.
    """
    fds: List[int] = []

    def make() -> Tuple[int, int]:
        r, w = os.pipe()
        fds.extend((r, w))
        return r, w

    yield make
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def no_sendfile(monkeypatch):
    """
    C{os.sendfile} fails as on an output that takes none (C{EINVAL}).
    """

    def refuse(*args: Any) -> int:
        raise OSError(errno.EINVAL, "no sendfile here")

    monkeypatch.setattr(os, "sendfile", refuse)
