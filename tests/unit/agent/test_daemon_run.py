"""The process a ``tf run`` forks to become the agent: the daemon moves it into the sandbox's cgroup, and only
if it is a child of the caller (whatever is in that cgroup is killed with the sandbox)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from trustfence.agent.daemon import Daemon, OpError
from trustfence.agent.spawn import PendingAgent


class Writer:
    """The one thing ``_waiting_agent`` asks of the connection: its socket, whose peer is this process."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        assert name == "socket"
        return self.sock


@pytest.fixture
def writer() -> Iterator[Writer]:
    a, b = socket.socketpair()
    with a, b:
        yield Writer(a)


def test_a_child_of_the_caller_is_moved(writer: Writer) -> None:
    agent = PendingAgent()
    try:
        assert Daemon._waiting_agent({"pid": agent.pid}, writer) == agent.pid  # type: ignore[arg-type]
    finally:
        agent.cancel()


def test_no_pid_means_the_process_joins_by_itself(writer: Writer) -> None:
    assert Daemon._waiting_agent({}, writer) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("pid", [1, 0, -5, os.getpid()])
def test_any_other_process_is_refused(writer: Writer, pid: int) -> None:
    with pytest.raises(OpError, match="not a child of the caller"):
        Daemon._waiting_agent({"pid": pid}, writer)  # type: ignore[arg-type]
