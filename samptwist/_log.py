"""
Logging with a process-wide level threshold.

twistd prints every event it gets; samptwist's loggers drop events below
L{set_level}'s threshold before they are even formatted, which also keeps
debug logging out of the hub's hot path.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger as _Logger
from twisted.logger import LogLevel

_ORDER = [LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical]
_threshold = [1]


def set_level(level: LogLevel) -> None:
    """
    Drop samptwist log events less important than C{level}.
    """
    _threshold[0] = _ORDER.index(level)


def get_level() -> LogLevel:
    """
    @return: the current threshold.
    """
    return _ORDER[_threshold[0]]


def debugging() -> bool:
    """
    @return: whether debug events are logged: hot paths check it before
        building a debug event at all.
    """
    return _threshold[0] == 0


class Logger(_Logger):
    """
    A L{twisted.logger.Logger} honouring L{set_level}.
    """

    def emit(self, level: LogLevel, format: Any = None, **kwargs: Any) -> None:
        # log_always marks announcements users rely on (the hub's ready line).
        if _ORDER.index(level) >= _threshold[0] or kwargs.get("log_always"):
            super().emit(level, format, **kwargs)
