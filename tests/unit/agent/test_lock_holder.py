"""``lock_holder`` reads who holds the daemon's lock without taking it (a probe with flock would make a daemon
starting at that moment refuse to run)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trustfence.agent.cli.common import lock_holder


def test_the_holder_is_named_and_nobody_after_release(tmp_path: Path) -> None:
    lock = tmp_path / "daemon.lock"
    assert lock_holder(lock) is None  # no file
    with open(lock, "a+") as f:
        assert lock_holder(lock) is None  # open, not locked
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert lock_holder(lock) == os.getpid()
        assert lock_holder(tmp_path / "other.lock") is None
        fcntl.flock(f, fcntl.LOCK_UN)
        assert lock_holder(lock) is None


def test_another_process_holding_it_is_named_and_still_holds_it_after(tmp_path: Path) -> None:
    lock = tmp_path / "daemon.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys\nf = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
        "print('held', flush=True); sys.stdin.read()"), str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        for _ in range(3):
            assert lock_holder(lock) == holder.pid
        with open(lock, "a+") as f, pytest.raises(BlockingIOError):  # still the holder's alone
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        holder.communicate("", timeout=10)
    assert lock_holder(lock) is None
