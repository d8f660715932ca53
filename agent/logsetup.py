"""The daemon's own log: never a flood, never unbounded.

- ``Throttle``: at most ``burst`` records of one kind (logger, level, message with its numbers blanked) per
  ``window`` seconds; the rest are counted, and the count rides on the next record of that kind once the
  window has turned. A daemon out of file descriptors logs a few lines a minute, not 600,000.
- ``--log-file``: a ``RotatingFileHandler`` (10 MiB, 3 old files kept), and the process's stdout/stderr point
  at the current file, so nothing written around the logging module escapes rotation.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Throttle", "setup_logging"]

_NUMBERS = re.compile(r"\d+")
_KEYS_MAX = 2048


class Throttle(logging.Filter):
    """Let ``burst`` records of a kind through per ``window``; count the rest and say how many were dropped."""

    def __init__(self, burst: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._seen: dict[tuple[object, ...], list[float]] = {}  # kind -> [window start, passed, suppressed]

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple[object, ...]:
        text = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        if not record.args:  # pre-formatted: addresses and counts differ each time, the message does not
            text = _NUMBERS.sub("#", text.split("\n", 1)[0][:160])
        exc = record.exc_info[0] if record.exc_info else None
        return record.name, record.levelno, text, exc

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = self.kind(record), self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.window:
            if len(self._seen) >= _KEYS_MAX:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
            if seen is not None and seen[2]:
                record.msg = f"{record.msg} [{int(seen[2])} more like this were suppressed in the previous window]"
            self._seen[key] = [now, 1, 0]
            return True
        seen[1] += 1
        if seen[1] <= self.burst:
            if seen[1] == self.burst:
                record.msg = (f"{record.msg} [repeated {self.burst} times: more like this are counted, not "
                              f"logged, for {self.window:.0f} s]")
            return True
        seen[2] += 1
        return False


def _quiet_connections(record: logging.LogRecord) -> bool:
    """mitmproxy's per-connection lines (connect, disconnect) are kept out: one each per connection otherwise."""
    return not (record.name == "mitmproxy.proxy.server" and record.levelno < logging.WARNING)


class _Rotating(logging.handlers.RotatingFileHandler):
    """Rotates, and keeps stdout/stderr on the current file (a traceback printed around logging included)."""

    std = True

    def _point_std(self) -> None:
        if self.std and self.stream is not None:
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)

    def doRollover(self) -> None:
        super().doRollover()
        self._point_std()


def setup_logging(log_file: Path | None, *, max_bytes: int = 10 << 20, backups: int = 3,
                  std: bool = True) -> logging.Handler:
    """The root logger's one handler; with ``std`` a log file also takes the process's stdout and stderr."""
    handler: logging.Handler
    if log_file is not None:
        rotating = _Rotating(log_file, maxBytes=max_bytes, backupCount=backups, delay=False)
        rotating.std = std
        rotating._point_std()
        handler = rotating
    else:
        handler = logging.StreamHandler()  # systemd: the journal stores it
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_quiet_connections)
    handler.addFilter(Throttle())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return handler
