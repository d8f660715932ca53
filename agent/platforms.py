"""Platform templates for ``tf init --platform``: what an agent framework needs, as data, and the plan that
brings a host's configuration there.

A template is a TOML file in ``templates/`` (shipped in the package): ``[template]`` (description, default
gateway, enforcement level), ``[connectors.NAME]`` tables exactly as in config.toml (including ``env``, the
variables the platform's agents read their key from, which get a placeholder) and ``[permissions.NAME]``
(a preset of ``tf permissions preset`` plus ``allow``, extra actions allowed). It is validated whole at load,
by the same parser as config.toml, with file, line and reason.

``plan`` is pure: from the template and the configuration and permissions in force, the daemon operations
still needed, each with the words that say what it does. It only adds: a connector of the same name keeps its
settings and gains the template's missing variables and domains; a gateway's own permissions on a connector
or its own level (a rollout already past monitor) are kept and reported. Applying a plan and planning again
gives an empty plan.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from trustfence.agent import config as cfgmod
from trustfence.agent.config import Config, ConfigError, ConnectorConfig, Level
from trustfence.agent.presets import PRESETS, preset_permissions
from trustfence.policy import Permission, PolicyError
from trustfence.policy.model import validate_name
from trustfence.vault.dummy import ENV_VARS

__all__ = ["Grant", "Plan", "Step", "Template", "TemplateError", "known_platforms", "load_template",
           "parse_template", "plan"]


class TemplateError(ValueError):
    """An unknown platform, a template that does not validate, or one that cannot apply to this host."""


@dataclass(frozen=True, slots=True)
class Grant:
    """``[permissions.CONNECTOR]``: what the gateway may do there.

    ``preset``: one of ``PRESETS`` (``read-only``: every low-risk action of the catalogue); required.
    ``allow``: actions or patterns allowed on top (``["openai.chat.create"]``); left out, none.
    """

    connector: str
    preset: str
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Template:
    """One platform. ``gateway``: the gateway name used unless ``--gateway`` says otherwise; ``level``: the
    enforcement level a gateway without one of its own gets (``monitor``: the first step of a rollout)."""

    platform: str
    description: str
    gateway: str
    level: Level
    connectors: tuple[ConnectorConfig, ...]
    grants: tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One daemon operation (``op`` with ``args``, as ``tf`` sends it) and what it does, in words."""

    op: str
    args: dict[str, Any]
    says: str


@dataclass(frozen=True, slots=True)
class Plan:
    """``steps`` in order; ``kept``: what the template would set but the host already decided otherwise."""

    steps: tuple[Step, ...]
    kept: tuple[str, ...]


def _dir() -> Path:
    return Path(str(files("trustfence.agent") / "templates"))


def known_platforms() -> list[str]:
    return sorted(p.stem for p in _dir().glob("*.toml"))


def load_template(platform: str) -> Template:
    """The template of ``platform``; TemplateError naming the known ones when there is none."""
    known = known_platforms()
    if platform not in known:
        raise TemplateError(f"unknown platform {platform!r}; known: {', '.join(known)}")
    path = _dir() / f"{platform}.toml"
    return parse_template(path.read_text(), path, platform)


def parse_template(text: str, path: Path, platform: str) -> Template:
    """Validate a template whole; ConfigError (``file:line: reason``) for anything wrong in it."""
    cfg = cfgmod.parse_config(text, path, env={})  # [connectors.*] exactly as config.toml validates them
    data = tomllib.loads(text)

    def fail(table: str, reason: str) -> ConfigError:
        return ConfigError(path, cfgmod._line_of(text, rf"\[{table}\]"), f"[{table}] {reason}")

    head = data.get("template", {})
    level = head.get("level")
    if level not in cfgmod.LEVELS:
        raise fail("template", f"level must be one of {', '.join(cfgmod.LEVELS)}, got {level!r}")
    try:
        gateway = validate_name("gateway", str(head.get("gateway", "")))
    except PolicyError as e:
        raise fail("template", str(e)) from None
    grants = []
    names = {c.name for c in cfg.connectors}
    for name, g in data.get("permissions", {}).items():
        table = f"permissions.{name}"
        if name not in names:
            raise fail(table, f"no [connectors.{name}] in this template")
        if not isinstance(g, dict) or g.get("preset") not in PRESETS:
            raise fail(table, f"preset must be one of {', '.join(PRESETS)}")
        allow = g.get("allow", [])
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise fail(table, f"allow must be a list of actions, got {allow!r}")
        grants.append(Grant(name, g["preset"], tuple(allow)))
    t = Template(platform, str(head.get("description", "")), gateway, cast(Level, level), cfg.connectors,
                 tuple(grants))
    try:  # every action named exists in its connector's catalogue: the plan on an empty host validates
        plan(t, gateway, Config(), ())
    except TemplateError as e:
        raise ConfigError(path, None, str(e)) from None
    return t


