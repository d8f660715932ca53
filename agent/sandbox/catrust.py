"""CA trust that follows the agent: the CA bundles its command will read, found at ``tf run`` and covered inside
its mount namespace by equivalents that also trust the enforcer CA. No host file is ever written.

What is looked for (``candidates``): for a Python command (``python3``, a venv's ``bin/python``, a script whose
``#!`` names one, through ``env``), the interpreter's ``sys.prefix`` as Python itself finds it (the directory
holding ``pyvenv.cfg`` next to or above the executable: a venv or uv venv), its base installation and the
directories in ``PYTHONPATH``; the
agent's user site (``~/.local``, ``pip install --user``); the working directory's ``.venv``. Under each, the
bundles Python packages carry (``BUNDLES``: certifi, pip's certifi, stripe, botocore, grpc, httplib2). Then the
working directory's ``node_modules`` (bundles by their usual names, a few levels deep) and the Java trust
stores: the command's JDK (``bin/java`` on the way), ``$JAVA_HOME``, every ``/usr/lib/jvm/*`` and
``/etc/ssl/certs/java/cacerts``.

The agent controls most of these paths (its venv, its working directory): a symlink to ``/etc/shadow`` named
``certifi/cacert.pem`` must neither be read by root nor covered. So the search and every read happen in a child
process that has become the agent's uid and gid, with no supplementary group (``read_as``): the agent can only
name what it could read itself, and a file that does not parse as what it claims to be (PEM certificates, a
Java keystore) is left alone. Each file is then identified by device and inode; the sandbox's init covers a path
only while it still leads to that very file (``sandbox.view``).
"""

from __future__ import annotations

import glob
import json
import os
import re
import select
import signal
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["BUNDLES", "Found", "TrustError", "candidates", "command_of", "python_prefixes", "read_as", "which"]

# Bundles Python packages carry instead of the system's, relative to a site-packages directory.
BUNDLES = ("certifi/cacert.pem", "pip/_vendor/certifi/cacert.pem", "stripe/data/ca-certificates.crt",
           "botocore/cacert.pem", "grpc/_cython/_credentials/roots.pem", "httplib2/cacerts.txt")
_SITES = ("lib/python3*/site-packages", "lib/python3*/dist-packages", "lib64/python3*/site-packages")
_NODE_NAMES = ("cacert.pem", "ca-certificates.crt", "ca-bundle.crt", "ca-bundle.pem", "roots.pem")
_NODE_DEPTH = 4  # node_modules/a/b/c/name at most: enough for @scope/pkg/certs/, bounded for big trees
JAVA_STORES = ("/etc/ssl/certs/java/cacerts", "/usr/lib/jvm/*/lib/security/cacerts")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
MAX_FILES = 32  # bundles read per run; past it, the rest keep their own trust (`tf logs` shows their refusals)
MAX_BYTES = 1 << 20  # one bundle; the largest real ones are ~300 KiB (PEM) and ~200 KiB (Java)
DEADLINE = 5.0  # seconds the search may take (a hung filesystem must not hang tf run)


class TrustError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Found:
    """A bundle as the agent could read it: where it really is (``path``, resolved), which file (``dev``,
    ``ino``), ``kind`` ``pem`` or ``java``, and its bytes."""

    path: str
    dev: int
    ino: int
    kind: str
    data: bytes


def which(cmd: str, path: str, cwd: str) -> str | None:
    """The file ``cmd`` runs, as ``execvp`` finds it on ``path`` from ``cwd`` (None: not found)."""
    if "/" in cmd:
        return os.path.normpath(os.path.join(cwd, cmd))
    for d in path.split(":"):
        full = os.path.join(d or cwd, cmd)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    return None


