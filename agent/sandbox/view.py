"""What the agent sees: its own mount namespace, built by its init process (root, pid 1 of the sandbox's PID
namespace) before the agent is started.

In order: the sandbox's network namespace is joined; a new mount namespace, slave to the host's (nothing
propagates back); a ``/proc`` of the new PID namespace (only the sandbox's processes) and a ``/sys`` of the
network namespace (no cgroupfs); an empty ``/run`` (no host socket: Docker, D-Bus, systemd, nscd), holding only
the CA files at fixed paths (``/run/trustfence/``), so the state directory may be 0700 anywhere; the resolver
files of ``/etc/netns/<ns>``; the CA bundles clients carry covered by the agent's; a private ``/tmp``,
``/var/tmp`` and ``/dev/shm`` (two sandboxes never share a writable place); the state directory and the
policy's hidden paths covered by something empty and read-only, last, so that nothing mounted before re-exposes
them. The working directory is then entered again by its path, so that what the agent reaches through it is
what the mounts show; after it, the bundles the command's own clients read are covered by equivalents that also
trust the enforcer (``sandbox.catrust``, ``_trust``), before the hidden paths are.
"""

from __future__ import annotations

import base64
import ctypes
import os
import stat

TYPE_CHECKING = False  # imported on every agent start
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

__all__ = ["CA_BUNDLE", "CA_CERT", "PRIVATE_HOME", "PRIVATE_TMP", "RUN_DIR", "TRUST_DIR", "ViewError", "enter",
           "expand", "hidden_cover", "writable_paths"]

RUN_DIR = "/run/trustfence"
CA_BUNDLE = f"{RUN_DIR}/ca-bundle.pem"  # system roots + the enforcer CA: SSL_CERT_FILE and friends
CA_CERT = f"{RUN_DIR}/trustfence-ca.pem"  # the enforcer CA alone: NODE_EXTRA_CA_CERTS
_EMPTY = f"{RUN_DIR}/empty"  # what covers a hidden file
TRUST_DIR = f"{RUN_DIR}/trust"  # the bundles that cover the agent's own (sandbox.catrust), read-only
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")  # each a tmpfs of the sandbox's own
PRIVATE_HOME = "/tmp/home"  # HOME of an agent without an account of its own (dynamic uid, default user)

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_SLAVE = 32, 4096, 16384, 1 << 19
_MNT_DETACH = 2
_SAFE = _MS_NOSUID | _MS_NODEV

_libc = ctypes.CDLL(None, use_errno=True)


class ViewError(OSError):
    pass


def _enc(s: str | None) -> bytes | None:
    return s.encode() if s is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if _libc.mount(_enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags), _enc(data)) != 0:
        err = ctypes.get_errno()
        raise ViewError(err, f"mount {fstype or 'bind'} {source or ''} on {target}: {os.strerror(err)}")


def _umount(target: str) -> None:
    if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise ViewError(err, f"umount {target}: {os.strerror(err)}")


def _bind(source: str, target: str, readonly: bool = True) -> None:
    _mount(source, target, None, _MS_BIND)
    if readonly:
        _mount(None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _SAFE)


def _file_at(path: str) -> str:
    """``path`` resolved, created empty (with its directories) where it does not exist: a bind mount needs a
    target, and a file in ``/etc`` may be a link into the new, empty ``/run``."""
    real = os.path.realpath(path)
    if not os.path.lexists(real):
        os.makedirs(os.path.dirname(real), exist_ok=True)
        os.close(os.open(real, os.O_CREAT | os.O_WRONLY, 0o644))
    return real


def _tmpfs(target: str, mode: str, flags: int = _SAFE, size: str = "") -> None:
    _mount("tmpfs", target, "tmpfs", flags, f"mode={mode}" + (f",size={size}" if size else ""))


def expand(paths: Iterable[str], homes: Iterable[str]) -> list[str]:
    """Absolute paths, ``~/x`` once per home in ``homes`` (the agent's, the invoking user's); normalised."""
    out: list[str] = []
    for p in paths:
        for full in ([os.path.join(h, p[2:]) for h in homes] if p.startswith("~/") else [p]):
            full = os.path.normpath(full)
            if full not in out:
                out.append(full)
    return out


