"""Operations: connectors (which hosts mean what) and the credential vault behind them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trustfence.agent import config as cfgmod
from trustfence.agent.config import ConnectorConfig
from trustfence.agent.ops import OpError, Reply, op
from trustfence.vault import InjectionSpec, Vault

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon


@op("connector.list", read=True)
async def connector_list(d: Daemon, req: dict[str, Any]) -> Reply:
    out = []
    vault = d.state.credentials.vault
    for c in d.config.connectors:
        conn = d.state.connectors.by_name[c.name]
        entry = vault.find(c.name) if vault is not None else None
        credential = (entry.fingerprint if entry else "missing") if c.credential else (
            entry.fingerprint if entry else "")
        out.append({"name": c.name, "type": c.type, "hosts": list(conn.hosts), "actions": len(conn.actions),
                    "credential": credential, "credential_gateways": list(entry.gateways) if entry else [],
                    "host_service": c.host_service, "sandbox_port": c.sandbox_port or None})
    return {"connectors": out, "vault_error": d.state.credentials.error}


@op("connector.add")
async def connector_add(d: Daemon, req: dict[str, Any]) -> Reply:
    ports = req.get("ports") or []
    if not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
        raise OpError(f"ports must be port numbers, got {ports!r}")
    token = req.get("token")
    if token is None and any(req.get(k) for k in ("gateways", "header", "prefix", "query_param")):
        raise OpError("--gateways, --header, --prefix and --query-param describe a credential: give its token too")
    cfg = d.reread_config()
    name, type_name = str(req.get("name") or req["type"]), str(req["type"])
    old = next((c for c in cfg.connectors if c.name == name), None)
    conn = ConnectorConfig(name, type_name, tuple(str(x).lower() for x in req.get("domains") or ()),
                           tuple(sorted(set(ports))), tuple(str(u) for u in req.get("urls") or ()),
                           str(req.get("base_path") or ""),
                           credential=token is not None or (old is not None and old.credential),
                           env=tuple(str(e) for e in req.get("env") or (old.env if old else ())),
                           allow_list=str(req.get("allow_list") or (old.allow_list if old and old.type == type_name else "")),
                           host_service=str(req.get("host_service") or ""), sandbox_port=_port(req.get("sandbox_port")))
    text = cfgmod.dump_config(cfgmod.with_connector(cfg, conn))
    who = f"uid {req['uid']}" + (f" ({req['by']})" if req.get("by") else "")  # by: the dashboard's user
    what = f"connector {name} {'updated' if old else 'added'}"
    if token is None:
        d.apply_config(text, who, what)
        return {"connector": conn.name}
    cfgmod.parse_config(text, d.paths.config)  # the configuration is valid before anything is sealed
    built = conn.build()
    hosts = [h for h in built.hosts if h not in built.no_credential_hosts]
    gateways, inject = _scope(d, name, type_name, req)
    vault = d.vault.put(d.state.credentials, name, type_name, hosts, str(token), gateways, inject)
    entry = vault.get(name)
    _apply_config_and_vault(d, text, vault, who, f"{what}, credential {entry.fingerprint} sealed")
    return {"connector": conn.name, "fingerprint": entry.fingerprint, "version": entry.version}


def _scope(d: Daemon, name: str, type_name: str, req: dict[str, Any]) -> tuple[list[str], InjectionSpec | None]:
    """The gateways and injection of a credential being sealed. A replaced credential keeps its own unless
    they are given: a new token never silently widens who may use it (``gateways = ["all"]`` widens it)."""
    given = [str(g) for g in req.get("gateways") or ()]
    inject = d.vault.injection(type_name, req)
    vault = d.state.credentials.vault
    was = vault.find(name) if vault is not None else None
    if was is None or was.type != type_name:
        return ([] if given == ["all"] else given), inject
    gateways = [] if given == ["all"] else given or list(was.gateways)
    return gateways, inject if inject is not None else was.inject


def _port(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise OpError(f"sandbox port must be a port number, got {value!r}")
    return value


@op("connector.remove")
async def connector_remove(d: Daemon, req: dict[str, Any]) -> Reply:
    name = str(req["name"])
    cfg = d.reread_config()
    if name not in {c.name for c in cfg.connectors}:
        raise OpError(f"unknown connector {name!r}; known: {', '.join(c.name for c in cfg.connectors) or 'none'}")
    users = [p for p in d.state.policy.permissions if p.connector == name]
    if users:
        raise OpError(f"{len(users)} permission(s) still name connector {name}; remove them first "
                      f"(tf permissions list --connector {name})")
    text = cfgmod.dump_config(replace(cfg, connectors=tuple(c for c in cfg.connectors if c.name != name)))
    running = d.state.credentials.vault
    if running is not None and name in running:
        vault = running.copy()
        vault.remove(name)
        _apply_config_and_vault(d, text, vault, f"uid {req['uid']}", f"connector {name} removed, its credential too")
    else:
        d.apply_config(text, f"uid {req['uid']}", f"connector {name} removed")
    return {"removed": name}


def _apply_config_and_vault(d: Daemon, text: str, vault: Vault, who: str, what: str) -> None:
    """Save the changed vault, then the configuration; if that fails, the running vault's file goes back,
    so file and configuration always match. Then both run."""
    running = d.state.credentials.vault
    assert running is not None  # a changed vault was copied from the running one
    vault.save()
    try:
        d.apply_config(text, who, what)
    except BaseException:
        running.save()
        raise
    d.state.credentials = replace(d.state.credentials, vault=vault)


@op("vault.status")
async def vault_status(d: Daemon, req: dict[str, Any]) -> Reply:
    return d.vault.status(d.state.credentials)


@op("vault.rotate")
async def vault_rotate(d: Daemon, req: dict[str, Any]) -> Reply:
    old_id = d.vault.key.key_id if d.vault.key else None
    d.audit.append(f"uid {req['uid']}", "vault key rotated", {"key_id": old_id}, None)  # before it happens
    vault = await asyncio.to_thread(d.vault.rotate, d.state.credentials)
    d.state.credentials = replace(d.state.credentials, vault=vault)
    return {"old_key_id": old_id, "key_id": vault.key.key_id, "entries": len(vault)}
