"""Create and tear down sandboxes; collect the leftovers of a crashed daemon at start.

Each sandbox is recorded in ``<state>/sandboxes/<id>.json`` before any kernel object exists and removed
only after all are gone, so a crash at any point leaves a record the next start can act on. Kernel objects
are also found by name (``<tag>-``), which is why every daemon has its own tag.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from trustfence.agent.sandbox import cgroup, net, nftables
from trustfence.agent.sandbox.spec import SandboxSpec, new_id

__all__ = ["SandboxError", "SandboxManager"]

log = logging.getLogger("trustfence.sandbox")

_NET_LOCK = Path("/run/lock/trustfence-net.lock")


class SandboxError(RuntimeError):
    pass


class SandboxManager:
    def __init__(self, tag: str, subnet_pool: str, records: Path, ports: tuple[int, int, int],
                 ipv6: bool = False) -> None:
        self.tag = tag
        self.ipv6 = ipv6
        self.pool = ipaddress.IPv4Network(subnet_pool)
        self.records = records
        self.ports = ports
        records.mkdir(parents=True, exist_ok=True)

    def home_dir(self, spec: SandboxSpec) -> Path:
        return Path("/tmp") / f"{spec.name}-home"

    def _pick_subnet(self) -> str:
        used = net.host_addresses()
        base, count = int(self.pool.network_address), self.pool.num_addresses // 4
        for _ in range(64):  # by arithmetic: listing a /16's 16384 subnets costs ~80 ms per sandbox
            s = ipaddress.IPv4Network((base + 4 * random.randrange(count), 30))
            if not any(str(a) in used for a in s):
                return str(s)
        raise SandboxError(f"no free /30 left in {self.pool}")

    def create(self, gateway: str, uid: int, gid: int) -> SandboxSpec:
        """Build a sandbox; on any failure remove what was built and raise SandboxError."""
        _NET_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(_NET_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # subnets are host-wide: other daemons allocate too
            spec = SandboxSpec(self.tag, new_id(), gateway, self._pick_subnet(), uid, gid, self.ipv6)
            (self.records / f"{spec.id}.json").write_text(spec.to_json())
            try:
                net.create(spec)
            except Exception as e:
                self.destroy(spec)
                raise SandboxError(f"cannot create network namespace {spec.netns}: {e}") from e
        try:
            nftables.apply(nftables.render(spec, *self.ports))
            cgroup.create(spec.name)
            home = self.home_dir(spec)
            home.mkdir(mode=0o700)
            os.chown(home, uid, gid)
        except Exception as e:
            self.destroy(spec)
            raise SandboxError(f"cannot create sandbox {spec.name}: {e}") from e
        return spec

    def destroy(self, spec: SandboxSpec) -> None:
        """Remove everything of the sandbox that exists; log (not raise) what could not be removed."""
        errors = []
        steps: tuple[tuple[str, Callable[[], object]], ...] = (
            ("processes", lambda: cgroup.remove(spec.name)),
            ("nftables table", lambda: nftables.delete(spec.table)),
            ("network", lambda: net.destroy(spec.netns, spec.host_if)),
            ("home", lambda: shutil.rmtree(self.home_dir(spec), ignore_errors=True)),
        )
        for what, step in steps:
            try:
                step()
            except Exception as e:  # noqa: BLE001 - keep tearing down the rest
                errors.append(f"{what}: {e}")
        if errors:
            log.error("sandbox %s teardown incomplete: %s", spec.name, "; ".join(errors))
            raise SandboxError(f"sandbox {spec.name} teardown incomplete: {'; '.join(errors)}")
        (self.records / f"{spec.id}.json").unlink(missing_ok=True)

    def collect_leftovers(self) -> list[str]:
        """Tear down every sandbox of this tag that a previous daemon left behind; return their names."""
        found: dict[str, SandboxSpec | None] = {}
        for rec in self.records.glob("*.json"):
            try:
                spec = SandboxSpec.from_json(rec.read_text())
                found[spec.name] = spec
            except (ValueError, TypeError):
                rec.unlink()
        prefix = f"{self.tag}-"
        ours = re.compile(rf"^{self.tag}h?-([0-9a-f]{{6}})$")
        names = net.list_netns(prefix) + nftables.list_tables() + cgroup.list_children(prefix)
        for name in names + net.list_links(f"{self.tag}h-"):
            m = ours.match(name)
            if m:
                found.setdefault(f"{self.tag}-{m.group(1)}", None)
        for name, recorded in found.items():
            sid = name.split("-", 1)[1]
            spec = recorded or SandboxSpec(self.tag, sid, "?", "0.0.0.0/30", 65534, 65534)
            log.warning("collecting leftover sandbox %s", name)
            try:
                self.destroy(spec)
            except SandboxError:
                pass
        return sorted(found)
