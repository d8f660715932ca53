"""``tf daemon``: owns the sandboxes, the embedded enforcer, the DuckDB file and the Unix-socket API.

One per state directory (a lock file enforces it). Everything runs on one asyncio loop; blocking kernel
and database work goes to threads.
"""

from __future__ import annotations

import asyncio
import fcntl
import glob
import grp
import json
import logging
import os
import pwd
import signal
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from datetime import datetime
from typing import Any

from trustfence.agent import config as cfgmod
from trustfence.agent.config import ConfigError, Config, ConnectorConfig
from trustfence.agent.credentials import CredentialStore
from trustfence.agent.notify import Notifier
from trustfence.agent.brakes import BrakeError, KillSwitches, load_switches
from trustfence.agent.paths import Paths
from trustfence.agent.sandbox import SandboxError, SandboxManager, SandboxSpec
from trustfence.agent.sandbox import cgroup as cgroups
from trustfence.agent.setup import ensure_state
from trustfence.bpf.guard import Guard, GuardError
from trustfence.agent import policyfiles
from trustfence.agent.audit import AuditLog
from trustfence.policy import CompiledPolicy, Permission, PolicyError, compile_policy, dump_policies
from trustfence.policy.model import validate_name
from trustfence.proxy import Enforcer, EnforcerState, Gateway
from trustfence.proxy.holds import ApprovalError
from trustfence.proxy.master import EnforcerError
from trustfence.proxy.upstream import install_resolver, upstream_bundle
from trustfence.store import Store
from trustfence.vault import STRIP_NAMES, Vault, VaultError, dummy_env, placeholder

__all__ = ["AlreadyRunning", "Daemon"]

log = logging.getLogger("trustfence.daemon")

Reply = dict[str, Any]


class AlreadyRunning(RuntimeError):
    pass


class OpError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _row(p: Permission) -> dict[str, str]:
    return {"gateway": p.gateway, "connector": p.connector, "action": p.action, "decision": p.decision}


def _in_group(uid: int, group: str) -> bool:
    """Whether ``uid`` may answer an approval for ``group`` (an approver role is a Unix group; none: anyone who
    can reach the socket, i.e. root and the trustfence group)."""
    if not group:
        return True
    try:
        g = grp.getgrnam(group)
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_name in g.gr_mem or user.pw_gid == g.gr_gid


