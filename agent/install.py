"""``tf install``: a host made ready for the daemon, each step checked first so a second run changes nothing.

Without ``--systemd``: the ``trustfence`` group (members may read through the control socket), the state
directory (root, 0711) and the vault key file (root, 0600). With ``--systemd``, also the hardened unit
(``unit.render_unit``), the vault key as a credential encrypted by ``systemd-creds`` (host key, and the TPM2
where there is one) instead of a file, and the unit enabled (and, on the live host, started).

Every step works on a root directory (``/``, or ``--root DIR`` for a tree: an image, a test) through the
tools that own the files: ``groupadd --prefix``, ``systemctl --root``, ``systemd-creds``. ``plan`` only reads;
each ``Change`` it returns says what it does and does it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trustfence.agent.unit import CREDENTIAL_PATH, render_unit
from trustfence.vault.keys import CREDENTIAL_NAME, MasterKey, decode_key, ensure_key, read_key_file

__all__ = ["GROUP", "UNIT", "Change", "InstallError", "Target", "has_group", "plan", "systemd_running"]

GROUP = "trustfence"
UNIT = "trustfence.service"


class InstallError(Exception):
    """A step that cannot be done here: nothing after it is attempted."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where things go: every path is under ``root``."""

    root: Path

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def live(self) -> bool:
        """The running host itself (not a tree): the unit is started, systemd reloaded."""
        return self.root == Path("/")

    @property
    def unit(self) -> Path:
        return self.at(f"/etc/systemd/system/{UNIT}")

    @property
    def credential(self) -> Path:
        return self.at(CREDENTIAL_PATH)

    @property
    def state(self) -> Path:
        return self.at("/var/lib/trustfence")

    @property
    def key_file(self) -> Path:
        return self.state / "vault.key"


@dataclass(frozen=True, slots=True)
class Change:
    says: str
    apply: Callable[[], object]


def systemd_running() -> bool:
    """systemd is PID 1 (sd_booted(): /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir()


def _run(*argv: str, input: bytes | None = None) -> bytes:
    r = subprocess.run(argv, input=input, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def has_group(t: Target) -> bool:
    """The group is in the target's /etc/group (what groupadd writes)."""
    try:
        return any(line.split(":", 1)[0] == GROUP for line in t.at("/etc/group").read_text().splitlines())
    except FileNotFoundError:
        return False


def _dir(path: Path, mode: int) -> Change | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        def create() -> None:
            path.mkdir(mode, parents=True)
            os.chmod(path, mode)  # mkdir's mode is filtered by the umask
        return Change(f"create {path} (root, {mode:04o})", create)
    if stat.S_IMODE(st.st_mode) == mode and st.st_uid == 0:
        return None
    def fix() -> None:
        os.chown(path, 0, 0)
        os.chmod(path, mode)
    return Change(f"set {path} to root, {mode:04o} (was uid {st.st_uid}, {stat.S_IMODE(st.st_mode):04o})", fix)


def _decrypt(cred: Path) -> MasterKey:
    return decode_key(_run("systemd-creds", "decrypt", f"--name={CREDENTIAL_NAME}", str(cred), "-"), str(cred))


def _encrypt(t: Target) -> None:
    """The existing key (the vault is sealed with it) or a new one, encrypted; checked by decrypting it back;
    only then is the plaintext file removed. A new key never touches the disk in the clear."""
    key = read_key_file(t.key_file) if t.key_file.exists() else MasterKey.generate()
    t.credential.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = t.credential.with_name(t.credential.name + ".new")
    old = os.umask(0o077)
    try:
        _run("systemd-creds", "encrypt", f"--name={CREDENTIAL_NAME}", "-", str(tmp), input=key.raw_bytes())
    finally:
        os.umask(old)
    if _decrypt(tmp).raw_bytes() != key.raw_bytes():
        tmp.unlink()
        raise InstallError(f"{tmp} does not decrypt to the vault key; nothing replaced")
    os.chmod(tmp, 0o600)
    tmp.rename(t.credential)
    t.key_file.unlink(missing_ok=True)


def _key_changes(t: Target, systemd: bool) -> list[Change]:
    creds = systemd and shutil.which("systemd-creds") is not None
    if not creds:
        if t.key_file.exists():
            return []
        return [Change(f"create the vault key {t.key_file} (root, 0600)", lambda: ensure_key(t.key_file, {}))]
    if not t.credential.exists():
        what = f"the vault key of {t.key_file}" if t.key_file.exists() else "a new vault key"
        return [Change(f"encrypt {what} with systemd-creds into {t.credential} (0600)"
                       + (f"; remove {t.key_file}" if t.key_file.exists() else ""), lambda: _encrypt(t))]
    if t.key_file.exists():
        if _decrypt(t.credential).raw_bytes() != read_key_file(t.key_file).raw_bytes():
            raise InstallError(f"{t.credential} and {t.key_file} hold different keys; keep the one the vault was "
                               "sealed with (tf vault status) and remove the other")
        return [Change(f"remove {t.key_file}: {t.credential} holds the same key", t.key_file.unlink)]
    return []


def _unit_changes(t: Target, tf: str) -> list[Change]:
    text = render_unit(tf, credential=t.credential.exists() or shutil.which("systemd-creds") is not None)
    out = []
    if not t.unit.exists() or t.unit.read_text() != text:
        def write() -> None:
            t.unit.parent.mkdir(parents=True, exist_ok=True)
            t.unit.write_text(text)
            os.chmod(t.unit, 0o644)
            if t.live:
                _run("systemctl", "daemon-reload")
        out.append(Change(f"write {t.unit} (ExecStart={tf} daemon)", write))
    root = [] if t.live else [f"--root={t.root}"]
    enabled = subprocess.run(["systemctl", *root, "is-enabled", UNIT], capture_output=True, text=True, timeout=30)
    if enabled.stdout.strip() != "enabled":
        now = ["--now"] if t.live else []
        out.append(Change(f"enable {UNIT}" + (" and start it" if t.live else ""),
                          lambda: _run("systemctl", *root, "enable", *now, UNIT)))
    if t.live and subprocess.run(["systemctl", "is-active", "--quiet", UNIT], timeout=30).returncode != 0:
        out.append(Change(f"start {UNIT}", lambda: _run("systemctl", "start", UNIT)))
    elif t.live and out:
        out.append(Change(f"restart {UNIT} (its unit changed)", lambda: _run("systemctl", "restart", UNIT)))
    return out


def plan(t: Target, tf: str, systemd: bool) -> list[Change]:
    """What is still to be done, in order. Reads only; raises InstallError for what cannot be done."""
    changes: list[Change] = []
    if not has_group(t):
        prefix = [] if t.live else ["--prefix", str(t.root)]
        changes.append(Change(f"create the system group {GROUP} (members may use tf's read commands)",
                              lambda: _run("groupadd", "--system", *prefix, GROUP)))
    creds = systemd and shutil.which("systemd-creds") is not None
    for c in (_dir(t.state, 0o711), _dir(t.credential.parent, 0o700) if creds else None):
        if c is not None:
            changes.append(c)
    changes += _key_changes(t, systemd)
    if systemd:
        changes += _unit_changes(t, tf)
    return changes
