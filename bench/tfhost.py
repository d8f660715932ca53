"""What the root benches share: a real ``tf daemon`` with its own state dir and tag, started the way a user
starts it, and a teardown that proves nothing was left behind (namespaces, veths, nftables tables, cgroups).

The daemon gets a unique tag (``b`` + 4 hex digits) so its sandboxes never collide with another daemon's on
the same machine, and a state dir under a temp dir readable by the agent's uid (0711), removed afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from trustfence.agent.ipc import Client, DaemonUnavailable
from trustfence.agent.sandbox import cgroup, net, nftables

__all__ = ["AGENT_PY", "TF", "UNPRIVILEGED", "Daemon", "bench_tmp", "running_daemon", "wait_ready"]

TF = [sys.executable, "-m", "trustfence.agent.entry"]  # what the tf console script runs
AGENT_PY = "/usr/bin/python3"  # readable by the unprivileged agent, unlike root's interpreters
# How an agent is launched without TrustFence: the same uid (nobody) as tf run gives a root caller's agent.
UNPRIVILEGED = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs"]
START_TIMEOUT = 60.0


@dataclass
class Daemon:
    """A running daemon: its tag, state dir, the environment its ``tf`` commands need, and its process."""

    tag: str
    home: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes]

    def tf(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*TF, *args], check=False, env=self.env, capture_output=True, text=True, timeout=timeout)

    def run_argv(self, name: str, *cmd: str) -> list[str]:
        """The argv of ``tf run --name NAME -- CMD...`` (to start with Popen when its stdin is needed)."""
        return [*TF, "run", "--name", name, "--", *cmd]

    @property
    def log(self) -> Path:
        return self.home / "daemon.log"

    def leftovers(self) -> list[str]:
        return list(net.list_netns(f"{self.tag}-") + net.list_links(f"{self.tag}h-")
                    + [t for t in nftables.list_tables() if t.startswith(f"{self.tag}-")]
                    + cgroup.list_children(f"{self.tag}-"))


@contextmanager
def bench_tmp() -> Iterator[Path]:
    """A temp dir the agent's uid can traverse (0711), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="tf-bench-"))
    os.chmod(tmp, 0o711)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def running_daemon(tmp: Path, config: str = "", permissions: str = "",
                   env: dict[str, str] | None = None) -> Iterator[Daemon]:
    """A started daemon whose config.toml is ``[sandbox] tag`` plus ``config`` (TOML), permissions.toml
    ``permissions``; ``env`` adds to its environment. Stopped afterwards; anything it left raises."""
    if os.geteuid() != 0:
        raise SystemExit("creates namespaces and firewall rules: run as root")
    tag = "b" + secrets.token_hex(2)
    home = tmp / "state"
    home.mkdir()
    (home / "config.toml").write_text(f'[sandbox]\ntag = "{tag}"\n\n{config}')
    (home / "permissions.toml").write_text(permissions)
    full_env = {**os.environ, **(env or {}), "TF_HOME": str(home)}
    full_env.pop("SUDO_UID", None)  # the agent runs as nobody, not as whoever ran sudo
    with (home / "daemon.log").open("ab") as log:
        popen = subprocess.Popen([*TF, "daemon"], env=full_env, stdout=log, stderr=log, start_new_session=True)
    d = Daemon(tag, home, full_env, popen)
    try:
        _wait(d)
        yield d
    finally:
        d.tf("daemon", "stop", timeout=120)
        try:
            popen.wait(30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)
        left = d.leftovers()
        if left:
            raise RuntimeError(f"the daemon left behind: {left}")


def _wait(d: Daemon) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:  # poll the socket itself: `tf status` would start a daemon
        if d.popen.poll() is not None:
            break
        try:
            Client(d.home / "daemon.sock", timeout=5).close()
            return
        except DaemonUnavailable:
            time.sleep(0.2)
    raise RuntimeError("daemon did not start:\n" + d.log.read_text(errors="replace")[-3000:])


def wait_ready(daemon: Daemon, workers: int, timeout: float = 60) -> list[int]:
    """Until ``tf status`` shows every worker process ready to serve; the daemon's pid and the workers'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = daemon.tf("status", "--json")
        if r.returncode == 0:
            w = json.loads(r.stdout)["workers"]
            if w["workers"] == workers and all(c["ready"] for c in w["children"]):
                return [daemon.popen.pid, *(int(c["pid"]) for c in w["children"])]
        time.sleep(0.3)
    raise RuntimeError(f"the workers of a {workers}-worker daemon did not become ready")
