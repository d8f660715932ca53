"""The agent's process, forked before its sandbox exists and told what to run once the sandbox is ready.

Moving a process into a cgroup makes the kernel wait for an RCU grace period (~10 ms). Forked first, the
process is moved by the daemon while it builds the rest of the sandbox, instead of joining afterwards on the
critical path of every ``tf run``. Until it is told what to run it only waits: nothing of the agent's runs
before the daemon has answered that the sandbox, its rules and its eBPF lock are in place.
"""

from __future__ import annotations

import json
import os
import signal

TYPE_CHECKING = False  # imported on every agent start: typing alone costs ~5 ms
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

__all__ = ["PendingAgent"]

_EXEC_FAILED = 127


class PendingAgent:
    """A child of this process that waits, in its own process group once started, for the command to run."""

    def __init__(self) -> None:
        read, self._plan = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(self._plan)
            _wait_and_exec(read)
        os.close(read)
        # Its own process group at once (the child does the same; whichever runs first): a signal forwarded
        # to the group before the child has got that far would be lost otherwise.
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        self.pid = pid

    def start(self, argv: Sequence[str], env: Mapping[str, str], cgroup_procs: str | None,
              tty_fd: int | None) -> None:
        """Run ``argv``; ``cgroup_procs``: the cgroup to join first, when the daemon did not move the process."""
        plan = json.dumps({"argv": list(argv), "env": dict(env), "join": cgroup_procs, "tty": tty_fd})
        try:
            with os.fdopen(self._plan, "wb") as f:
                f.write(plan.encode())
        except BrokenPipeError:
            pass  # the child is gone (killed with its sandbox): wait() reports how it ended

    def cancel(self) -> None:
        """Let the child exit without running anything, and reap it."""
        try:
            os.close(self._plan)
        except OSError:
            pass
        self.wait()

    def wait(self) -> int:
        """The exit code, or minus the signal that ended it."""
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def _wait_and_exec(plan_fd: int) -> NoReturn:
    """In the child: read the plan to its end (nothing at all: exit), set up, exec. Never returns."""
    code = _EXEC_FAILED
    try:
        chunks = []
        while chunk := os.read(plan_fd, 1 << 16):
            chunks.append(chunk)
        if not chunks:
            code = 0
        else:
            plan = json.loads(b"".join(chunks))
            _set_up(plan["join"], plan["tty"])
            os.execvpe(plan["argv"][0], plan["argv"], plan["env"])
    except BaseException as e:  # noqa: BLE001 - the child must never return into the caller's code
        try:
            os.write(2, f"tf: cannot start the agent: {e}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _set_up(cgroup_procs: str | None, tty_fd: int | None) -> None:
    if cgroup_procs is not None:
        with open(cgroup_procs, "w") as f:
            f.write(str(os.getpid()))
    os.setpgid(0, 0)
    if tty_fd is not None:  # the agent's group owns the terminal: Ctrl-C and job control reach it
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(tty_fd, os.getpid())
        signal.signal(signal.SIGTTOU, old)
    for s in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; a program expects the defaults
        signal.signal(s, signal.SIG_DFL)
    os.closerange(3, _max_fd())  # nothing the caller holds open reaches the agent


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 1 << 16