def _merged(old: ConnectorConfig, new: ConnectorConfig) -> ConnectorConfig:
    """``old`` with ``new``'s domains and variables it lacks; everything else (credential, ports) stays."""
    domains = old.domains
    if new.domains:
        base = old.domains or old.build().hosts  # a type's default hosts stay covered
        domains = base + tuple(d for d in new.domains if d not in base)
    env = old.env or ENV_VARS.get(old.type, ())  # no env: the SDKs' own variables
    missing = tuple(e for e in new.env if e not in env)
    return replace(old, domains=domains if domains != old.build().hosts else old.domains,
                   env=env + missing if missing else old.env)


def _describe(c: ConnectorConfig) -> str:
    hosts = ", ".join(c.build().hosts)
    env = c.env or ENV_VARS.get(c.type, ())
    return f"{c.type}: {hosts}" + (f"; placeholder in {', '.join(env)}" if env else "")


def _connector_steps(t: Template, cfg: Config) -> tuple[list[Step], Config]:
    steps = []
    existing = {c.name: c for c in cfg.connectors}
    for want in t.connectors:
        old = existing.get(want.name)
        if old is not None and old.type != want.type:
            raise TemplateError(f"connector {want.name} exists with type {old.type}; the {t.platform} template "
                                f"needs type {want.type}: remove or rename it first")
        new = want if old is None else _merged(old, want)
        if new == old:
            continue
        cfg = cfgmod.with_connector(cfg, new)
        args = {"type": new.type, "name": new.name, "domains": list(new.domains), "urls": list(new.urls),
                "ports": list(new.ports), "base_path": new.base_path, "env": list(new.env)}
        says = f"{'add' if old is None else 'extend'} connector {new.name} ({_describe(new)})"
        steps.append(Step("connector.add", args, says))
    try:
        cfg.connector_set()
    except ValueError as e:
        raise TemplateError(f"the {t.platform} template's connectors do not fit this host: {e}") from None
    return steps, cfg


def plan(t: Template, gateway: str, cfg: Config, perms: tuple[Permission, ...]) -> Plan:
    """The operations that bring ``cfg`` and ``perms`` to what ``t`` asks for ``gateway``."""
    steps, cfg = _connector_steps(t, cfg)
    connectors = cfg.connector_set()
    kept = []
    for g in t.grants:
        conn = connectors.by_name[g.connector]
        try:
            extra = tuple(cfgmod.check_permission({"gateway": gateway, "connector": g.connector, "action": a,
                                                   "decision": "allow"}, connectors) for a in g.allow)
        except PolicyError as e:
            raise TemplateError(f"[permissions.{g.connector}] {e}") from None
        preset = preset_permissions(gateway, conn, g.preset)
        want = {(p.action, p.decision) for p in (*preset, *extra)}
        have = {(p.action, p.decision) for p in perms if (p.gateway, p.connector) == (gateway, g.connector)}
        if have == want:
            continue
        if not have <= want:
            kept.append(f"{gateway} on {g.connector} keeps its own {len(have)} permission(s) (the template's: "
                        f"tf permissions preset --gateway {gateway} --connector {g.connector} {g.preset})")
            continue
        if not have:
            steps.append(Step("permissions.preset", {"gateway": gateway, "connector": g.connector,
                                                     "preset": g.preset},
                               f"give {gateway} the {g.preset} preset on {g.connector} "
                               f"({len(preset)} permission(s))"))
            have = {(p.action, p.decision) for p in preset}
        for action, decision in sorted(want - have):
            steps.append(Step("permissions.set", {"gateway": gateway, "connector": g.connector, "action": action,
                                                  "decision": decision}, f"{decision} {gateway} {action} on "
                                                                         f"{g.connector}"))
    own = cfg.gateways.get(gateway)
    if own is None or own.level is None:
        steps.append(Step("gateway.level", {"name": gateway, "level": t.level},
                          f"set gateway {gateway} to level {t.level}"))
    elif own.level != t.level:
        kept.append(f"gateway {gateway} keeps level {own.level} (the template starts a rollout at {t.level})")
    return Plan(tuple(steps), tuple(kept))
