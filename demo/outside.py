"""An "outside" network namespace holding the fake upstream API, reachable from the host only.

The demo and the system tests put the fake API here, at an address the enforcer reaches through
``upstream.resolve``. Agents cannot reach it directly: nothing is forwarded out of a sandbox. The namespace
also serves as the place where leaks would land, so tests listen here for anything that gets past.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, NetNS, netns

from trustfence.demo.upstream import make_test_pki

__all__ = ["Outside"]

_NODAD = 0x02  # IFA_F_NODAD


@dataclass
class Outside:
    """``name`` must be unique per run (it names the namespace and, with suffixes, the veth). ``static``: a
    directory of ``<host>/<path>`` files the fake API serves for those hosts (see ``demo.upstream``)."""

    name: str
    subnet_octet: int = 77  # 10.202.<octet>.0/30
    hosts: tuple[str, ...] = ("api.github.com",)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tf-outside-")))
    static: Path | None = None
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def host_addr(self) -> str:
        return f"10.202.{self.subnet_octet}.1"

    @property
    def addr(self) -> str:
        return f"10.202.{self.subnet_octet}.2"

    @property
    def host_addr6(self) -> str:
        return f"fd74:ffff:{self.subnet_octet:x}::1"

    @property
    def addr6(self) -> str:
        """An IPv6 address of the namespace: where an IPv6 leak would land."""
        return f"fd74:ffff:{self.subnet_octet:x}::2"

    @property
    def ca(self) -> Path:
        return self.workdir / "pki" / "ca.pem"

    @property
    def log(self) -> Path:
        return self.workdir / "upstream.jsonl"

    def resolve_spec(self, port: int = 443) -> str:
        return ",".join(f"{h}={self.addr}:{port}" for h in self.hosts)

    def start(self) -> Outside:
        os.chmod(self.workdir, 0o755)
        netns.create(self.name)
        with IPRoute() as ipr:
            ipr.link("add", ifname=f"{self.name}o", kind="veth", peer={"ifname": "up0", "net_ns_fd": self.name})
            idx = ipr.link_lookup(ifname=f"{self.name}o")[0]
            ipr.addr("add", index=idx, address=self.host_addr, prefixlen=30)
            ipr.addr("add", index=idx, address=self.host_addr6, prefixlen=64, flags=_NODAD)
            ipr.link("set", index=idx, state="up")
        with NetNS(self.name) as ns:
            i = ns.link_lookup(ifname="up0")[0]
            ns.addr("add", index=i, address=self.addr, prefixlen=30)
            ns.addr("add", index=i, address=self.addr6, prefixlen=64, flags=_NODAD)
            ns.link("set", index=i, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        _, cert, key = make_test_pki(self.workdir / "pki", list(self.hosts))
        self.log.touch(mode=0o600)  # what the fake API received (credentials included) is not the agent's to read
        self.spawn([sys.executable, "-m", "trustfence.demo.upstream", "--listen", f"{self.addr}:443",
                    "--cert", str(cert), "--key", str(key), "--log", str(self.log),
                    *(["--static", str(self.static)] if self.static else [])])
        self.wait_tcp(self.addr, 443)
        return self

    def spawn(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        """Run a process inside the outside namespace; it is killed by ``stop``."""
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)
        self._procs.append(p)
        return p

    def wait_tcp(self, host: str, port: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"fake upstream did not come up on {host}:{port}")

    def received(self) -> list[dict[str, Any]]:
        import json

        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        for p in self._procs:
            p.kill()
            p.wait(5)
        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=f"{self.name}o"):
                ipr.link("del", index=idx)
        if self.name in netns.listnetns():
            netns.remove(self.name)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Outside:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
