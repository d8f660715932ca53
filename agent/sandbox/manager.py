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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trustfence.agent.sandbox import cgroup, net, nftables, uids
from trustfence.agent.sandbox.spec import SandboxSpec, new_id

__all__ = ["SandboxError", "SandboxManager"]

log = logging.getLogger("trustfence.sandbox")

# Host-wide (other daemons allocate subnets too), and where only root can open it: a lock any user could take
# (0644 in /run/lock) would let one stall every `tf run` on the host.
_NET_LOCK = Path("/run/trustfence/net.lock")


def _net_lock() -> int:
    _NET_LOCK.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(_NET_LOCK.parent, 0o700)
    fd = os.open(_NET_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class SandboxError(RuntimeError):
    pass


def _at_once(steps: dict[str, Callable[[], object]]) -> dict[str, BaseException]:
    """Run independent steps on threads at the same time; once all have finished, the errors by step."""
    with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="tf-sandbox") as pool:
        futures = {what: pool.submit(step) for what, step in steps.items()}
    return {what: e for what, f in futures.items() if (e := f.exception()) is not None}


class SandboxManager:
    def __init__(self, tag: str, subnet_pool: str, records: Path, ports: tuple[int, int, int],
                 ipv6: bool = False) -> None:
        self.tag = tag
        self.ipv6 = ipv6
        self.pool = ipaddress.IPv4Network(subnet_pool)
        self.records = records
        self.ports = ports
        records.mkdir(parents=True, exist_ok=True)

    def _pick_subnet(self) -> str:
        used = net.host_addresses()
        base, count = int(self.pool.network_address), self.pool.num_addresses // 4
        for _ in range(64):  # by arithmetic: listing a /16's 16384 subnets costs ~80 ms per sandbox
            s = ipaddress.IPv4Network((base + 4 * random.randrange(count), 30))
            if not any(str(a) in used for a in s):
                return str(s)
        raise SandboxError(f"no free /30 left in {self.pool}")

    def create(self, gateway: str, uid: int, gid: int, join: int | None = None, dynamic: bool = False) -> SandboxSpec:
        """Build a sandbox; on any failure remove what was built and raise SandboxError. ``join``: a process
        (waiting to become the agent) to move into the sandbox's cgroup; ``dynamic``: lease the sandbox a uid
        (and gid) of its own instead of ``uid``/``gid``."""
        with open(_net_lock(), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # subnets are host-wide: other daemons allocate too
            sid = new_id()
            if dynamic:
                try:
                    uid = gid = uids.lease(f"{self.tag}-{sid}")
                except (uids.UidError, OSError) as err:
                    raise SandboxError(f"cannot lease a uid for the agent: {err}") from err
            spec = SandboxSpec(self.tag, sid, gateway, self._pick_subnet(), uid, gid, self.ipv6)
            (self.records / f"{spec.id}.json").write_text(spec.to_json())
            # Independent steps, built at once: moving the waiting agent into the cgroup and making the
            # namespace both spend most of their time waiting for the kernel.
            failed = _at_once({"network namespace": lambda: net.create(spec),
                               "cgroup": lambda: self._cgroup(spec, join),
                               "rules": lambda: nftables.apply(nftables.render(spec, *self.ports))})
        if failed:
            self.destroy(spec)
            what, e = next(iter(failed.items()))
            raise SandboxError(f"cannot create the {what} of sandbox {spec.name}: {e}") from e
        return spec

    @staticmethod
    def _cgroup(spec: SandboxSpec, join: int | None) -> None:
        cgroup.create(spec.name)
        if join is not None:
            cgroup.add(spec.name, join)

    def destroy(self, spec: SandboxSpec) -> None:
        """Remove everything of the sandbox that exists; log (not raise) what could not be removed.

        The processes go first, so nothing runs while the rules are removed; then the table and the network,
        which do not depend on each other, at once; the uid lease last, once nothing runs as that uid."""
        errors: dict[str, BaseException] = {}
        try:
            cgroup.remove(spec.name)
        except Exception as e:  # noqa: BLE001 - keep tearing down the rest
            errors["processes"] = e
        errors |= _at_once({"nftables table": lambda: nftables.delete(spec.table),
                            "network": lambda: net.destroy(spec.netns, spec.host_if)})
        if errors:
            text = "; ".join(f"{what}: {e}" for what, e in errors.items())
            log.error("sandbox %s teardown incomplete: %s", spec.name, text)
            raise SandboxError(f"sandbox {spec.name} teardown incomplete: {text}")
        uids.release(spec.uid, spec.name)
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
        uids.release_all(prefix)  # leases of sandboxes whose record was lost
        return sorted(found)
