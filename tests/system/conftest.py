"""System fixtures (root): a real daemon with its own tag and state dir, and an "outside" namespace with the
fake GitHub API. Everything created carries a per-run name and is removed even when a test fails."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trustfence.agent.cli.common import lock_holder
from trustfence.agent.ipc import Client, DaemonUnavailable
from trustfence.agent.sandbox import cgroup, net, nftables
from trustfence.demo.outside import Outside

pytestmark = pytest.mark.system

TF = [sys.executable, "-m", "trustfence.agent.entry"]  # what the tf console script runs


@dataclass
class Host:
    """A running daemon for one test module, plus the outside namespace it reaches upstream."""

    tag: str
    home: Path
    env: dict[str, str]
    outside: Outside
    daemon_prefix: tuple[str, ...] = ()  # e.g. setpriv with a bounding set: the daemon runs under it
    dashboard: str = ""  # the dashboard's base URL (its own free port)

    def tf(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*TF, *args], env=self.env, input=input, capture_output=True, text=True,
                              timeout=timeout)

    def run(self, *cmd: str, name: str = "Bot", input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.tf("run", "--name", name, "--", *cmd, input=input)

    def logs(self, limit: int = 1000) -> list[dict[str, Any]]:
        r = self.tf("logs", "--json", "--limit", str(limit))
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines()]

    def leftovers(self) -> list[str]:
        return (net.list_netns(f"{self.tag}-") + net.list_links(f"{self.tag}h-")
                + [t for t in nftables.list_tables() if t.startswith(f"{self.tag}-")]
                + cgroup.list_children(f"{self.tag}-"))

    def start_daemon(self) -> None:
        """Start a daemon and wait until it answers. A daemon killed just before may still be dying (its memory
        torn down, its lock and socket not yet closed): it is waited for first, and the daemon that answers
        must be the one started here."""
        lock = self.home / "daemon.lock"
        deadline = time.monotonic() + 30
        while lock_holder(lock) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_holder(lock) is None, f"a daemon still holds {lock}"
        log = open(self.home / "daemon.log", "ab")
        proc = subprocess.Popen([*self.daemon_prefix, *TF, "daemon", "--log-file", str(self.home / "daemon.log")],
                                env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            # poll the socket itself: `tf status` would start a daemon
            try:
                Client(self.home / "daemon.sock", timeout=5).close()
                return
            except DaemonUnavailable:
                time.sleep(0.2)
        raise RuntimeError("daemon did not start:\n" + (self.home / "daemon.log").read_text())

    def stop_daemon(self) -> None:
        self.tf("daemon", "stop")

    def daemon_pid(self) -> int:
        return int((self.home / "daemon.lock").read_text().strip())


GITHUB_ONLY = '[connectors.github]\ntype = "github"\n'
BOT_PRS = '[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.*"\ndecision = "allow"\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_host(tmp: Path, sandbox: str = "", *, hosts: tuple[str, ...] = ("api.github.com",),
             connectors: str = GITHUB_ONLY, permissions: str = BOT_PRS, static: Path | None = None) -> Host:
    """A daemon home with its own tag; ``sandbox`` adds lines to the ``[sandbox]`` table (``ipv6 = true``).
    The outside namespace serves ``hosts`` (one fake HTTPS API for all; ``static``: files it serves for some,
    see ``demo.upstream``); ``connectors`` and ``permissions`` are TOML for config.toml and permissions.toml."""
    tag = "t" + secrets.token_hex(2)
    home = tmp / "state"
    outside = Outside(f"{tag}o", subnet_octet=secrets.randbelow(250) + 1, hosts=hosts, static=static)
    outside.start()
    env = {**os.environ, "TF_HOME": str(home), "TF_UPSTREAM_RESOLVE": outside.resolve_spec(),
           "TF_UPSTREAM_CA": str(outside.ca)}
    env.pop("SUDO_UID", None)
    port = free_port()
    host = Host(tag, home, env, outside, dashboard=f"http://127.0.0.1:{port}")
    home.mkdir()
    (home / "config.toml").write_text(f'[sandbox]\ntag = "{tag}"\n{sandbox}\n\n{connectors}\n'
                                      f'[dashboard]\nlisten = "127.0.0.1:{port}"\n')
    (home / "permissions.toml").write_text(permissions)
    return host


@contextmanager
def running_host(sandbox: str = "", before_start: Callable[[Host], None] | None = None, parent: str | None = None,
                 start: bool = True, **kw: Any) -> Iterator[Host]:
    """A started daemon and its outside namespace (``new_host`` arguments); ``before_start`` may add to the
    outside namespace or the environment first; ``parent``: where the state directory's folder is made (default
    the host's /tmp, which sandboxes never see anyway); ``start=False``: the test starts the daemon itself.
    Everything is removed afterwards, and leftovers fail."""
    tmp = Path(tempfile.mkdtemp(prefix="tf-sys-", dir=parent))
    os.chmod(tmp, 0o711)
    h = new_host(tmp, sandbox, **kw)
    try:
        if before_start is not None:
            before_start(h)
        if start:
            h.start_daemon()
        yield h
    finally:
        try:
            h.stop_daemon()
        finally:
            h.outside.stop()
            left = h.leftovers()
            shutil.rmtree(tmp, ignore_errors=True)
            assert not left, f"left behind: {left}"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host() as h:
        yield h
