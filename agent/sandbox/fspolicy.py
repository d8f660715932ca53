"""The filesystem policy of a gateway: where its agent may write and what it may not see at all.

``[sandbox]`` holds the defaults, ``[gateways.NAME]`` a gateway's own settings. Paths are absolute, or
``~/...`` (the agent's home and the home of whoever ran ``tf run``). Validated once, at load: a relative path,
an absolute path that does not exist, a hidden path that would hide the agent's own command (a directory of
the standard PATH, the libraries, ``/etc``) or the sandbox's own mounts, a writable ``/`` or state directory,
and a writable path under a hidden one are refused with the key's line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_HIDDEN", "KEYS", "FsPolicy", "FsPolicyError", "parse_fs"]

DEFAULT_HIDDEN: tuple[str, ...] = ("~/.ssh", "~/.aws", "~/.config/gcloud", "~/.docker", "~/.kube", "~/.netrc",
                                   "/var/run/docker.sock")
KEYS = ("writable", "hidden", "writable_cwd")
# What every command needs: hiding one of these, or a directory above one, hides the agent's own command.
_NEEDED = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/lib", "/lib64",
           "/usr/lib", "/usr/lib64", "/etc", "/dev", "/proc")
# The sandbox's own mounts: private /tmp, /var/tmp, /dev/shm, and /run with the CA files.
_OWN = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/sys")


class FsPolicyError(ValueError):
    """A setting that does not validate; ``key`` is the key to point the line at."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class FsPolicy:
    """``[sandbox]`` or ``[gateways.NAME]``: the filesystem the agent sees. Left out (None): the default.

    ``writable``: paths the agent may write beneath, besides its private ``/tmp`` (and ``/var/tmp``,
    ``/dev/shm``) and its working directory; everything else is read-only. E.g. ``["/srv/agent/out"]``.
    A gateway's list replaces ``[sandbox]``'s; default none.
    ``hidden``: paths the agent cannot see (an empty, read-only directory or file covers each). Default: the
    credentials of SSH, AWS, gcloud, Docker, Kubernetes and netrc in ``~``, and the Docker socket. A gateway's
    list adds to ``[sandbox]``'s: a gateway can only hide more. The state directory and the host's ``/run``
    are never visible, whatever this says.
    ``writable_cwd``: the working directory is writable (default true), unless it holds a home directory
    (``tf run`` started in ``~`` or ``/``): then it stays read-only and ``tf run`` says so.
    """

    writable: tuple[str, ...] | None = None
    hidden: tuple[str, ...] | None = None
    writable_cwd: bool | None = None

    def for_gateway(self, gateway: FsPolicy | None, where: str) -> dict[str, Any]:
        """The effective policy of a gateway (``self``: ``[sandbox]``), as the ``run`` reply carries it."""
        g = gateway or FsPolicy()
        hidden = self.hidden if self.hidden is not None else DEFAULT_HIDDEN
        return {"writable": list(g.writable if g.writable is not None else self.writable or ()),
                "hidden": list(dict.fromkeys((*hidden, *(g.hidden or ())))),
                "writable_cwd": next((v for v in (g.writable_cwd, self.writable_cwd) if v is not None), True),
                "where": where}

    def dump(self) -> dict[str, Any]:
        """The settings given (for config.toml)."""
        return {k: list(v) if isinstance(v, tuple) else v for k in KEYS if (v := getattr(self, k)) is not None}


def _beneath(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _paths(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise FsPolicyError(f"{key} must be a list of paths, got {value!r}", key)
    out = []
    for p in value:
        if not p.startswith(("/", "~/")):
            raise FsPolicyError(f"{key}: {p!r} is a relative path; give an absolute path or ~/...", key)
        norm = os.path.normpath(p) if p.startswith("/") else "~/" + os.path.normpath(p[2:])
        if norm.startswith("/") and not os.path.lexists(norm):
            raise FsPolicyError(f"{key}: {p} does not exist", key)
        out.append(norm)
    return tuple(dict.fromkeys(out))


def parse_fs(table: Mapping[str, Any], state: Path, inherited_hidden: Sequence[str] = ()) -> FsPolicy:
    """The policy keys of one table; ``state``: the state directory; ``inherited_hidden``: what ``[sandbox]``
    hides already (a gateway's writable path may not be under it either)."""
    writable = _paths(table["writable"], "writable") if "writable" in table else None
    hidden = _paths(table["hidden"], "hidden") if "hidden" in table else None
    cwd = table.get("writable_cwd")
    if cwd is not None and not isinstance(cwd, bool):
        raise FsPolicyError(f"writable_cwd must be true or false, got {cwd!r}", "writable_cwd")
    real_state = os.path.realpath(state)
    for h in hidden or ():
        real = os.path.realpath(h) if h.startswith("/") else h
        needed = next((n for n in _NEEDED if _beneath(n, real) or _beneath(n, h)), None)
        if needed:
            raise FsPolicyError(f"hidden: {h} would hide the agent's own command ({needed} is under it)", "hidden")
        own = next((o for o in _OWN if _beneath(o, real)), None)
        if own:
            raise FsPolicyError(f"hidden: {h} would cover the sandbox's own {own} (private to each sandbox)",
                                "hidden")
    for w in writable or ():
        real = os.path.realpath(w) if w.startswith("/") else w
        if real == "/":
            raise FsPolicyError("writable: / would make everything writable; list the directories instead", "writable")
        if _beneath(real, real_state) or _beneath(real_state, real):
            raise FsPolicyError(f"writable: {w} holds TrustFence's state directory, which the agent never sees",
                                "writable")
        cover = next((h for h in (*inherited_hidden, *(hidden or ())) if _beneath(w, h) or _beneath(real, h)), None)
        if cover:
            raise FsPolicyError(f"writable: {w} is under hidden path {cover}", "writable")
    return FsPolicy(writable, hidden, cwd)