class Daemon:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.stop = asyncio.Event()
        self.sandboxes: dict[str, SandboxSpec] = {}
        self._lock_file: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        self.paths.home.mkdir(parents=True, exist_ok=True)
        f = open(self.paths.lock, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise AlreadyRunning(f"a TrustFence daemon is already running for {self.paths.home} (pid {pid})")
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f

    async def serve(self) -> None:
        self._acquire_lock()
        ensure_state(self.paths)
        self.config = cfgmod.load_config(self.paths.config)
        connectors = self.config.connector_set()
        policy = policyfiles.load(self.paths, connectors)
        self._stamp = policyfiles.stamp(self.paths)
        self.audit = AuditLog(self.paths.audit)
        switches = load_switches(self.paths.kill_switches)
        self.store = Store(self.paths.database, self.config.queue_max)
        self.vault = CredentialStore(self.paths)
        self.vault.open_key()
        self.state = EnforcerState(store=self.store, connectors=connectors, policy=policy,
                                   transparent_port=self.config.transparent_port,
                                   open_ports=self.config.open_ports(),
                                   credentials=self.vault.load(self.config))
        self.state.switches = switches
        self.kill_switches = KillSwitches(self.paths.kill_switches, self.state, lambda s: self.enforcer.cut(s))
        self._apply_brakes(self.config)
        c = self.config
        self.manager = SandboxManager(c.tag, c.subnet_pool, self.paths.sandboxes,
                                      (c.proxy_port, c.transparent_port, c.dns_port), ipv6=c.ipv6)
        left = await asyncio.to_thread(self.manager.collect_leftovers)
        if left:
            log.warning("collected %d leftover sandbox(es): %s", len(left), ", ".join(left))
        self.guard: Guard | None = None
        self.guard_error = ""
        try:
            self.guard = await asyncio.to_thread(Guard)  # compile once; attach per sandbox
            self.state.origins = self.guard.origin
        except GuardError as e:
            self.guard_error = str(e)
            log.error("eBPF lock unavailable; sandboxes need --nftables-only: %s", e)
        loop = asyncio.get_running_loop()
        install_resolver(loop, c.resolve)
        self.enforcer = Enforcer(self.state, self.paths.ca_dir,
                                 upstream_bundle(c.extra_ca, self.paths.upstream_bundle))
        master_task = asyncio.create_task(self.enforcer.run())
        watcher = asyncio.create_task(self._watch_policy_files())
        await self.enforcer.started.wait()
        self.paths.socket.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self._connection, path=str(self.paths.socket))
        os.chmod(self.paths.socket, 0o660)
        try:
            os.chown(self.paths.socket, 0, grp.getgrnam("trustfence").gr_gid)
        except KeyError:
            pass  # no trustfence group: root only
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        log.info("daemon ready (pid %d, state %s, tag %s)", os.getpid(), self.paths.home, c.tag)
        try:
            await self.stop.wait()
        finally:
            server.close()
            watcher.cancel()
            for spec in list(self.sandboxes.values()):
                await self._teardown(spec)
            self.enforcer.shutdown()
            await asyncio.wait_for(master_task, 10)
            self.store.close()
            self.paths.socket.unlink(missing_ok=True)
            log.info("daemon stopped")

    # -- connections --------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = _peer_uid(writer.get_extra_info("socket"))
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    op = str(req.pop("op"))
                except (ValueError, KeyError, AttributeError):
                    await self._send(writer, {"ok": False, "error": "malformed request", "code": 2})
                    continue
                if op == "run":
                    await self._run(req, uid, reader, writer)
                    return
                handler = self._ops.get(op)
                try:
                    if handler is None:
                        raise OpError(f"unknown operation {op!r}")
                    if op not in self._read_ops and uid != 0:
                        raise OpError(f"{op} needs root (uid 0); you are uid {uid}")
                    reply = {"ok": True, **await handler(self, {**req, "uid": uid})}
                except (OpError, ConfigError, PolicyError, VaultError) as e:
                    reply = {"ok": False, "error": str(e), "code": getattr(e, "code", 2)}
                except Exception as e:  # noqa: BLE001 - answer, never leave the CLI hanging
                    log.exception("operation %s failed", op)
                    reply = {"ok": False, "error": f"internal error: {e}", "code": 2}
                await self._send(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
        writer.write(json.dumps(reply, default=_jsonable).encode() + b"\n")
        await writer.drain()

    # -- run: the sandbox lives as long as this connection ------------------------------------------
    async def _run(self, req: dict[str, Any], uid: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        if uid != 0:
            await self._send(writer, {"ok": False, "error": "tf run needs root: sudo tf run ...", "code": 2})
            return
        try:
            gateway = validate_name("gateway", str(req.get("gateway", "")))
            agent_uid, agent_gid = int(req["uid"]), int(req["gid"])
            if agent_uid == 0:
                raise OpError("the agent never runs as uid 0: pass --user or run through sudo")
            if self.guard is None and not req.get("nftables_only"):
                raise OpError(f"the eBPF lock is unavailable ({self.guard_error}); fix it (tf doctor) or pass "
                              "--nftables-only to rely on nftables alone")
            join = self._waiting_agent(req, writer)
            spec = await asyncio.to_thread(self.manager.create, gateway, agent_uid, agent_gid, join)
        except (PolicyError, OpError, SandboxError, KeyError, ValueError) as e:
            await self._send(writer, {"ok": False, "error": str(e), "code": 2})
            return
        self.sandboxes[spec.id] = spec
        try:
            self.state.gateways[spec.agent_addr] = Gateway(gateway, spec.name, spec.agent_addr, spec.host_addr)
            await self._lock_and_listen(spec)
            await self._send(writer, {"ok": True, "sandbox": self._describe(spec), "env": self._agent_env(spec),
                                      "unset": sorted(STRIP_NAMES), "netns": spec.netns,
                                      "ca_overlays": self._ca_overlays(), "ca_bundle": str(self.paths.agent_bundle),
                                      "cgroup": str(cgroups.path_of(spec.name)), "joined": join is not None})
            log.info("sandbox %s up for gateway %s (agent %s)", spec.name, gateway, spec.agent_addr)
            line = await reader.readline()  # {"op": "exited", ...} or EOF when the CLI dies
            exited = json.loads(line) if line else {}
            log.info("sandbox %s: agent exited (%s)", spec.name, exited.get("code", "connection closed"))
        except (EnforcerError, GuardError, OSError, ValueError) as e:
            log.error("sandbox %s failed: %s", spec.name, e)
            try:
                await self._send(writer, {"ok": False, "error": str(e), "code": 2})
            except ConnectionError:
                pass
        finally:
            await self._teardown(spec)
        try:
            await self._send(writer, {"ok": True})
        except ConnectionError:
            pass

    @staticmethod
    def _waiting_agent(req: dict[str, Any], writer: asyncio.StreamWriter) -> int | None:
        """The process the CLI forked to become the agent, moved into the cgroup while the sandbox is built.
        Only a child of the caller itself: whatever is in the cgroup is killed with the sandbox."""
        if req.get("pid") is None:
            return None
        pid = int(req["pid"])
        creds = writer.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                            struct.calcsize("3i"))
        if pid <= 1 or cgroups.parent_of(pid) != struct.unpack("3i", creds)[0]:
            raise OpError(f"process {pid} is not a child of the caller")
        return pid

    async def _lock_and_listen(self, spec: SandboxSpec) -> None:
        """Attach the eBPF lock and open the enforcer's listeners at once; raise the first failure once both
        are done (teardown then closes whatever was opened)."""
        c = self.config

        async def lock() -> None:
            if self.guard is not None:
                await asyncio.to_thread(self.guard.attach, cgroups.path_of(spec.name), spec.host_addr,
                                        c.proxy_port, c.transparent_port, c.dns_port)

        listen = self.enforcer.listen(spec.name, [
            f"regular@{spec.host_addr}:{c.proxy_port}",
            f"transparent@{spec.host_addr}:{c.transparent_port}",
            f"dns@{spec.host_addr}:{c.dns_port}",
        ])
        for result in await asyncio.gather(lock(), listen, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result

    async def _teardown(self, spec: SandboxSpec) -> None:
        if self.sandboxes.pop(spec.id, None) is None:
            return
        self.state.gateways.pop(spec.agent_addr, None)
        await self.enforcer.unlisten(spec.name)
        path = cgroups.path_of(spec.name)
        cg = Guard.cgroup_id(path) if path.exists() else None
        try:
            await asyncio.to_thread(self.manager.destroy, spec)
        except SandboxError as e:
            log.error("%s", e)
        if self.guard is not None and cg is not None:
            self.guard.forget(cg)
        log.info("sandbox %s removed", spec.name)

    def _describe(self, spec: SandboxSpec) -> dict[str, Any]:
        locked = self.guard is not None
        return {"name": spec.name, "gateway": spec.gateway, "agent_addr": spec.agent_addr,
                "enforcer_addr": spec.host_addr, "uid": spec.uid, "ebpf": locked,
                "counters": self.guard.counters(cgroups.path_of(spec.name)) if self.guard else {}}

    def _agent_env(self, spec: SandboxSpec) -> dict[str, str]:
        proxy = f"http://{spec.host_addr}:{self.config.proxy_port}"
        bundle, ca = str(self.paths.agent_bundle), str(self.paths.ca_cert)
        env = {k: proxy for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
        env |= {k: "localhost,127.0.0.1" for k in ("NO_PROXY", "no_proxy")}
        env |= {k: bundle for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
                                    "GIT_SSL_CAINFO")}
        env |= {"NODE_EXTRA_CA_CERTS": ca, "TF_GATEWAY": spec.gateway, "TF_SANDBOX": spec.name,
                "TF_SANDBOX_HOME": str(self.manager.home_dir(spec))}
        return env | self._placeholders()

    def _ca_overlays(self) -> list[str]:
        """The CA bundle files, as found now, that the agent's own bundle covers inside its sandbox."""
        found = {os.path.realpath(p) for pattern in self.config.ca_overlays for p in glob.glob(pattern)}
        return sorted(p for p in found if os.path.isfile(p) and p != str(self.paths.agent_bundle))

    def _placeholders(self) -> dict[str, str]:
        """A worthless, well-shaped key in each configured connector's variables: its SDK starts, and the
        enforcer swaps in the real one after an allow."""
        env: dict[str, str] = {}
        for c in self.config.connectors:
            if c.env:
                env |= {name: placeholder(c.type) for name in c.env}
            else:
                env |= dummy_env([c.type])
        return env

    # -- operations ---------------------------------------------------------------------------------
    async def op_ping(self, req: dict[str, Any]) -> Reply:
        return {"pid": os.getpid(), "home": str(self.paths.home), "default_user": self.config.default_user}

    async def op_stop(self, req: dict[str, Any]) -> Reply:
        asyncio.get_running_loop().call_later(0.05, self.stop.set)
        return {"pid": os.getpid()}

    async def op_status(self, req: dict[str, Any]) -> Reply:
        n = await asyncio.to_thread(self.store.query, "count")
        return {
            "pid": os.getpid(),
            "home": str(self.paths.home),
            "tag": self.config.tag,
            "sandboxes": [self._describe(s) for s in self.sandboxes.values()],
            "connectors": [c.name for c in self.config.connectors],
            "permissions": len(self.state.policy.permissions),
            "kill_switches": self.state.switches.to_json(),
            "ebpf": "loaded" if self.guard else f"unavailable: {self.guard_error}",
            "traffic_rows": n[0]["n"],
        }

    async def op_logs(self, req: dict[str, Any]) -> Reply:
        rows = await asyncio.to_thread(self.store.query, "recent", limit=int(req.get("limit", 50)),
                                       gateway=req.get("gateway"), after_seq=int(req.get("after_seq", 0)))
        return {"rows": [{k: _jsonable(v) for k, v in r.items()} for r in rows]}

    async def op_connector_list(self, req: dict[str, Any]) -> Reply:
        out = []
        vault = self.state.credentials.vault
        for c in self.config.connectors:
            conn = self.state.connectors.by_name[c.name]
            entry = vault.find(c.name) if vault is not None else None
            credential = (entry.fingerprint if entry else "missing") if c.credential else (
                entry.fingerprint if entry else "")
            out.append({"name": c.name, "type": c.type, "hosts": list(conn.hosts), "actions": len(conn.actions),
                        "credential": credential, "credential_gateways": list(entry.gateways) if entry else []})
        return {"connectors": out, "vault_error": self.state.credentials.error}

    async def op_connector_add(self, req: dict[str, Any]) -> Reply:
        ports = req.get("ports") or []
        if not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
            raise OpError(f"ports must be port numbers, got {ports!r}")
        token = req.get("token")
        if token is None and any(req.get(k) for k in ("gateways", "header", "prefix", "query_param")):
            raise OpError("--gateways, --header, --prefix and --query-param describe a credential: give its token too")
        cfg = self._reread_config()
        name, type_name = str(req.get("name") or req["type"]), str(req["type"])
        old = next((c for c in cfg.connectors if c.name == name), None)
        conn = ConnectorConfig(name, type_name, tuple(str(d).lower() for d in req.get("domains") or ()),
                               tuple(sorted(set(ports))), tuple(str(u) for u in req.get("urls") or ()),
                               str(req.get("base_path") or ""),
                               credential=token is not None or (old is not None and old.credential),
                               env=tuple(str(e) for e in req.get("env") or (old.env if old else ())))
        text = cfgmod.dump_config(cfgmod.with_connector(cfg, conn))
        if token is None:
            self._apply_config(text)
            return {"connector": conn.name}
        cfgmod.parse_config(text, self.paths.config)  # the configuration is valid before anything is sealed
        vault = self.vault.put(self.state.credentials, name, type_name, conn.build().hosts, str(token),
                               [str(g) for g in req.get("gateways") or ()], self.vault.injection(type_name, req))
        self._apply_config_and_vault(text, vault)
        entry = vault.get(name)
        return {"connector": conn.name, "fingerprint": entry.fingerprint, "version": entry.version}

    async def op_connector_remove(self, req: dict[str, Any]) -> Reply:
        name = str(req["name"])
        cfg = self._reread_config()
        if name not in {c.name for c in cfg.connectors}:
            raise OpError(f"unknown connector {name!r}; known: {', '.join(c.name for c in cfg.connectors) or 'none'}")
        users = [p for p in self.state.policy.permissions if p.connector == name]
        if users:
            raise OpError(f"{len(users)} permission(s) still name connector {name}; remove them first "
                          f"(tf permissions list --connector {name})")
        text = cfgmod.dump_config(replace(cfg, connectors=tuple(c for c in cfg.connectors if c.name != name)))
        running = self.state.credentials.vault
        if running is not None and name in running:
            vault = running.copy()
            vault.remove(name)
            self._apply_config_and_vault(text, vault)
        else:
            self._apply_config(text)
        return {"removed": name}

    def _apply_config_and_vault(self, text: str, vault: Vault) -> None:
        """Save the changed vault, then the configuration; if that fails, the running vault's file goes back,
        so file and configuration always match. Then both run."""
        running = self.state.credentials.vault
        assert running is not None  # a changed vault was copied from the running one
        vault.save()
        try:
            self._apply_config(text)
        except BaseException:
            running.save()
            raise
        self.state.credentials = replace(self.state.credentials, vault=vault)

    async def op_vault_status(self, req: dict[str, Any]) -> Reply:
        return self.vault.status(self.state.credentials)

    async def op_vault_rotate(self, req: dict[str, Any]) -> Reply:
        old_id = self.vault.key.key_id if self.vault.key else None
        vault = await asyncio.to_thread(self.vault.rotate, self.state.credentials)
        self.state.credentials = replace(self.state.credentials, vault=vault)
        return {"old_key_id": old_id, "key_id": vault.key.key_id, "entries": len(vault)}

    async def op_permissions_list(self, req: dict[str, Any]) -> Reply:
        rows = [p for p in self.state.policy.permissions
                if (not req.get("gateway") or p.gateway == req["gateway"])
                and (not req.get("connector") or p.connector == req["connector"])]
        return {"permissions": [{"gateway": p.gateway, "connector": p.connector, "action": p.action,
                                 "decision": p.decision, "rule_id": p.rule_id} for p in rows]}

    async def op_permissions_set(self, req: dict[str, Any]) -> Reply:
        new = cfgmod.check_permission(req, self.state.connectors)
        old = [p for p in self.state.policy.permissions if self._same(p, new)]
        kept = tuple(p for p in self.state.policy.permissions if not self._same(p, new))
        self._apply_permissions((*kept, new), f"uid {req['uid']}", "permission set",
                                _row(old[0]) if old else None, _row(new))
        return {"rule_id": new.rule_id}

    async def op_permissions_preset(self, req: dict[str, Any]) -> Reply:
        """Replace a gateway's permissions on one connector with a preset: allow-all, read-only (every low-risk
        action of the connector's catalogue), or require-approval (everything held for a human)."""
        gateway = validate_name("gateway", str(req.get("gateway") or ""))
        conn = self.state.connectors.by_name.get(str(req.get("connector")))
        if conn is None:
            known = ", ".join(sorted(self.state.connectors.by_name)) or "none"
            raise OpError(f"unknown connector {req.get('connector')!r}; known: {known}")
        preset = str(req.get("preset"))
        if preset == "allow-all":
            rows = [Permission(gateway, conn.name, "*", "allow")]
        elif preset == "require-approval":
            rows = [Permission(gateway, conn.name, "*", "require_approval")]
        elif preset == "read-only":
            from trustfence.connectors.catalogue import catalogue

            names = sorted({e.action for e in catalogue(conn.type_name)
                            if e.risk == "low" and conn.catalogue.accepts_action(e.action)})
            rows = [Permission(gateway, conn.name, a, "allow") for a in names]
        else:
            raise OpError(f"unknown preset {preset!r}; known: allow-all, read-only, require-approval")
        perms = self.state.policy.permissions
        old = [_row(p) for p in perms if (p.gateway, p.connector) == (gateway, conn.name)]
        kept = tuple(p for p in perms if (p.gateway, p.connector) != (gateway, conn.name))
        self._apply_permissions((*kept, *rows), f"uid {req['uid']}", f"permissions preset {preset}", old,
                                [_row(p) for p in rows])
        return {"permissions": len(rows)}

    async def op_permissions_export(self, req: dict[str, Any]) -> Reply:
        return {"text": policyfiles.export(self.state.policy)}

    async def op_permissions_import(self, req: dict[str, Any]) -> Reply:
        """Replace every permission and policy with the document's, validated whole first."""
        where = Path(str(req.get("name") or "import.toml"))
        new = policyfiles.parse_document(str(req.get("text") or ""), where, self.state.connectors)
        before = policyfiles.fingerprint(self.state.policy)
        self._write_policy(new)
        self.audit.append(f"uid {req['uid']}", f"permissions import from {where}", before,
                          policyfiles.fingerprint(new))
        return {"permissions": len(new.permissions), "policies": len(new.policies)}

    async def op_audit(self, req: dict[str, Any]) -> Reply:
        return {"events": self.audit.read(int(req.get("limit") or 100)), "broken": self.audit.verify()}

    async def _watch_policy_files(self) -> None:
        """Reload permissions.toml and policies.toml when edited by hand or by git; a bad edit is refused with
        file, line and reason, and the running policy stays."""
        while True:
            await asyncio.sleep(1.0)
            now = policyfiles.stamp(self.paths)
            if now == self._stamp:
                continue
            self._stamp = now
            before = policyfiles.fingerprint(self.state.policy)
            try:
                new = policyfiles.load(self.paths, self.state.connectors)
            except (ConfigError, PolicyError) as e:
                log.error("policy files not reloaded, the running policy stays: %s", e)
                self.audit.append("file edit", "policy files rejected", before, {"error": str(e)})
                continue
            self.state.policy = new
            log.info("policy files reloaded: %d permission(s), %d policies", len(new.permissions),
                     len(new.policies))
            self.audit.append("file edit", "policy files reloaded", before, policyfiles.fingerprint(new))

    async def op_permissions_remove(self, req: dict[str, Any]) -> Reply:
        perms = self.state.policy.permissions
        kept = tuple(p for p in perms if not (p.gateway == req.get("gateway") and p.connector == req.get(
            "connector") and p.action == req.get("action")))
        if len(kept) == len(perms):
            raise OpError("no such permission (see tf permissions list)", code=1)
        self._apply_permissions(kept, f"uid {req['uid']}", "permission removed",
                                [_row(p) for p in perms if p not in kept], None)
        return {"removed": len(perms) - len(kept)}

    # -- brakes: kill switches, enforcement levels, rate limits ---------------------------------------
    def _apply_brakes(self, cfg: Config) -> None:
        """Rate limits and levels into the running enforcer; requests already admitted keep their slots."""
        rl = cfg.rate_limit
        self.state.limiter.configure(rl.per_minute, rl.gateways, rl.actions)
        self.state.levels, self.state.default_level = cfg.levels(), cfg.level
        self.state.environments = {n: g.environment for n, g in cfg.gateways.items() if g.environment}
        ap = cfg.approvals
        self.state.approval_timeout, self.state.approvals.per_gateway = ap.timeout, ap.per_gateway
        self.state.approvals.on_open = (Notifier(ap.notify_url, cfg.resolve, self.paths.upstream_bundle)
                                        if ap.notify_url else None)

    def _known_gateways(self) -> set[str]:
        """Running, or named by permissions.toml or config.toml."""
        c = self.config
        return ({s.gateway for s in self.sandboxes.values()} | {p.gateway for p in self.state.policy.permissions}
                | set(c.gateways) | set(c.rate_limit.gateways) | {a.gateway for a in c.rate_limit.actions if a.gateway})

    async def op_killswitch_activate(self, req: dict[str, Any]) -> Reply:
        try:
            done = self.kill_switches.activate(str(req.get("scope") or "all"), str(req.get("reason") or ""),
                                               str(req.get("by") or ""), self._known_gateways(),
                                               self.state.connectors.by_name)
        except BrakeError as e:
            raise OpError(str(e), e.code) from None
        self.audit.append(f"uid {req['uid']} ({req.get('by') or '?'})", "kill switch activated", None, done)
        return done

    async def op_killswitch_deactivate(self, req: dict[str, Any]) -> Reply:
        try:
            done = self.kill_switches.deactivate(str(req.get("scope") or "all"), str(req.get("reason") or ""),
                                                 str(req.get("by") or ""))
        except BrakeError as e:
            raise OpError(str(e), e.code) from None
        self.audit.append(f"uid {req['uid']} ({req.get('by') or '?'})", "kill switch deactivated",
                          {"scope": done["scope"]}, {"reason": str(req.get("reason") or "")})
        return done

    async def op_approvals_list(self, req: dict[str, Any]) -> Reply:
        rows = self.state.approvals.listing(req.get("state"))
        return {"approvals": [a.as_dict() for a in rows if not req.get("gateway") or a.gateway == req["gateway"]]}

    async def op_approvals_show(self, req: dict[str, Any]) -> Reply:
        try:
            return self.state.approvals.get(str(req.get("id"))).as_dict()
        except ApprovalError as e:
            raise OpError(str(e)) from None

    async def op_approvals_answer(self, req: dict[str, Any]) -> Reply:
        """Approve or deny; ``always`` (approve only) also writes the allow permission for that gateway and action."""
        approve, always = bool(req.get("approve")), bool(req.get("always"))
        if always and not approve:
            raise OpError("--always goes with approve: it writes an allow permission")
        uid = int(req["uid"])
        try:
            a = self.state.approvals.get(str(req.get("id")))
            if uid != 0 and (always or not _in_group(uid, a.approver_role)):
                need = "root (it writes a permission)" if always else f"root or a member of group {a.approver_role}"
                raise OpError(f"approval {a.id} can be answered by {need}; you are uid {uid}")
            if always:  # the permission first: an approval is not given if its permission cannot be written
                new = cfgmod.check_permission({"gateway": a.gateway, "connector": a.connector, "action": a.action,
                                               "decision": "allow"}, self.state.connectors)
                if a.state == "pending":
                    old = [_row(p) for p in self.state.policy.permissions if self._same(p, new)]
                    kept = tuple(p for p in self.state.policy.permissions if not self._same(p, new))
                    self._apply_permissions((*kept, new), f"uid {uid}", f"permission set by approval {a.id} --always",
                                            old[0] if old else None, _row(new))
            a = self.state.approvals.answer(a.id, approve, by=uid, note=str(req.get("note") or ""),
                                            always=always)
        except ApprovalError as e:
            raise OpError(str(e)) from None
        log.info("approval %s %s by uid %s%s", a.id, a.state, a.answered_by, " (always)" if a.always else "")
        self.audit.append(f"uid {uid}", f"approval {a.id} {a.state}",
                          {"action": a.action, "gateway": a.gateway, "digest": a.digest}, {"note": a.note})
        return a.as_dict()

    async def op_killswitch_status(self, req: dict[str, Any]) -> Reply:
        return self.kill_switches.status()

    async def op_gateway_level(self, req: dict[str, Any]) -> Reply:
        """Set a gateway's enforcement level in config.toml. Any valid name: a level may be set before it runs."""
        name = validate_name("gateway", str(req.get("name") or ""))
        level = req.get("level")
        if level not in cfgmod.LEVELS:
            raise OpError(f"level must be one of {', '.join(cfgmod.LEVELS)}, got {level!r}")
        cfg = self._reread_config()
        old = cfg.gateways.get(name, cfgmod.GatewayConfig())
        gateways = {**cfg.gateways, name: replace(old, level=level)}
        self._apply_config(cfgmod.dump_config(replace(cfg, gateways=gateways)))
        return {"gateway": name, "level": level, "was": old.level or cfg.level}

    async def op_gateway_list(self, req: dict[str, Any]) -> Reply:
        running = {s.gateway for s in self.sandboxes.values()}
        rl = self.config.rate_limit
        rows = []
        for name in sorted(self._known_gateways()):
            switch = self.state.switches.blocking(name)
            rows.append({"name": name, "level": self.state.level_of(name), "running": name in running,
                         "per_minute": rl.gateways.get(name, rl.per_minute),
                         "kill_switch": switch.describe() if switch else ""})
        return {"gateways": rows, "default_level": self.config.level}

    @staticmethod
    def _same(a: Permission, b: Permission) -> bool:
        return (a.gateway, a.connector, a.action) == (b.gateway, b.connector, b.action)

    def _reread_config(self) -> Config:
        return cfgmod.load_config(self.paths.config)

    def _apply_config(self, text: str) -> None:
        """Validate the new text as a whole before it replaces the file; then swap the running state."""
        cfg = cfgmod.parse_config(text, self.paths.config)
        connectors = cfg.connector_set()
        cfgmod.load_permissions(self.paths.permissions, connectors)
        cfgmod.atomic_write(self.paths.config, text)
        self.config = replace(self.config, connectors=cfg.connectors, level=cfg.level, gateways=cfg.gateways,
                              rate_limit=cfg.rate_limit, approvals=cfg.approvals)
        self._apply_brakes(self.config)
        self.state.connectors, self.state.open_ports = connectors, self.config.open_ports()
        self.state.credentials = replace(self.state.credentials, required=frozenset(
            c.name for c in cfg.connectors if c.credential))

    def _apply_permissions(self, perms: tuple[Permission, ...], who: str, what: str, before: Any,
                           after: Any) -> None:
        self.audit.append(who, what, before, after)  # recorded before it takes effect
        self._write_policy(compile_policy(perms, self.state.policy.policies))

    def _write_policy(self, policy: CompiledPolicy) -> None:
        cfgmod.atomic_write(self.paths.permissions, cfgmod.dump_permissions(policy.permissions))
        text = dump_policies(policy.policies) if policy.policies else ""
        if text or self.paths.policies.exists():
            cfgmod.atomic_write(self.paths.policies, text)
        self._stamp = policyfiles.stamp(self.paths)  # our own write is not an edit to reload
        self.state.policy = policy

    _ops: dict[str, Callable[[Daemon, dict[str, Any]], Awaitable[Reply]]] = {
        "ping": op_ping,
        "stop": op_stop,
        "status": op_status,
        "logs": op_logs,
        "connector.list": op_connector_list,
        "connector.add": op_connector_add,
        "connector.remove": op_connector_remove,
        "permissions.list": op_permissions_list,
        "permissions.set": op_permissions_set,
        "permissions.remove": op_permissions_remove,
        "permissions.export": op_permissions_export,
        "permissions.preset": op_permissions_preset,
        "permissions.import": op_permissions_import,
        "audit": op_audit,
        "killswitch.activate": op_killswitch_activate,
        "killswitch.deactivate": op_killswitch_deactivate,
        "killswitch.status": op_killswitch_status,
        "approvals.list": op_approvals_list,
        "approvals.show": op_approvals_show,
        "approvals.answer": op_approvals_answer,
        "gateway.level": op_gateway_level,
        "gateway.list": op_gateway_list,
        "vault.status": op_vault_status,
        "vault.rotate": op_vault_rotate,
    }
    _read_ops = frozenset({"ping", "status", "logs", "connector.list", "permissions.list", "killswitch.status",
                           "approvals.list", "approvals.show", "approvals.answer",
                           "gateway.list", "permissions.export", "audit"})
