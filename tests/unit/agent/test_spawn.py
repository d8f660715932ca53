"""The agent's process as ``tf run`` forks it: it runs nothing until told what, then runs exactly that."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from trustfence.agent.sandbox import cgroup
from trustfence.agent.spawn import PendingAgent

ENV = {"PATH": "/usr/bin:/bin"}


def sh(agent: PendingAgent, script: str, env: dict[str, str] | None = None, join: str | None = None) -> int:
    agent.start(["sh", "-c", script], env or ENV, join, None)
    return agent.wait()


def test_cancelled_before_start_it_exits_and_is_reaped() -> None:
    agent = PendingAgent()
    agent.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(agent.pid, os.WNOHANG)


def test_runs_the_command_with_exactly_the_given_environment(tmp_path: Path) -> None:
    out = tmp_path / "env"
    os.environ["TF_TEST_CALLER_ONLY"] = "1"
    try:
        code = sh(PendingAgent(), f'env > {out}; exit 3', {**ENV, "X": "v"})
    finally:
        del os.environ["TF_TEST_CALLER_ONLY"]
    assert code == 3
    lines = out.read_text().splitlines()
    assert "X=v" in lines and not any(ln.startswith("TF_TEST_CALLER_ONLY=") for ln in lines)


def test_a_signal_that_ends_it_is_reported_as_a_shell_reports_it() -> None:
    assert sh(PendingAgent(), "kill -TERM $$") == 128 + signal.SIGTERM


def test_it_is_in_its_own_process_group_before_it_starts() -> None:
    agent = PendingAgent()
    try:
        assert os.getpgid(agent.pid) == agent.pid != os.getpgrp()
        assert cgroup.parent_of(agent.pid) == os.getpid()
    finally:
        agent.cancel()


def test_nothing_the_caller_holds_open_reaches_it(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        code = sh(PendingAgent(), f"test -e /proc/self/fd/{w} && echo open > {tmp_path / 'seen'}; exit 0")
    finally:
        os.close(r)
        os.close(w)
    assert code == 0 and not (tmp_path / "seen").exists()


def test_signals_python_ignores_are_back_to_their_defaults(tmp_path: Path) -> None:
    out = tmp_path / "status"
    assert sh(PendingAgent(), f"grep SigIgn /proc/self/status > {out}") == 0
    ignored = int(out.read_text().split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))


def test_it_joins_the_given_cgroup_file_first(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"  # a plain file stands in for the cgroup's
    procs.write_text("")
    agent = PendingAgent()
    assert sh(agent, "exit 0", join=str(procs)) == 0
    assert procs.read_text() == "0"  # the writer itself: its own pid in its namespace is 1


def test_a_command_that_cannot_start_exits_127() -> None:
    agent = PendingAgent()
    agent.start(["/nonexistent/agent"], ENV, None, None)
    assert agent.wait() == 127


def test_it_is_pid_1_of_a_namespace_of_its_own_and_sees_only_its_own_processes(tmp_path: Path) -> None:
    """The command runs as pid 2 under its init; the caller is not in its namespace. A child of the caller
    forked afterwards is back in the caller's namespace (nothing of the sandbox's leaks into later forks)."""
    out = tmp_path / "seen"
    assert sh(PendingAgent(), f"echo $$ > {out}; exec 3< /proc/self/status; grep NSpid <&3 >> {out}") == 0
    first, nspid = out.read_text().splitlines()
    assert first == "2" and nspid.split()[-1] == "2" and len(nspid.split()) == 3  # host pid, then 2
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() > 1 else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")


def test_a_signal_sent_to_it_reaches_the_command_and_orphans_are_reaped(tmp_path: Path) -> None:
    marker = tmp_path / "term"
    agent = PendingAgent()
    script = f"(sleep 30 &); trap 'echo got > {marker}; exit 4' TERM; echo up > {marker}; while :; do sleep 0.05; done"
    agent.start(["sh", "-c", script], ENV, None, None)
    for _ in range(200):
        if marker.exists():
            break
        time.sleep(0.02)
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 4  # the orphaned sleep did not keep it waiting: it was killed with the namespace
    assert marker.read_text() == "got\n"
