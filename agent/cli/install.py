"""``tf install [--systemd] [--dry-run] [--root DIR]``: make this host (or a tree) ready for the daemon."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from trustfence.agent.cli.common import CliError, out, require_root

__all__ = ["install"]


def _tf_command() -> str:
    """The ``tf`` next to the running interpreter (a venv's, or the package's under /opt/trustfence)."""
    tf = Path(sys.executable).with_name("tf")
    if not tf.is_file():
        raise CliError(f"no tf command next to {sys.executable}; install the package (pip install .) first")
    return str(tf)


def _no_systemd_message() -> str:
    try:
        pid1 = Path("/proc/1/comm").read_text().strip()
    except OSError:
        pid1 = "unknown"
    return (f"this host does not run systemd (PID 1 is {pid1}); nothing was changed. Instead: sudo tf install "
            "(the trustfence group, the state directory and the vault key), then run 'tf daemon' as root under "
            "this host's service manager or supervisor, or let 'sudo tf run' start it on demand. To write the "
            "unit into a tree for a systemd host: tf install --systemd --root DIR")


def install(
    systemd: Annotated[bool, typer.Option(
        "--systemd", help="Also write, enable and start the hardened unit; the vault key as an encrypted "
                          "systemd credential where systemd-creds exists.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")] = False,
    root: Annotated[Optional[Path], typer.Option(
        "--root", help="Install into the tree at DIR instead of this host (nothing is started).")] = None,
) -> None:
    """Prepare this host for the daemon: group, state directory, vault key; with --systemd, the unit too."""
    from trustfence.agent.install import InstallError, Target, plan, systemd_running

    target = Target(root.absolute() if root is not None else Path("/"))
    if systemd and target.live and not systemd_running():
        raise CliError(_no_systemd_message())
    if not dry_run:
        require_root("tf install")
    try:
        changes = plan(target, _tf_command(), systemd)
        if not changes:
            out.print(f"nothing to change: {target.root} is already installed", highlight=False)
            return
        for c in changes:
            if dry_run:
                out.print(f"would: {c.says}", highlight=False, markup=False)
            else:
                c.apply()
                out.print(f"done: {c.says}", highlight=False, markup=False)
    except (InstallError, OSError) as e:
        raise CliError(f"install stopped: {e}") from None
    if dry_run:
        out.print(f"{len(changes)} change(s); nothing written (--dry-run)", highlight=False)