def _beneath(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def hidden_cover(path: str, hidden: Iterable[str]) -> str | None:
    """The hidden path that covers ``path`` (itself or a directory above it, resolved), or None."""
    real = os.path.realpath(path)
    for h in hidden:
        if _beneath(path, h) or _beneath(real, h) or _beneath(real, os.path.realpath(h)):
            return h
    return None


def writable_paths(cwd: str, writable_cwd: bool, extra: Iterable[str], homes: Iterable[str]) -> tuple[list[str], str]:
    """Where the agent may write, and a note when the working directory stays read-only because it holds a
    home directory (writing ``~/.bashrc`` would run code outside any sandbox later)."""
    out = [*PRIVATE_TMP, *extra]
    note = ""
    if writable_cwd:
        held = [h for h in homes if _beneath(os.path.realpath(h), os.path.realpath(cwd))]
        if cwd == "/" or held:
            note = (f"the working directory {cwd} holds {held[0] if held else 'everything'}: it stays read-only "
                    "(start tf run in a project directory, or list it in writable)")
        else:
            out.append(cwd)
    return out, note


def enter(view: Mapping[str, Any]) -> None:
    """Build the agent's view in this process (root, the sandbox's init, single-threaded). Raises ViewError."""
    with open(f"/run/netns/{view['netns']}", "rb") as ns:
        os.setns(ns.fileno(), os.CLONE_NEWNET)
    os.unshare(os.CLONE_NEWNS)
    _mount(None, "/", None, _MS_REC | _MS_SLAVE)
    cwd = view["cwd"]
    old_cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
    umask = os.umask(0o022)  # what is made here is for the agent to read; it gets the caller's umask back
    try:
        _umount("/proc")
        _mount("proc", "/proc", "proc", _SAFE | _MS_NOEXEC)
        _umount("/sys")
        _mount("sysfs", "/sys", "sysfs", _SAFE | _MS_NOEXEC | _MS_RDONLY)
        _tmpfs("/run", "755", size="1m")
        os.mkdir(RUN_DIR, 0o755)
        for source, target in ((view["bundle"], CA_BUNDLE), (view["ca"], CA_CERT)):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o444))
            _bind(source, target)  # bound while the state directory is still visible to this root process
        os.close(os.open(_EMPTY, os.O_CREAT | os.O_WRONLY, 0))
        _bind(_EMPTY, _EMPTY)  # read-only itself: what covers a file can never be written through
        etc = view["etc"]
        for name in sorted(os.listdir(etc)) if os.path.isdir(etc) else ():
            _bind(os.path.join(etc, name), _file_at(os.path.join("/etc", name)))
        for path in view["overlays"]:
            if os.path.isfile(path):
                _bind(CA_BUNDLE, path)
        for path in PRIVATE_TMP:
            if os.path.isdir(path):
                _tmpfs(path, "1777")
        if view.get("home"):
            os.mkdir(PRIVATE_HOME, 0o700)
            os.chown(PRIVATE_HOME, *view["home"])
        if view.get("account"):
            _add_account(view["account"], *view["home"])
        _reenter(cwd, old_cwd, view["hide"])  # before hiding: what is hidden beneath it stays hidden
        _trust(view.get("trust"))  # after: a bundle in a working directory under /tmp is reached through it
        for path in view["hide"]:
            _hide(path)
        os.chdir(cwd)
    finally:
        os.umask(umask)
        os.close(old_cwd)


def _trust(plan: Mapping[str, Any] | None) -> None:
    """Cover each bundle the agent's clients read (``sandbox.catrust``) with its equivalent that also trusts the
    enforcer: the contents in a tmpfs of their own, made read-only, each bound over its target only while the
    target's path still leads to the file that was read as the agent (device and inode), never through a
    symlink at its end (``O_NOFOLLOW``; the mount is made on the opened file, not on a path looked up again)."""
    if not plan or not plan.get("targets"):
        return
    files = {name: base64.b64decode(text) for name, text in plan["files"].items()}
    os.mkdir(TRUST_DIR, 0o755)
    _tmpfs(TRUST_DIR, "755", size=str(sum(len(b) for b in files.values()) + (1 << 16)))
    for name, data in files.items():
        with open(os.open(f"{TRUST_DIR}/{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444), "wb") as f:
            f.write(data)
    _mount(None, TRUST_DIR, None, _MS_REMOUNT | _MS_RDONLY | _SAFE | _MS_NOEXEC)
    for path, dev, ino, name in plan["targets"]:
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # gone, or no longer in the agent's view: nothing to cover
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (dev, ino):
                _mount(f"{TRUST_DIR}/{name}", f"/proc/self/fd/{fd}", None, _MS_BIND)  # read-only as its source
        finally:
            os.close(fd)


def _add_account(name: str, uid: int, gid: int) -> None:
    """Show a leased uid as an account (``whoami``, ``getpwuid`` and the tools that ask them work): copies of
    ``/etc/passwd`` and ``/etc/group`` with its line, in the private ``/run``, mounted read-only over them."""
    for table, line in (("passwd", f"{name}:x:{uid}:{gid}:TrustFence agent:{PRIVATE_HOME}:/bin/sh\n"),
                        ("group", f"{name}:x:{gid}:\n")):
        try:
            with open(f"/etc/{table}") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        copy = f"{RUN_DIR}/{table}"
        with open(copy, "w") as f:
            f.write(text + ("" if text.endswith("\n") or not text else "\n") + line)
        os.chmod(copy, 0o644)
        _bind(copy, _file_at(f"/etc/{table}"))


def _hide(path: str) -> None:
    """Cover ``path`` as it is now in the view (gone already: nothing to do) by something empty and read-only."""
    if not os.path.lexists(path):
        return
    real = os.path.realpath(path)
    if not os.path.exists(real):
        return
    if os.path.isdir(real):
        _tmpfs(real, "000", _SAFE | _MS_NOEXEC | _MS_RDONLY, size="4k")
    else:
        _bind(_EMPTY, real)


def _reenter(cwd: str, old: int, hidden: Sequence[str]) -> None:
    """Make the working directory reachable by its path in the new view. Where the mounts replaced what holds it
    (``/tmp/work`` under the private ``/tmp``), the caller's directory itself is mounted back at its path;
    never one under a hidden path (``tf run`` refuses those before it starts anything)."""
    if hidden_cover(cwd, hidden):
        raise ViewError(13, f"the working directory {cwd} is under hidden path {hidden_cover(cwd, hidden)}")
    before = os.fstat(old)
    try:
        now = os.stat(cwd)
        same = (now.st_dev, now.st_ino) == (before.st_dev, before.st_ino)
    except OSError:
        same = False
    if not same:
        os.makedirs(cwd, 0o755, exist_ok=True)
        _bind(f"/proc/self/fd/{old}", cwd, readonly=False)


def hide_list(state: str, hidden: Sequence[str]) -> list[str]:
    """The state directory first, then the policy's hidden paths."""
    return [state, *(h for h in hidden if h != state)]
