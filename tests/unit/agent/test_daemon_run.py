"""The process a ``tf run`` forks to become the agent: the daemon moves it into the sandbox's cgroup, and only
if it is a child of the caller (whatever is in that cgroup is killed with the sandbox). The caller is the peer
of the daemon's socket as the kernel reports it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from trustfence.agent.daemon import Daemon, OpError
from trustfence.agent.peers import peer_of
from trustfence.agent.spawn import PendingAgent


@pytest.fixture
def caller() -> Iterator[int]:
    a, b = socket.socketpair()
    with a, b:
        peer = peer_of(a)
        assert peer.pid == os.getpid() and peer.sandbox == ""
        yield peer.pid


def test_a_child_of_the_caller_is_moved(caller: int) -> None:
    agent = PendingAgent()
    try:
        assert Daemon._waiting_agent({"pid": agent.pid}, caller) == agent.pid
    finally:
        agent.cancel()


def test_no_pid_means_the_process_joins_by_itself(caller: int) -> None:
    assert Daemon._waiting_agent({}, caller) is None


@pytest.mark.parametrize("pid", [1, 0, -5, os.getpid()])
def test_any_other_process_is_refused(caller: int, pid: int) -> None:
    with pytest.raises(OpError, match="not a child of the caller"):
        Daemon._waiting_agent({"pid": pid}, caller)
