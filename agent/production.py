"""``tf doctor --production``: what a production host needs beyond a working sandbox.

The unit is installed with every confinement directive of ``unit.HARDENING`` and runs; the vault key comes
from an encrypted credential (not a file beside the vault it opens); nothing secret in the state directory is
readable by others, nothing there writable by others; the kernel says the clock is synchronized (approval
timeouts, audit timestamps and the certificates the enforcer mints depend on it); the store has room to grow.
Each check is a ``doctor.Check`` with the command that fixes it.
"""

from __future__ import annotations

import ctypes
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from trustfence.agent.doctor import Check
from trustfence.agent.install import GROUP, UNIT, Target, has_group, systemd_running
from trustfence.agent.paths import Paths
from trustfence.agent.unit import CREDENTIAL_PATH, HARDENING

__all__ = ["DISK_MIN", "production_checks"]

DISK_MIN = 1 << 30
"""Free bytes the store's file system must have (1 GiB); the traffic log grows with every request."""

_FIX_INSTALL = "sudo tf install --systemd"
_SECRET = ("vault.json", "vault.key", "audit.jsonl", "kill-switches.json", "traffic.duckdb", "traffic.duckdb.wal")


def _unit_lines(t: Target) -> set[str] | None:
    try:
        return {ln.strip() for ln in t.unit.read_text().splitlines()}
    except FileNotFoundError:
        return None


def _unit(t: Target) -> Check:
    lines = _unit_lines(t)
    if lines is None:
        return Check("unit", False, f"{t.unit} is not installed", _FIX_INSTALL)
    missing = [f"{k}={v}" for k, v in HARDENING if f"{k}={v}" not in lines]
    if missing:
        return Check("unit", False, f"{t.unit} lacks {', '.join(missing)}", _FIX_INSTALL)
    return Check("unit", True, f"{t.unit}: {len(HARDENING)} confinement directives")


def _service(t: Target) -> Check:
    if not t.live:
        return Check("service", True, f"not checked for {t.root} (not the running host)", required=False)
    if not systemd_running():
        return Check("service", False, "this host does not run systemd", "run tf daemon under the host's "
                     "service manager, and check it there")
    states = [subprocess.run(["systemctl", verb, UNIT], capture_output=True, text=True, timeout=30).stdout.strip()
              for verb in ("is-enabled", "is-active")]
    ok = states == ["enabled", "active"]
    return Check("service", ok, f"{UNIT} {states[0]}, {states[1]}", "" if ok else f"systemctl enable --now {UNIT}")


def _key_source(t: Target, state: Paths) -> Check:
    cred, lines = t.credential, _unit_lines(t) or set()
    loads = any(ln.startswith("LoadCredentialEncrypted=") and ln.endswith(CREDENTIAL_PATH) for ln in lines)
    if not cred.exists() or not loads:
        return Check("key source", False, f"the vault key is not an encrypted credential ({cred} "
                     f"{'exists' if cred.exists() else 'missing'}; unit {'loads' if loads else 'does not load'} "
                     "it)", _FIX_INSTALL + " (needs systemd-creds)")
    if state.vault_key.exists():
        return Check("key source", False, f"{state.vault_key} still holds a key in the clear next to {cred}",
                     _FIX_INSTALL + " (removes it once the credential holds the same key)")
    return _mode("key source", cred, 0o600, f"encrypted credential {cred}")


def _mode(name: str, path: Path, mode: int, what: str) -> Check:
    st = path.stat()
    ok = st.st_uid == 0 and stat.S_IMODE(st.st_mode) & ~mode == 0
    return Check(name, ok, f"{what}: uid {st.st_uid}, {stat.S_IMODE(st.st_mode):04o}",
                 "" if ok else f"chown root {path} && chmod {mode:04o} {path}")


def _modes(state: Paths) -> Check:
    if not state.home.exists():
        return Check("file modes", False, f"{state.home} does not exist", "sudo tf install")
    bad = []
    for p in [state.home, *state.home.rglob("*")]:
        if p.is_symlink() or p == state.socket:
            continue
        st = p.stat()
        m = stat.S_IMODE(st.st_mode)
        secret = p.name in _SECRET or state.ca_dir in p.parents or p == state.ca_dir
        if st.st_uid != 0 or m & 0o022 or (secret and m & 0o077):
            bad.append(f"{p} (uid {st.st_uid}, {m:04o})")
    if state.socket.exists():
        st = state.socket.stat()
        if stat.S_IMODE(st.st_mode) & 0o007:
            bad.append(f"{state.socket} ({stat.S_IMODE(st.st_mode):04o}: others may connect)")
    ok = not bad
    return Check("file modes", ok, f"{state.home}: root-owned, secrets 0600/0700" if ok else "; ".join(bad[:5]),
                 "" if ok else "chown root and chmod go-w each (secrets: chmod go-rwx); the daemon keeps them so")


def _group(t: Target) -> Check:
    ok = has_group(t)
    return Check("group", ok, f"group {GROUP} {'exists' if ok else 'is missing'}", "" if ok else "sudo tf install")


def _clock() -> Check:
    # adjtimex(2) with modes 0 only reads; TIME_ERROR (5) is the kernel's "clock not synchronized"
    buf = ctypes.create_string_buffer(512)  # larger than struct timex on every architecture
    state = ctypes.CDLL(None, use_errno=True).adjtimex(buf)
    ok = state in (0, 1, 2, 3, 4)
    return Check("clock", ok, "synchronized (NTP)" if ok else f"not synchronized (adjtimex state {state})",
                 "" if ok else "enable time synchronization: systemctl enable --now systemd-timesyncd (or chrony)")


def _disk(state: Paths) -> Check:
    where = state.home if state.home.exists() else state.home.parent
    free = shutil.disk_usage(where).free
    size = state.database.stat().st_size if state.database.exists() else 0
    ok = free >= DISK_MIN
    return Check("disk", ok, f"{free / 2**30:.1f} GiB free for the store ({size / 2**20:.1f} MiB now)",
                 "" if ok else f"free space on the file system of {where} (at least {DISK_MIN >> 30} GiB), or "
                 "export and prune old traffic")


def production_checks(t: Target, state: Paths) -> tuple[Callable[[], Check], ...]:
    """The checks for the installation at ``t`` whose state directory is ``state`` (run by doctor.run_checks)."""
    return (lambda: _unit(t), lambda: _service(t), lambda: _key_source(t, state), lambda: _modes(state),
            lambda: _group(t), _clock, lambda: _disk(state))