def _shebang(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    return head[2:].split(b"\n", 1)[0].decode(errors="replace").split()


def command_of(argv: Sequence[str], path: str, cwd: str) -> str | None:
    """The program ``argv`` really runs: through ``env [VAR=x] prog`` and one ``#!`` line. None: not found."""
    args = list(argv)
    for _ in range(3):
        while args and os.path.basename(args[0]) == "env":
            args = args[1:]
            while args and ("=" in args[0] or args[0].startswith("-")):
                args = args[1:]
        if not args:
            return None
        exe = which(args[0], path, cwd)
        if exe is None:
            return None
        line = _shebang(exe)
        if not line:
            return exe
        args = line + args[1:]
    return None


def python_prefixes(exe: str) -> list[str]:
    """The ``sys.prefix`` a Python executable gets (a venv: where ``pyvenv.cfg`` is, next to it or one up) and
    the prefix of the installation it comes from (its real path, two levels up; ``/usr`` adds ``/usr/local``)."""
    out: list[str] = []
    here = os.path.dirname(os.path.abspath(exe))
    for d in (here, os.path.dirname(here)):
        if os.path.isfile(os.path.join(d, "pyvenv.cfg")):
            out.append(d)
            break
    base = os.path.dirname(os.path.dirname(os.path.realpath(exe)))
    out += [base, "/usr/local"] if base == "/usr" else [base]
    return list(dict.fromkeys(out))


def _python_bundles(prefix: str) -> list[tuple[str, str]]:
    return [(p, "pem") for site in _SITES for rel in BUNDLES for p in glob.glob(os.path.join(prefix, site, rel))]


def _node_bundles(top: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    base = top.rstrip("/").count("/")
    for d, dirs, files in os.walk(top):  # never follows a symlinked directory
        if d.count("/") - base >= _NODE_DEPTH:
            dirs.clear()
        out += [(os.path.join(d, f), "pem") for f in files if f in _NODE_NAMES]
        if len(out) > MAX_FILES:
            break
    return out


def candidates(argv: Sequence[str], env: Mapping[str, str], cwd: str, home: str | None) -> list[tuple[str, str]]:
    """Where the command's bundles may be, ``(path, kind)``; paths as found, not yet resolved or read."""
    path = env.get("PATH", os.defpath)
    exe = command_of(argv, path, cwd)
    name = os.path.basename(exe) if exe else ""
    prefixes: list[str] = []
    if exe and _PYTHON.match(name):
        prefixes += python_prefixes(exe)
    if home:
        prefixes.append(os.path.join(home, ".local"))
    prefixes.append(os.path.join(cwd, ".venv"))
    found = [c for p in dict.fromkeys(prefixes) for c in _python_bundles(p)]
    if exe and _PYTHON.match(name):  # PYTHONPATH entries are site directories of their own
        found += [(p, "pem") for d in env.get("PYTHONPATH", "").split(":") if d.startswith("/")
                  for rel in BUNDLES for p in glob.glob(os.path.join(d, rel))]
    if os.path.isdir(os.path.join(cwd, "node_modules")):
        found += _node_bundles(os.path.join(cwd, "node_modules"))
    homes = [os.path.dirname(os.path.dirname(os.path.realpath(exe)))] if exe and name == "java" else []
    homes += [env["JAVA_HOME"]] if env.get("JAVA_HOME", "").startswith("/") else []
    java = [os.path.join(h, "lib/security/cacerts") for h in homes]
    found += [(p, "java") for pattern in (*java, *JAVA_STORES) for p in glob.glob(pattern)]
    return list(dict.fromkeys(found))


def _read(path: str, kind: str) -> Found | None:
    """The file as this process may read it: a regular file only (a FIFO must not block, a device is not a
    bundle), at most MAX_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        real = os.readlink(f"/proc/self/fd/{fd}")
        chunks, size = [], 0
        while size <= MAX_BYTES and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            return None
        return Found(real, st.st_dev, st.st_ino, kind, b"".join(chunks))
    except OSError:
        return None
    finally:
        os.close(fd)


def _search(argv: Sequence[str], env: Mapping[str, str], cwd: str, home: str | None) -> list[Found]:
    out: dict[tuple[int, int], Found] = {}
    for path, kind in candidates(argv, env, cwd, home):
        f = _read(path, kind)
        if f is not None and (f.dev, f.ino) not in out:
            out[(f.dev, f.ino)] = f
        if len(out) >= MAX_FILES:
            break
    return list(out.values())


def read_as(uid: int, gid: int, argv: Sequence[str], env: Mapping[str, str], cwd: str,
            home: str | None) -> list[Found]:
    """The bundles the command will read, searched and read by a child process running as ``uid``:``gid``
    (no supplementary group), within DEADLINE. Raises TrustError when that child fails or takes too long."""
    if uid <= 0 or gid <= 0:
        raise TrustError("the search runs as the agent's unprivileged uid only")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            found = _search(argv, env, cwd, home)
            text = json.dumps([[f.path, f.dev, f.ino, f.kind, f.data.hex()] for f in found]).encode()
            with os.fdopen(w, "wb") as out:
                out.write(text)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        data = _collect(r, pid)
    finally:
        os.close(r)
    return [Found(p, int(d), int(i), str(k), bytes.fromhex(h)) for p, d, i, k, h in json.loads(data or b"[]")]


def _collect(fd: int, pid: int) -> bytes:
    """Everything the child writes, then its exit; killed at the deadline."""
    chunks: list[bytes] = []
    limit = 2 * MAX_FILES * MAX_BYTES + 4096  # hex doubles the bytes
    end = time.monotonic() + DEADLINE
    size = 0
    try:
        while (left := end - time.monotonic()) > 0:
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise TrustError("the CA bundle search answered more than it may")
        else:
            raise TrustError(f"the CA bundle search took longer than {DEADLINE:.0f} s")
    except TrustError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise TrustError("the CA bundle search failed as the agent's user")
    return b"".join(chunks)

