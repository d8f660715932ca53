"""The daemon's log never floods: repeats of one kind are counted, not written, and the count is reported."""

from __future__ import annotations

import logging
from pathlib import Path

from trustfence.agent.logsetup import Throttle, setup_logging


def record(msg: str, *args: object, name: str = "asyncio") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args or None, None)


def test_a_repeated_error_passes_a_few_times_then_is_counted_and_reported_once_the_window_turns() -> None:
    now = [0.0]
    t = Throttle(burst=3, window=60, clock=lambda: now[0])
    passed = [t.filter(r) for r in (record(f"socket.accept() out of system resource (fd {i})") for i in range(1000))]
    assert passed.count(True) == 3
    other = record("traffic row %s lost: %s", 7, "full")
    assert t.filter(other)  # another kind is not held back
    now[0] = 61.0
    late = record("socket.accept() out of system resource (fd 5)")
    assert t.filter(late) and "997 more like this were suppressed" in str(late.msg)


def test_the_log_file_rotates(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    handler = setup_logging(log, max_bytes=4096, backups=2, std=False)
    try:
        for i in range(400):
            logging.getLogger(f"tf.test.{i}").info("line %d of a long run", i)  # each its own kind
        handler.flush()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.log", "daemon.log.1", "daemon.log.2"]
        assert all(p.stat().st_size <= 4096 + 200 for p in tmp_path.iterdir())
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
