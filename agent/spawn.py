"""The sandbox's init: forked before the sandbox exists, told what to run once it is ready, and pid 1 of the
sandbox's own PID namespace.

Moving a process into a cgroup makes the kernel wait for an RCU grace period (~10 ms). Forked first, the
process is moved by the daemon while it builds the rest of the sandbox, instead of joining afterwards on the
critical path of every ``tf run``. Until it is told what to run it only waits: nothing of the agent's runs
before the daemon has answered that the sandbox, its rules and its eBPF lock are in place.

It is forked into a new PID namespace, so it is the namespace's pid 1: no process outside the sandbox is
visible, traceable or signalable from inside. Being pid 1 it must do what an init does (the agent's own
process could not: the kernel drops every signal to pid 1 that it has no handler for, and orphans are
re-parented to it): it builds the agent's view (``sandbox.view``), forks the agent, which drops to its uid
under its Landlock rules and execs the command in a process group of its own that owns the terminal, relays
the signals ``tf run`` forwards to that group, reaps every process that ends, and exits with the agent's
status once the agent ends (the kernel then kills whatever is left in the namespace). It stays root, holds no
file of the caller's and ignores every signal but those it relays; the agent cannot trace a root process.
"""

from __future__ import annotations

import json
import os
import signal

TYPE_CHECKING = False  # imported on every agent start: typing alone costs ~5 ms
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import FrameType
    from typing import Any, NoReturn

__all__ = ["FORWARDED", "PendingAgent"]

_EXEC_FAILED = 127
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGCONT)


class PendingAgent:
    """A child of this process, pid 1 of a new PID namespace, that waits for the command to run."""

    def __init__(self, stdio: tuple[int, int] | None = None) -> None:
        """``stdio``: the agent's stdin and stdout instead of this process's (``tf mcp wrap`` relays them);
        handed over: this process closes both once the child holds them."""
        read, self._plan = os.pipe()
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.unshare(os.CLONE_NEWPID)  # for the next child only: this process stays where it is
            pid = os.fork()
            if pid == 0:
                if stdio is not None:
                    os.dup2(stdio[0], 0)
                    os.dup2(stdio[1], 1)
                _init(read, self._plan)
            os.setns(own, os.CLONE_NEWPID)  # later children of this process are not the sandbox's
        finally:
            os.close(own)
            for fd in stdio or ():
                os.close(fd)
        os.close(read)
        # Its own process group at once (the child does the same; whichever runs first).
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        self.pid = pid

    def start(self, argv: Sequence[str], env: Mapping[str, str], cgroup_procs: str | None,
              tty_fd: int | None, sandbox: Mapping[str, Any] | None = None) -> None:
        """Run ``argv``; ``cgroup_procs``: the cgroup to join first, when the daemon did not move the process;
        ``sandbox``: the view to build, the uid to become and where it may write (see ``runner.launch``);
        without it the command runs as this process's user in this process's view."""
        plan = json.dumps({"argv": list(argv), "env": dict(env), "join": cgroup_procs, "tty": tty_fd,
                           "sandbox": sandbox})
        try:
            with os.fdopen(self._plan, "wb") as f:
                f.write(plan.encode())
        except BrokenPipeError:
            pass  # the child is gone (killed with its sandbox): wait() reports how it ended

    def signal(self, signum: int) -> None:
        """Relay a signal to the agent's process group (through the init, which relays what it is sent)."""
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def cancel(self) -> None:
        """Let the child exit without running anything, and reap it."""
        try:
            os.close(self._plan)
        except OSError:
            pass
        self.wait()

    def wait(self) -> int:
        """The agent's exit code; 128 + N when a signal N ended it (as a shell reports it)."""
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


# -- in the child: pid 1 of the sandbox ------------------------------------------------------------------------
_agent = 0  # the agent's pid, once forked
_early: list[int] = []  # signals relayed before there was an agent to relay them to


def _relay(signum: int, frame: FrameType | None) -> None:
    if not _agent:
        _early.append(signum)
        return
    try:
        os.killpg(_agent, signum)
    except ProcessLookupError:  # the agent left its group (setsid): it alone, then
        try:
            os.kill(_agent, signum)
        except ProcessLookupError:
            pass


def _report(e: BaseException) -> None:
    try:
        os.write(2, f"tf: cannot start the agent: {e}\n".encode())
    except OSError:
        pass


def _init(plan_fd: int, plan_w: int) -> NoReturn:
    """Read the plan to its end (nothing at all: exit), build the view, fork the agent, reap. Never returns."""
    global _agent
    code = _EXEC_FAILED
    try:
        os.close(plan_w)
        for sig in FORWARDED:
            signal.signal(sig, _relay)
        os.closerange(3, plan_fd)
        os.closerange(plan_fd + 1, _max_fd())  # nothing the caller holds open stays open in the sandbox
        # Loaded while the daemon builds the sandbox, rather than after its answer, on every start's path.
        from trustfence.agent.sandbox import landlock, privs, view  # noqa: F401
        chunks = []
        while chunk := os.read(plan_fd, 1 << 16):
            chunks.append(chunk)
        os.close(plan_fd)
        if not chunks:
            os._exit(0)
        plan = json.loads(b"".join(chunks))
        if plan["join"] is not None:
            with open(plan["join"], "w") as f:
                f.write("0")  # this process: its pid here (1) is not the one the host's cgroupfs knows
        os.setpgid(0, 0)
        sandbox = plan["sandbox"]
        if sandbox is not None:
            view.enter(sandbox)
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)  # until the agent has its own handlers in place
        pid = os.fork()
        if pid == 0:
            _become_agent(plan)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        _agent = pid
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        for early in _early:
            _relay(early, None)
        code = _reap(pid)
    except BaseException as e:  # noqa: BLE001 - the child must never return into the caller's code
        _report(e)
    finally:
        os._exit(code)


def _reap(agent: int) -> int:
    """Reap every child; the agent's status once it ends (128 + N for a signal: pid 1 cannot die of one)."""
    while True:
        pid, status = os.wait()
        if pid == agent:
            ended = os.waitstatus_to_exitcode(status)
            return 128 - ended if ended < 0 else ended


def _become_agent(plan: Mapping[str, Any]) -> NoReturn:
    """In the agent's process: own process group and terminal, its uid and Landlock rules, then exec."""
    try:
        for s in (*FORWARDED, signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores the last two; programs expect defaults
            signal.signal(s, signal.SIG_DFL)
        os.setpgid(0, 0)
        if plan["tty"] is not None:  # the agent's group owns the terminal: Ctrl-C and job control reach it
            old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(plan["tty"], os.getpid())
            signal.signal(signal.SIGTTOU, old)
        sandbox = plan["sandbox"]
        if sandbox is not None:
            from trustfence.agent.sandbox import landlock, privs

            rules = landlock.ruleset(sandbox["writable"])  # opened as root: the agent may not traverse them all
            privs.drop(sandbox["uid"], sandbox["gid"])
            landlock.restrict(rules)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execvpe(plan["argv"][0], plan["argv"], plan["env"])
    except BaseException as e:  # noqa: BLE001 - never return into the init's code
        _report(e)
    os._exit(_EXEC_FAILED)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 1 << 16
