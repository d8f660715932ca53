"""``tf run``: ask the daemon for a sandbox, start the agent in it unprivileged, relay signals and exit code.

The CLI (root, via sudo) spawns the agent itself so the terminal, stdin/stdout/stderr and job control are the
caller's own. The daemon keeps the sandbox for exactly as long as this process holds its connection.
"""

from __future__ import annotations

import os
import pwd
import select
import signal
import socket
import sys
import threading
from pathlib import Path

from trustfence.agent.ipc import DaemonError

from trustfence.agent.spawn import PendingAgent

TYPE_CHECKING = False  # imported on every agent start: typing alone costs ~5 ms
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from types import FrameType

    from trustfence.agent.ipc import Client

__all__ = ["AgentUser", "DAEMON_GONE", "DaemonGone", "RunError", "agent_argv", "agent_env", "resolve_user", "run_agent"]

# Variables a caller may have set that would route around, or re-point, the sandbox's own settings.
_STRIPPED = ("ALL_PROXY", "all_proxy", "FTP_PROXY", "ftp_proxy", "SSL_CERT_DIR", "NODE_OPTIONS",
             "LD_PRELOAD", "LD_LIBRARY_PATH", "SUDO_COMMAND", "SUDO_USER", "SUDO_UID", "SUDO_GID", "TF_HOME")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGWINCH, signal.SIGCONT)


class RunError(RuntimeError):
    code = 2


DAEMON_GONE = 125  # tf run's exit code when the daemon stopped under the agent (documented in the README)


class DaemonGone(RunError):
    """The daemon went away while the agent ran: its sandbox (and the enforcer) with it."""

    code = DAEMON_GONE


def _watch_daemon(sock: socket.socket, pgid: int, done: threading.Event, gone: threading.Event) -> None:
    """The daemon says nothing while the agent runs: anything readable (its answer or EOF) means the sandbox
    is gone, so the agent is stopped (TERM, then KILL) rather than left running with no way out."""
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    while not done.is_set():
        if poll.poll(250) and not done.is_set():
            gone.set()
            for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    return
                if done.wait(wait):
                    return
            return


class AgentUser:
    def __init__(self, uid: int, gid: int, name: str, home: str | None) -> None:
        self.uid, self.gid, self.name, self.home = uid, gid, name, home


def resolve_user(explicit: str | None, env: Mapping[str, str], default_user: str) -> AgentUser:
    """--user, else the sudo caller, else the configured unprivileged account. Never uid 0."""
    if explicit:
        try:
            pw = pwd.getpwuid(int(explicit)) if explicit.isdigit() else pwd.getpwnam(explicit)
        except KeyError:
            raise RunError(f"no such user {explicit!r}") from None
        home: str | None = pw.pw_dir
    elif env.get("SUDO_UID", "0") not in ("", "0"):
        pw = pwd.getpwuid(int(env["SUDO_UID"]))
        home = pw.pw_dir
        return AgentUser(pw.pw_uid, int(env.get("SUDO_GID") or pw.pw_gid), pw.pw_name, home)
    else:
        try:
            pw = pwd.getpwnam(default_user)
        except KeyError:
            raise RunError(f"the default agent account {default_user!r} does not exist") from None
        home = None  # the sandbox gets a private home
    if pw.pw_uid == 0:
        raise RunError("the agent never runs as root: choose an unprivileged --user")
    return AgentUser(pw.pw_uid, pw.pw_gid, pw.pw_name, home)


def agent_env(caller: Mapping[str, str], sandbox_env: Mapping[str, str], user: AgentUser,
              unset: Collection[str] = ()) -> dict[str, str]:
    """The caller's environment without what would route around the sandbox or carry a real credential
    (``unset``: the daemon's list of credential variables), then the daemon's settings, placeholders included."""
    env = {k: v for k, v in caller.items() if k not in _STRIPPED and k not in unset}
    env.update({k: v for k, v in sandbox_env.items() if k != "TF_SANDBOX_HOME"})
    env["HOME"] = user.home or sandbox_env["TF_SANDBOX_HOME"]
    env["USER"] = env["LOGNAME"] = user.name
    return env


# Runs as root in the agent's private mount namespace (``ip netns exec`` made it, slave to the host's, so
# nothing propagates back): each listed CA bundle is covered, read-only, by the bundle the agent trusts.
_OVERLAY = ('b=$1; shift; while [ "$1" != "--" ]; do mount --bind "$b" "$1" && mount -o remount,bind,ro "$1" '
            '|| exit 126; shift; done; shift; exec "$@"')


def agent_argv(netns: str, user: AgentUser, cmd: Sequence[str], overlays: Sequence[str] = (),
               bundle: str = "") -> list[str]:
    """Enter the namespace (``ip netns exec`` also mounts its resolv.conf and a fresh /sys), cover the CA
    bundles clients carry with their own (``overlays``, by ``bundle``), then drop to the agent's uid with no
    groups, no capabilities in any set, and no_new_privs."""
    cover = ["/bin/sh", "-c", _OVERLAY, "sh", bundle, *overlays, "--"] if overlays and bundle else []
    return ["ip", "netns", "exec", netns, *cover, "setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *cmd]


def run_agent(client: Client, gateway: str, user: AgentUser, cmd: Sequence[str], nftables_only: bool = False) -> int:
    agent = PendingAgent()  # the daemon moves it into the sandbox's cgroup while it builds the rest
    try:
        reply = client.call("run", gateway=gateway, uid=user.uid, gid=user.gid, nftables_only=nftables_only,
                            pid=agent.pid)
    except BaseException:
        agent.cancel()
        raise
    client.sock.settimeout(None)
    env = agent_env(os.environ, reply["env"], user, frozenset(reply["unset"]))
    tty_fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    join = None if reply.get("joined") else str(Path(reply["cgroup"]) / "cgroup.procs")
    agent.start(agent_argv(reply["netns"], user, cmd, reply.get("ca_overlays", ()), reply.get("ca_bundle", "")),
                env, join, tty_fd)

    def forward(signum: int, frame: FrameType | None) -> None:
        try:
            os.killpg(agent.pid, signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in _FORWARDED}
    done, gone = threading.Event(), threading.Event()
    threading.Thread(target=_watch_daemon, args=(client.sock, agent.pid, done, gone), daemon=True).start()
    try:
        rc = agent.wait()
    finally:
        done.set()
        for s, h in old.items():
            signal.signal(s, h)
        if tty_fd is not None:
            prev = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(tty_fd, os.getpgrp())
            except OSError:
                pass
            signal.signal(signal.SIGTTOU, prev)
    code = 128 - rc if rc < 0 else rc
    try:
        if gone.is_set():
            raise ConnectionError
        client.send("exited", code=code)
        client.receive()  # the daemon answers once the sandbox is gone
    except (OSError, DaemonError):
        stopped = "the agent was stopped; " if gone.is_set() else ""
        raise DaemonGone(f"the daemon stopped while the agent ran; the sandbox is gone ({stopped}its exit code "
                         f"was {code}; see the daemon's log)") from None
    return code
