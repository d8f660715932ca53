"""``tf run``: ask the daemon for a sandbox, start the agent in it unprivileged, relay signals and exit code.

The CLI (root, via sudo) spawns the agent itself so the terminal, stdin/stdout/stderr and job control are the
caller's own. The daemon keeps the sandbox for exactly as long as this process holds its connection. The
daemon says what the gateway's filesystem policy is; this process resolves it for the agent's user, its
command and its working directory (``launch``), and the sandbox's init builds the view from that.
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
from trustfence.agent.sandbox.catrust import which
from trustfence.agent.sandbox.view import PRIVATE_HOME, expand, hidden_cover, hide_list, writable_paths
from trustfence.agent.spawn import FORWARDED, PendingAgent

TYPE_CHECKING = False  # imported on every agent start: typing alone costs ~5 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence
    from types import FrameType
    from typing import Any

    from trustfence.agent.ipc import Client

__all__ = ["DAEMON_GONE", "DYNAMIC", "AgentUser", "DaemonGone", "RunError", "agent_env", "launch", "resolve_user",
           "run_agent"]

# Variables a caller may have set that would route around, or re-point, the sandbox's own settings.
_STRIPPED = ("ALL_PROXY", "all_proxy", "FTP_PROXY", "ftp_proxy", "SSL_CERT_DIR", "NODE_OPTIONS",
             "LD_PRELOAD", "LD_LIBRARY_PATH", "SUDO_COMMAND", "SUDO_USER", "SUDO_UID", "SUDO_GID", "TF_HOME")
DYNAMIC = "dynamic"  # default_user: a uid of the sandbox's own, leased by the daemon from a reserved range


class RunError(RuntimeError):
    code = 2


DAEMON_GONE = 125  # tf run's exit code when the daemon stopped under the agent (documented in the README)


class DaemonGone(RunError):
    """The daemon went away while the agent ran: its sandbox (and the enforcer) with it."""

    code = DAEMON_GONE


def _watch_daemon(sock: socket.socket, agent: PendingAgent, done: threading.Event, gone: threading.Event) -> None:
    """The daemon says nothing while the agent runs: anything readable (its answer or EOF) means the sandbox
    is gone, so the agent is stopped (TERM, then KILL) rather than left running with no way out."""
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    while not done.is_set():
        if poll.poll(250) and not done.is_set():
            gone.set()
            for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
                agent.signal(sig)  # through the sandbox's init: KILL ends its whole PID namespace
                if done.wait(wait):
                    return
            return


class AgentUser:
    """Who the agent runs as. ``home``: its account's home (None: a private one inside the sandbox);
    ``dynamic``: the daemon leases the uid (``uid``/``gid`` are then -1 until it has)."""

    def __init__(self, uid: int, gid: int, name: str, home: str | None, dynamic: bool = False) -> None:
        self.uid, self.gid, self.name, self.home, self.dynamic = uid, gid, name, home, dynamic


def resolve_user(explicit: str | None, env: Mapping[str, str], default_user: str) -> AgentUser:
    """--user, else the sudo caller, else the configured account (``dynamic``: a uid of its own). Never uid 0."""
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
    elif default_user == DYNAMIC:
        return AgentUser(-1, -1, "", None, dynamic=True)
    else:
        try:
            pw = pwd.getpwnam(default_user)
        except KeyError:
            raise RunError(f"the default agent account {default_user!r} does not exist") from None
        home = None  # the sandbox gets a private home
    if pw.pw_uid == 0:
        raise RunError("the agent never runs as root: choose an unprivileged --user")
    return AgentUser(pw.pw_uid, pw.pw_gid, pw.pw_name, home)


def invoker_home(env: Mapping[str, str]) -> str:
    """The home of whoever ran ``tf run`` (the sudo caller, else this process's user): what ``~/`` in hidden
    paths also covers, whoever the agent runs as."""
    uid = env.get("SUDO_UID", "")
    try:
        return pwd.getpwuid(int(uid) if uid.isdigit() else os.getuid()).pw_dir
    except KeyError:
        return "/root"


def agent_env(caller: Mapping[str, str], sandbox_env: Mapping[str, str], user: AgentUser,
              unset: Collection[str] = ()) -> dict[str, str]:
    """The caller's environment without what would route around the sandbox or carry a real credential
    (``unset``: the daemon's list of credential variables), then the daemon's settings, placeholders included."""
    env = {k: v for k, v in caller.items() if k not in _STRIPPED and k not in unset}
    env.update(sandbox_env)
    env["HOME"] = user.home or PRIVATE_HOME
    env["USER"] = env["LOGNAME"] = user.name
    return env


def launch(reply: Mapping[str, Any], user: AgentUser, cmd: Sequence[str], cwd: str, env: Mapping[str, str],
           invoker: str) -> tuple[dict[str, Any], str]:
    """The sandbox the init builds (``spawn``/``sandbox.view``) from the daemon's reply, and a note for the
    caller ("" if none). Raises RunError when the policy hides the agent's command or working directory."""
    fs = reply["fs"]
    homes = [h for h in (user.home, invoker) if h]
    hide = hide_list(reply["state"], expand(fs["hidden"], homes))
    for what, path in (("command", which(cmd[0], env.get("PATH", os.defpath), cwd)), ("working directory", cwd)):
        cover = hidden_cover(path, hide) if path else None
        if cover:
            raise RunError(f"the agent's {what} {path} is under {cover}, which the sandbox hides "
                           f"({'the state directory' if cover == reply['state'] else fs['where'] + ' hidden'}): "
                           "run it from elsewhere or change the policy")
    writable, note = writable_paths(cwd, fs["writable_cwd"], expand(fs["writable"], [user.home] if user.home else []),
                                    homes)
    return {"netns": reply["netns"], "etc": f"/etc/netns/{reply['netns']}", "bundle": reply["ca_bundle"],
            "ca": reply["ca_cert"], "overlays": reply.get("ca_overlays", []), "hide": hide, "cwd": cwd,
            "home": None if user.home else [user.uid, user.gid], "uid": user.uid, "gid": user.gid,
            "account": reply.get("user") or None, "writable": writable}, note


def _follow_trust(reply: Mapping[str, Any], user: AgentUser, cmd: Sequence[str], cwd: str,
                  env: Mapping[str, str], hide: Sequence[str]) -> tuple[dict[str, Any] | None, str]:
    """What covers the CA bundles the command will read (``sandbox.catrust``), and a note when they could not
    be looked for (the agent then starts with ``[sandbox] ca_overlays`` alone). A bundle under a hidden path is
    left out: its copy would show, in the sandbox's ``/run``, what the policy hides."""
    from trustfence.agent.sandbox import catrust

    try:
        found = catrust.read_as(user.uid, user.gid, cmd, env, cwd, user.home)
    except (catrust.TrustError, OSError) as e:
        return None, f"the command's own CA bundles were not looked for ({e}); [sandbox] ca_overlays still apply"
    found = [f for f in found if hidden_cover(f.path, hide) is None]
    if not found:
        return None, ""
    from trustfence.agent.sandbox import trustfiles

    ca, roots = Path(reply["ca_cert"]).read_bytes(), Path(reply["ca_bundle"]).read_bytes()
    return trustfiles.plan(trustfiles.covered(found, ca, roots, skip=reply.get("ca_overlays", ()))), ""


def run_agent(client: Client, gateway: str, user: AgentUser, cmd: Sequence[str], nftables_only: bool = False,
              stdio: tuple[int, int] | None = None, started: Callable[[Mapping[str, Any]], None] | None = None) -> int:
    """Run ``cmd`` in a sandbox of ``gateway``; its exit code. ``stdio``: the agent's stdin and stdout (handed
    over) instead of the caller's; ``started``: told the daemon's reply once the agent runs."""
    agent = PendingAgent(stdio)  # the daemon moves it into the sandbox's cgroup while it builds the rest
    try:
        reply = client.call("run", gateway=gateway, uid=None if user.dynamic else user.uid,
                            gid=None if user.dynamic else user.gid, nftables_only=nftables_only, pid=agent.pid)
        if user.dynamic:
            user = AgentUser(int(reply["uid"]), int(reply["gid"]), str(reply["user"]), None)
        env = agent_env(os.environ, reply["env"], user, frozenset(reply["unset"]))
        sandbox, note = launch(reply, user, cmd, os.getcwd(), env, invoker_home(os.environ))
        sandbox["trust"], trust_note = _follow_trust(reply, user, cmd, os.getcwd(), env, sandbox["hide"])
    except BaseException:
        agent.cancel()
        raise
    for n in (note, trust_note):
        if n:
            print(f"tf: note: {n}", file=sys.stderr, flush=True)
    client.sock.settimeout(None)
    tty_fd = sys.stdin.fileno() if stdio is None and sys.stdin.isatty() else None
    join = None if reply.get("joined") else str(Path(reply["cgroup"]) / "cgroup.procs")
    agent.start(cmd, env, join, tty_fd, sandbox)
    if started is not None:
        started(reply)

    def forward(signum: int, frame: FrameType | None) -> None:
        agent.signal(signum)

    old = {s: signal.signal(s, forward) for s in FORWARDED}
    done, gone = threading.Event(), threading.Event()
    threading.Thread(target=_watch_daemon, args=(client.sock, agent, done, gone), daemon=True).start()
    try:
        code = agent.wait()
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
    code = 128 - code if code < 0 else code
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
