"""What a configuration change changed, as the audit log records it: the enforcement-relevant settings of
the old and new configuration, and only the parts that differ. Secrets never enter it: a Slack webhook URL and
signing secret are recorded as set or not, a credential by whether one is required (its fingerprint is in the
vault's status)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from trustfence.agent.config import Config

__all__ = ["config_changes", "config_summary"]


def config_summary(cfg: Config) -> dict[str, Any]:
    """The settings that decide what agents may do, by area."""
    rl, ap = cfg.rate_limit, cfg.approvals
    return {
        "connectors": {c.name: {"type": c.type, "domains": list(c.domains), "ports": list(c.ports),
                                "urls": list(c.urls), "base_path": c.base_path, "credential": c.credential,
                                "allow_list": c.allow_list, "host_service": c.host_service}
                       for c in cfg.connectors},
        "level": cfg.level,
        "gateways": {n: {"level": g.level, "environment": g.environment} for n, g in cfg.gateways.items()},
        "rate_limit": {"per_minute": rl.per_minute, "gateways": dict(rl.gateways),
                       "actions": [asdict(a) for a in rl.actions]},
        "approvals": {"timeout": ap.timeout, "per_gateway": ap.per_gateway, "notify_url_set": bool(ap.notify_url),
                      "slack_buttons": bool(ap.slack_signing_secret)},
        "dashboard": {"org_name": cfg.dashboard.org_name},
        "filesystem": {"writable": [str(p) for p in cfg.fs.writable or ()],
                       "hidden": [str(p) for p in cfg.fs.hidden or ()]},
    }


def config_changes(before: Config, after: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) restricted to the areas and entries that differ."""
    old, new = config_summary(before), config_summary(after)
    b: dict[str, Any] = {}
    a: dict[str, Any] = {}
    for area in old:
        if old[area] == new[area]:
            continue
        if isinstance(old[area], dict) and isinstance(new[area], dict) and area in ("connectors", "gateways"):
            keys = {k for k in old[area].keys() | new[area].keys() if old[area].get(k) != new[area].get(k)}
            b[area] = {k: old[area].get(k) for k in sorted(keys)}
            a[area] = {k: new[area].get(k) for k in sorted(keys)}
        else:
            b[area], a[area] = old[area], new[area]
    return b, a
