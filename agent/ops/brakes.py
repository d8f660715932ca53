"""Operations: the brakes — kill switches and per-gateway enforcement levels — and the gateways they apply to."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trustfence.agent import config as cfgmod
from trustfence.agent.brakes import BrakeError
from trustfence.agent.ops import OpError, Reply, op
from trustfence.policy.model import validate_name

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon


@op("killswitch.activate")
async def killswitch_activate(d: Daemon, req: dict[str, Any]) -> Reply:
    try:
        done = d.kill_switches.activate(str(req.get("scope") or "all"), str(req.get("reason") or ""),
                                        str(req.get("by") or ""), d.known_gateways(), d.state.connectors.by_name)
    except BrakeError as e:
        raise OpError(str(e), e.code) from None
    if d.workers is not None:  # what the worker processes closed too
        done["closed"] += await d.workers.closed(done["scope"])
    d.audit.append(f"uid {req['uid']} ({req.get('by') or '?'})", "kill switch activated", None, done)
    return done


@op("killswitch.deactivate")
async def killswitch_deactivate(d: Daemon, req: dict[str, Any]) -> Reply:
    try:
        done = d.kill_switches.deactivate(str(req.get("scope") or "all"), str(req.get("reason") or ""),
                                          str(req.get("by") or ""))
    except BrakeError as e:
        raise OpError(str(e), e.code) from None
    d.audit.append(f"uid {req['uid']} ({req.get('by') or '?'})", "kill switch deactivated",
                   {"scope": done["scope"]}, {"reason": str(req.get("reason") or "")})
    return done


@op("killswitch.status", read=True)
async def killswitch_status(d: Daemon, req: dict[str, Any]) -> Reply:
    return d.kill_switches.status()


@op("gateway.level")
async def gateway_level(d: Daemon, req: dict[str, Any]) -> Reply:
    """Set a gateway's enforcement level in config.toml. Any valid name: a level may be set before it runs."""
    name = validate_name("gateway", str(req.get("name") or ""))
    level = req.get("level")
    if level not in cfgmod.LEVELS:
        raise OpError(f"level must be one of {', '.join(cfgmod.LEVELS)}, got {level!r}")
    cfg = d.reread_config()
    old = cfg.gateways.get(name, cfgmod.GatewayConfig())
    gateways = {**cfg.gateways, name: replace(old, level=level)}
    d.apply_config(cfgmod.dump_config(replace(cfg, gateways=gateways)), f"uid {req['uid']}",
                   f"gateway {name} level {level}")
    return {"gateway": name, "level": level, "was": old.level or cfg.level}


@op("gateway.list", read=True)
async def gateway_list(d: Daemon, req: dict[str, Any]) -> Reply:
    running = {s.gateway for s in d.sandboxes.values()}
    rl = d.config.rate_limit
    rows = []
    for name in sorted(d.known_gateways()):
        switch = d.state.switches.blocking(name)
        rows.append({"name": name, "level": d.state.level_of(name), "running": name in running,
                     "per_minute": rl.gateways.get(name, rl.per_minute),
                     "kill_switch": switch.describe() if switch else ""})
    return {"gateways": rows, "default_level": d.config.level}
