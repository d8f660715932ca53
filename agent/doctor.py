"""``tf doctor``: every prerequisite of a sandbox, checked for real on this host, each with its fix.

A check either passes or says what is wrong and the command that fixes it. ``required`` checks gate
``tf run``; the others are needed by features that are optional or not yet switched on.
"""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _root() -> Check:
    ok = os.geteuid() == 0
    return Check("root", ok, f"euid {os.geteuid()}", "" if ok else "run tf as root: sudo tf ...")


def _python() -> Check:
    ok = sys.version_info >= (3, 12)
    return Check("python", ok, platform.python_version(), "" if ok else "install Python >= 3.12 and re-run make")


def _mitmproxy() -> Check:
    try:
        from mitmproxy.version import VERSION
    except ImportError:
        return Check("mitmproxy", False, "not importable", "make bootstrap")
    major, minor, patch = (int(x) for x in (VERSION.split(".") + ["0", "0"])[:3])
    ok = (12, 2, 2) <= (major, minor, patch) < (13, 0, 0)
    return Check("mitmproxy", ok, VERSION, "" if ok else "pip install -c constraints.txt 'mitmproxy>=12.2.2,<13'")


def _tool(name: str, package: str) -> Check:
    path = shutil.which(name)
    return Check(name, path is not None, path or "not found", "" if path else f"apt-get install {package}")


def _nft() -> Check:
    if shutil.which("nft") is None:
        return Check("nftables", False, "nft not found", "apt-get install nftables")
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
    ok = r.returncode == 0
    return Check("nftables", ok, "nft list tables works" if ok else r.stderr.strip(),
                 "" if ok else "run as root; load nf_tables (modprobe nf_tables)")


def _netns() -> Check:
    from pyroute2 import netns

    name = f"tfdoctor-{secrets.token_hex(3)}"
    try:
        netns.create(name)
        netns.remove(name)
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        return Check("netns", False, f"cannot create a network namespace: {e}", "run as root (CAP_SYS_ADMIN)")
    return Check("netns", True, "created and removed a test namespace")


def _cgroup2() -> Check:
    from trustfence.agent.sandbox.cgroup import CgroupError, cgroup2_root

    try:
        root = cgroup2_root()
    except CgroupError as e:
        return Check("cgroup2", False, str(e), "mount -t cgroup2 none /sys/fs/cgroup")
    ok = os.access(root, os.W_OK)
    return Check("cgroup2", ok, str(root), "" if ok else f"make {root} writable for root")


def _forwarding() -> Check:
    value = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    return Check("ip_forward", True, f"net.ipv4.ip_forward={value} (sandboxes drop forwarded traffic either way)",
                 required=False)


def _headers() -> Check:
    build = Path("/lib/modules") / os.uname().release / "build"
    ok = (build / "include").is_dir()
    return Check("kernel headers", ok, str(build.resolve()) if ok else f"{build} missing",
                 "" if ok else "make bootstrap (installs headers and links them here)", required=False)


def _bcc() -> Check:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # bcc 0.26 has invalid escapes on Python >= 3.12
            import bcc  # noqa: F401
    except Exception as e:  # noqa: BLE001 - import errors of a C binding vary
        return Check("bcc", False, f"not importable: {e}", "apt-get install python3-bpfcc; make bootstrap",
                     required=False)
    return Check("bcc", True, "importable", required=False)


def _tracefs() -> Check:
    ok = Path("/sys/kernel/tracing/events").is_dir()
    return Check("tracefs", ok, "/sys/kernel/tracing" if ok else "not mounted",
                 "" if ok else "mount -t tracefs tracefs /sys/kernel/tracing", required=False)


def _landlock() -> Check:
    from trustfence.agent.sandbox import landlock

    version = landlock.abi()
    if not version:
        return Check("landlock", False, landlock.unavailable_reason(), landlock.FIX)
    scoped = " (signals and abstract sockets scoped)" if version >= 6 else ""
    return Check("landlock", True, f"ABI {version}{scoped}: the agent writes only where its policy allows")


def _namespaces() -> Check:
    """A child that makes a PID and a mount namespace of its own, as every sandbox's init does."""
    pid = os.fork()
    if pid == 0:
        try:
            os.unshare(os.CLONE_NEWPID | os.CLONE_NEWNS)
            os._exit(0)
        except BaseException:  # noqa: BLE001 - the exit status is the answer
            os._exit(1)
    ok = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    return Check("pid+mount ns", ok, "created a PID and a mount namespace" if ok else "unshare refused",
                 "" if ok else "run as root on a kernel built with CONFIG_PID_NS (every distribution kernel is)")


def _vault_key() -> Check:
    from trustfence.agent.paths import paths
    from trustfence.vault import VaultError, load_key

    try:
        key = load_key(paths().vault_key)
    except VaultError as e:  # the message names the fix (tf init, chmod 600, chown)
        return Check("vault key", False, str(e), "sudo tf init creates it; fix permissions as the message says")
    return Check("vault key", True, f"key {key.key_id} from {key.source}")


def _state_modes() -> Check:
    from trustfence.agent.modes import loose
    from trustfence.agent.paths import paths

    p = paths()
    if not p.home.exists():
        return Check("state file modes", True, f"{p.home} does not exist yet (tf init creates it)")
    wide = loose(p)
    if not wide:
        return Check("state file modes", True, f"everything under {p.home} is root-only but the public CA bundle")
    shown = "; ".join(f"{path} is {mode:04o} (at most {ceiling:04o})" for path, mode, ceiling in wide[:5])
    more = f" and {len(wide) - 5} more" if len(wide) > 5 else ""
    fix = "; ".join(f"chmod {mode & ceiling:04o} {path}" for path, mode, ceiling in wide[:5])
    return Check("state file modes", False, f"readable or writable beyond root: {shown}{more}",
                 f"{fix} (or sudo tf init, which tightens every state file)")


CHECKS: tuple[Callable[[], Check], ...] = (
    _root, _python, _mitmproxy, lambda: _tool("ip", "iproute2"),
    _nft, _netns, _namespaces, _landlock, _cgroup2, _forwarding, _headers, _bcc, _tracefs, _vault_key, _state_modes,
)


def run_checks() -> list[Check]:
    out = []
    for check in CHECKS:
        try:
            out.append(check())
        except Exception as e:  # noqa: BLE001 - a crashing check is a failed check, with its reason
            out.append(Check(getattr(check, "__name__", "check").strip("_"), False, f"check failed: {e}", ""))
    return out
