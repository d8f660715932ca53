"""A ``tf`` command that finds no daemon answering starts one, unless one is already starting: then it waits
for that one. Two commands at the same moment, or one while the daemon replays its journal, must not fail with
"already running" (CI jobs and scripts start several ``tf`` commands at once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.system.conftest import TF, Host, running_host
from trustfence.agent.cli.common import lock_holder
from trustfence.agent.ipc import Client, DaemonUnavailable

pytestmark = pytest.mark.system


def answers(h: Host) -> bool:
    try:
        Client(h.home / "daemon.sock", timeout=2).close()
        return True
    except DaemonUnavailable:
        return False


def test_commands_at_the_same_moment_share_the_daemon_one_starts() -> None:
    with running_host(start=False) as h:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: h.tf("status", "--json"), range(3)))
        for r in results:
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["sandboxes"] == []
        holder = lock_holder(h.home / "daemon.lock")
        assert holder is not None and answers(h)
        started = [r for r in results if "started the TrustFence daemon" in r.stderr]
        assert started, [r.stderr for r in results]
        assert (h.home / "daemon.log").read_text(errors="replace").count("daemon ready") == 1


def held_in_start_up(h: Host) -> subprocess.Popen[bytes]:
    """A daemon stopped (SIGSTOP) once it holds its lock, before it listens."""
    with open(h.home / "daemon.log", "ab") as log:
        daemon = subprocess.Popen([*TF, "daemon", "--log-file", str(h.home / "daemon.log")], env=h.env,
                                  stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while lock_holder(h.home / "daemon.lock") != daemon.pid and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(daemon.pid, signal.SIGSTOP)
    assert lock_holder(h.home / "daemon.lock") == daemon.pid and not answers(h)
    return daemon


def meanwhile(h: Host, daemon: subprocess.Popen[bytes], *args: str) -> tuple[int, str, str]:
    """``tf args`` started while ``daemon`` is held in start-up: it must still wait after 2 s; then the
    daemon goes on."""
    try:
        cmd = subprocess.Popen([*TF, *args], env=h.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        time.sleep(2)
        assert cmd.poll() is None, cmd.communicate()
    finally:
        os.killpg(daemon.pid, signal.SIGCONT)
    out, err = cmd.communicate(timeout=60)
    return cmd.returncode, out, err


def test_a_command_waits_for_a_daemon_that_is_still_starting() -> None:
    with running_host(start=False) as h:
        daemon = held_in_start_up(h)
        code, out, err = meanwhile(h, daemon, "status", "--json")
        assert code == 0, err
        assert json.loads(out)["sandboxes"] == []
        assert f"waiting for the TrustFence daemon (pid {daemon.pid})" in err
        assert "started the TrustFence daemon" not in err
        assert "already running" not in (h.home / "daemon.log").read_text(errors="replace")
        assert lock_holder(h.home / "daemon.lock") == daemon.pid


def test_daemon_stop_stops_a_daemon_that_is_still_starting() -> None:
    with running_host(start=False) as h:
        daemon = held_in_start_up(h)
        code, out, err = meanwhile(h, daemon, "daemon", "stop")
        assert code == 0, err
        assert f"daemon stopped (pid {daemon.pid})" in out
        assert daemon.wait(timeout=30) == 0
        assert lock_holder(h.home / "daemon.lock") is None
