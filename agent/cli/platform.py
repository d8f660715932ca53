"""``tf init --platform NAME``: a platform template applied through the daemon's own operations, so every
change is validated (and permission changes audited) exactly as the matching ``tf`` command would do it."""

from __future__ import annotations

from pathlib import Path

from trustfence.agent.cli.common import CliError, client, out, require_root
from trustfence.agent.paths import paths

__all__ = ["init_platform", "init_state"]


def init_platform(platform: str, gateway: str | None, dry_run: bool) -> None:
    """Plan against the configuration in force, then apply (or, with ``dry_run``, only show) the plan."""
    from trustfence.agent import config as cfgmod
    from trustfence.agent.config import Config, ConfigError
    from trustfence.agent.platforms import TemplateError, load_template, plan
    from trustfence.policy import PolicyError
    from trustfence.policy.model import validate_name

    try:  # an unknown platform or a bad name is refused before anything is written
        t = load_template(platform)
        name = validate_name("gateway", gateway or t.gateway)
    except (TemplateError, ConfigError, PolicyError) as e:
        raise CliError(str(e)) from None
    p = paths()
    if not dry_run:
        require_root("tf init")
        init_state()
    try:
        cfg = cfgmod.load_config(p.config) if p.config.exists() else Config()
        perms = cfgmod.load_permissions(p.permissions, cfg.connector_set())
        todo = plan(t, name, cfg, perms)
    except (TemplateError, ConfigError, PolicyError, ValueError) as e:
        raise CliError(str(e)) from None
    out.print(f"{t.platform}: {t.description} (gateway {name})", highlight=False, markup=False)
    for k in todo.kept:
        out.print(f"  kept: {k}", highlight=False, markup=False)
    if not todo.steps:
        out.print("nothing to change", highlight=False)
        return
    if dry_run:
        for s in todo.steps:
            out.print(f"  would: {s.says}", highlight=False, markup=False)
        out.print(f"{len(todo.steps)} change(s); nothing written (--dry-run)", highlight=False)
        return
    with client() as c:
        for s in todo.steps:
            c.call(s.op, **s.args)
            out.print(f"  done: {s.says}", highlight=False, markup=False)
    out.print(f"{len(todo.steps)} change(s) made (tf audit shows the permission changes). Next: sudo tf run "
              f"--name {name} -- YOUR-AGENT, read tf logs, then raise the level: sudo tf gateway level {name} "
              "soft_enforce", highlight=False, markup=False)


def init_state() -> Path:
    """``tf init`` itself: the state directory (created where missing, each creation printed)."""
    from trustfence.agent.setup import ensure_state
    from trustfence.vault import VaultError

    try:
        p = paths()
        created = ensure_state(p)
    except VaultError as e:
        raise CliError(str(e)) from None
    for c in created:
        out.print(f"created {c}", highlight=False)
    return p.home
