"""Operations: the settings an owner changes from the dashboard's Settings page (``[approvals]``'s timeout,
per-gateway limit, Slack webhook and signing secret; ``[dashboard] org_name``), written to config.toml like
every configuration change: validated whole, audited (secrets only as set or not), then running."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trustfence.agent import config as cfgmod
from trustfence.agent.ops import OpError, Reply, op

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["APPROVAL_KEYS", "settings_show", "settings_update"]

APPROVAL_KEYS = ("timeout", "per_gateway", "notify_url", "slack_signing_secret")
"""The ``[approvals]`` settings this operation changes; a key left out of the request keeps its value."""


def shown(cfg: cfgmod.Config) -> dict[str, Any]:
    """The settings as a reply carries them: secrets only as set or not."""
    ap = cfg.approvals
    return {"timeout": ap.timeout, "per_gateway": ap.per_gateway, "notify_url_set": bool(ap.notify_url),
            "slack_signing_secret_set": bool(ap.slack_signing_secret), "org_name": cfg.dashboard.org_name}


@op("settings.show", read=True)
async def settings_show(d: Daemon, req: dict[str, Any]) -> Reply:
    return shown(d.config)


@op("settings.update")
async def settings_update(d: Daemon, req: dict[str, Any]) -> Reply:
    """Change the settings named in the request; the whole configuration is validated before it is written."""
    cfg = d.reread_config()
    approvals = replace(cfg.approvals, **{k: req[k] for k in APPROVAL_KEYS if k in req})
    dashboard = replace(cfg.dashboard, org_name=req["org_name"]) if "org_name" in req else cfg.dashboard
    text = cfgmod.dump_config(replace(cfg, approvals=approvals, dashboard=dashboard))
    who = f"uid {req['uid']}" + (f" ({req['by']})" if req.get("by") else "")
    try:
        d.apply_config(text, who, "settings changed")
    except cfgmod.ConfigError as e:  # the reason names the setting, never a secret's value
        raise OpError(e.reason) from None
    return shown(d.config)
