"""``tf daemon``: owns the sandboxes, the embedded enforcer, the DuckDB file and the Unix-socket API.

One per state directory (a lock file enforces it). Everything runs on one asyncio loop; blocking kernel
and database work goes to threads. This module is the daemon's life: start, the socket's protocol, a sandbox
per ``tf run`` connection, reloading policy files, and the changes every operation makes the same way
(``apply_config``, ``apply_permissions``, ``write_policy``). The operations themselves are in ``ops``.
"""

from __future__ import annotations

import asyncio
import fcntl
import glob
import grp
import json
import logging
import os
import signal
from dataclasses import replace
from typing import Any

from trustfence.agent import allowlists, policyfiles
from trustfence.agent.advisory import Advisory
from trustfence.agent import config as cfgmod
from trustfence.agent.brakes import KillSwitches, load_switches
from trustfence.agent.config import Config, ConfigError, worker_count
from trustfence.agent.credentials import CredentialStore
from trustfence.agent.fdlimit import raise_nofile
from trustfence.agent.workers import WorkerPool, pool_init
from trustfence.agent.notify import Notifier
from trustfence.agent.ops import OPS, READ_OPS, OpError, Reply, jsonable
from trustfence.agent.changes import config_changes
from trustfence.agent.modes import UMASK
from trustfence.agent.paths import Paths
from trustfence.agent.peers import peer_of
from trustfence.agent.sandbox import cgroup as cgroups
from trustfence.agent.sandbox import landlock
from trustfence.agent.sandbox.manager import SandboxError, SandboxManager
from trustfence.agent.sandbox.spec import SandboxSpec
from trustfence.agent.sandbox.view import CA_BUNDLE, CA_CERT
from trustfence.agent.sandbox import net
from trustfence.agent.setup import ensure_state
from trustfence.bpf.guard import Guard, GuardError
from trustfence.dashboard import Dashboard
from trustfence.policy import CompiledPolicy, Permission, PolicyError, compile_policy, dump_policies
from trustfence.policy.model import validate_name
from trustfence.proxy import Enforcer, EnforcerState, Gateway
from trustfence.proxy.destination import SERVICES_VIA, HostService
from trustfence.proxy.master import EnforcerError
from trustfence.proxy.switches import Switch
from trustfence.proxy.upstream import install_resolver, upstream_bundle
from trustfence.store import AuditError, AuditLog, Store
from trustfence.vault import STRIP_NAMES, VaultError, dummy_env, placeholder

__all__ = ["AlreadyRunning", "Daemon", "OpError"]

log = logging.getLogger("trustfence.daemon")


class AlreadyRunning(RuntimeError):
    pass


def host_services(cfg: Config) -> dict[int, HostService]:
    """Sandbox port -> host service, as the enforcer looks them up."""
    out = {}
    for port, c in cfg.host_services().items():
        addr, target = c.service or ("", 0)
        out[port] = HostService(c.name, addr, target, port)
    return out


class Daemon:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.stop = asyncio.Event()
        self.sandboxes: dict[str, SandboxSpec] = {}
        self._lock_file: Any = None
        # why the last hand edit of the policy files was rejected ("": none since the last good reload)
        self.rejected_edit = ""

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
        os.umask(UMASK)  # whatever is created from here on (DuckDB's file and WAL, the lock) is root's alone
        self._acquire_lock()
        fds = raise_nofile()  # every agent connection is a descriptor here, its upstream another
        ensure_state(self.paths)
        self.config = cfgmod.load_config(self.paths.config)
        connectors = self.config.connector_set()
        self._stamp = policyfiles.stamp(self.paths)
        try:
            policy, policy_error = policyfiles.load(self.paths, connectors), ""
        except (ConfigError, PolicyError) as e:
            # The daemon still starts, so `tf connector add` and the next edit can fix it; until then nothing
            # is known of what the files allow, so every request is denied with this reason.
            policy, policy_error = compile_policy(()), str(e)
            log.error("policy files rejected at start; every request is denied until they validate: %s", e)
        lists, self._lists_stamp = allowlists.load(self.config, connectors), allowlists.stamp(self.config)
        # The store first: it replays the traffic journal, and holds the audit chain's second anchor.
        self.store = Store(self.paths.database, self.config.queue_max, journal=self.paths.journal,
                           sync=self.config.journal_sync, retention_days=self.config.retention_days)
        self.audit = AuditLog(self.paths.audit, db_head=self.store.audit_head(), anchor=self.store.anchor_audit)
        switches = load_switches(self.paths.kill_switches)
        self.vault = CredentialStore(self.paths)
        self.vault.open_key()
        self.state = EnforcerState(store=self.store, connectors=connectors, policy=policy,
                                   transparent_port=self.config.transparent_port,
                                   open_ports=self.config.open_ports(),
                                   credentials=self.vault.load(self.config), policy_error=policy_error,
                                   allow_lists=lists)
        self.state.switches = switches
        store = self.store
        self.state.approvals.on_change = lambda event, a: store.record_approval(event, a.as_dict())
        self.state.host_services = host_services(self.config)
        self.kill_switches = KillSwitches(self.paths.kill_switches, self.state, self._cut)
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
        self.landlock_error = landlock.unavailable_reason()
        if self.landlock_error:
            log.error("%s: tf run refuses to start agents; %s", self.landlock_error, landlock.FIX)
        loop = asyncio.get_running_loop()
        install_resolver(loop, c.resolve)
        upstream_ca = upstream_bundle(c.extra_ca, self.paths.upstream_bundle)
        self.enforcer = Enforcer(self.state, self.paths.ca_dir, upstream_ca)
        master_task = asyncio.create_task(self.enforcer.run())
        watcher = asyncio.create_task(self._watch_policy_files())
        signer = asyncio.create_task(self._sign_audit())
        await self.enforcer.started.wait()
        self.workers: WorkerPool | None = None
        if (count := worker_count(c)) > 1:
            self.workers = WorkerPool(count, self.state, self.store, self.enforcer,
                                      pool_init(str(self.paths.ca_dir), str(upstream_ca) if upstream_ca else None,
                                                c.resolve))
            self.workers.start()
        self._start_advisory()
        self.dashboard = Dashboard(self)  # on this loop; not on the enforcement path
        await self.dashboard.start()
        self.paths.socket.unlink(missing_ok=True)
        # 1 MiB lines: a stdio MCP call up to the inspection bound, JSON-escaped, is one request (mcp.decide)
        server = await asyncio.start_unix_server(self._connection, path=str(self.paths.socket), limit=1 << 20)
        os.chmod(self.paths.socket, 0o660)
        try:
            os.chown(self.paths.socket, 0, grp.getgrnam("trustfence").gr_gid)
        except KeyError:
            pass  # no trustfence group: root only
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        log.info("daemon ready (pid %d, state %s, tag %s, %d file descriptors)", os.getpid(), self.paths.home,
                 c.tag, fds)
        self._audit_life("daemon started")
        try:
            await self.stop.wait()
        finally:
            self._audit_life("daemon stopping")
            server.close()
            await self.dashboard.stop()
            watcher.cancel()
            signer.cancel()
            for spec in list(self.sandboxes.values()):
                await self._teardown(spec)
            if self.workers is not None:
                await self.workers.stop()
            self.enforcer.shutdown()
            await asyncio.wait_for(master_task, 10)
            self._checkpoint(at_stop=True)
            self.store.close()
            self.paths.socket.unlink(missing_ok=True)
            log.info("daemon stopped")

    def _start_advisory(self) -> None:
        """The advisory agents and the token key; unreadable, the v1 API refuses (503) and enforcement goes on."""
        self.advisory: Advisory | None = None
        self.advisory_error = ""
        try:
            self.advisory = Advisory(self)
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.advisory_error = f"the advisory agents or the token key cannot be read ({e}); fix or remove " \
                                  f"{self.paths.home / 'agents.json'} and restart the daemon"
            log.error("advisory mode unavailable: %s", self.advisory_error)

    # -- connections --------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_of(writer.get_extra_info("socket"), self._netns_inodes())
        uid = peer.uid
        if peer.sandbox:  # whatever its uid or groups: an agent never operates the daemon
            log.warning("refused a connection from inside a sandbox (uid %d): %s", uid, peer.sandbox)
            try:  # read what it asks first, so the refusal is what it reads (not a reset connection)
                await asyncio.wait_for(reader.readline(), 5)
            except (TimeoutError, ValueError, ConnectionError):
                pass
            try:
                await self._send(writer, {"ok": False, "code": 2, "error": "the TrustFence daemon refuses every "
                                          "operation from inside a sandbox"})
            except ConnectionError:
                pass
            writer.close()
            return
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    op = str(req.pop("op"))
                except (ValueError, KeyError, AttributeError):
                    await self._send(writer, {"ok": False, "error": "malformed request", "code": 2})
                    continue
                if op == "run":
                    await self._run(req, uid, peer.pid, reader, writer)
                    return
                handler = OPS.get(op)
                try:
                    if handler is None:
                        raise OpError(f"unknown operation {op!r}")
                    if op not in READ_OPS and uid != 0:
                        raise OpError(f"{op} needs root (uid 0); you are uid {uid}")
                    reply = {"ok": True, **await handler(self, {**req, "uid": uid})}
                except (OpError, ConfigError, PolicyError, VaultError, AuditError) as e:
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
        writer.write(json.dumps(reply, default=jsonable).encode() + b"\n")
        await writer.drain()

    # -- run: the sandbox lives as long as this connection ------------------------------------------
    async def _run(self, req: dict[str, Any], uid: int, peer_pid: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        if uid != 0:
            await self._send(writer, {"ok": False, "error": "tf run needs root: sudo tf run ...", "code": 2})
            return
        try:
            gateway = validate_name("gateway", str(req.get("gateway", "")))
            dynamic = req.get("uid") is None
            agent_uid, agent_gid = (-1, -1) if dynamic else (int(req["uid"]), int(req["gid"]))
            if agent_uid == 0:
                raise OpError("the agent never runs as uid 0: pass --user or run through sudo")
            if self.guard is None and not req.get("nftables_only"):
                raise OpError(f"the eBPF lock is unavailable ({self.guard_error}); fix it (tf doctor) or pass "
                              "--nftables-only to rely on nftables alone")
            if self.landlock_error:
                raise OpError(f"{self.landlock_error}, and the agent's filesystem policy needs it; "
                              f"{landlock.FIX} (tf doctor checks it)")
            join = self._waiting_agent(req, peer_pid)
            spec = await asyncio.to_thread(self.manager.create, gateway, agent_uid, agent_gid, join, dynamic)
        except (PolicyError, OpError, SandboxError, KeyError, ValueError, OSError) as e:  # OSError: a full disk
            await self._send(writer, {"ok": False, "error": str(e), "code": 2})
            return
        self.sandboxes[spec.id] = spec
        try:
            self.state.gateways[spec.agent_addr] = Gateway(gateway, spec.name, spec.agent_addr, spec.host_addr,
                                                           spec.uid)
            await self._lock_and_listen(spec)
            await self._send(writer, {"ok": True, "sandbox": self.describe(spec), "env": self._agent_env(spec),
                                      "unset": sorted(STRIP_NAMES), "netns": spec.netns,
                                      "ca_overlays": self._ca_overlays(), "ca_bundle": str(self.paths.agent_bundle),
                                      "ca_cert": str(self.paths.ca_cert), "state": str(self.paths.home),
                                      "fs": self.config.fs_policy(gateway), "uid": spec.uid, "gid": spec.gid,
                                      "user": f"tf-{spec.uid}" if dynamic else "",
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
    def _waiting_agent(req: dict[str, Any], caller: int) -> int | None:
        """The process the CLI forked to become the agent, moved into the cgroup while the sandbox is built.
        Only a child of the caller itself: whatever is in the cgroup is killed with the sandbox."""
        if req.get("pid") is None:
            return None
        pid = int(req["pid"])
        if pid <= 1 or cgroups.parent_of(pid) != caller:
            raise OpError(f"process {pid} is not a child of the caller")
        return pid

    async def _lock_and_listen(self, spec: SandboxSpec) -> None:
        """Attach the eBPF lock and open the enforcer's listeners at once; raise the first failure once both
        are done (teardown then closes whatever was opened)."""
        c = self.config
        ports = sorted(self.state.host_services)

        async def lock() -> None:
            if self.guard is not None:
                await asyncio.to_thread(self.guard.attach, cgroups.path_of(spec.name), spec.host_addr,
                                        c.proxy_port, c.transparent_port, c.dns_port, services=ports,
                                        ipv6=spec.ipv6)
            if ports:  # the nftables lock's half, inside the sandbox's namespace
                await asyncio.to_thread(net.route_services, spec, ports, SERVICES_VIA)

        listen = self.enforcer.listen(spec.name, [
            f"regular@{spec.host_addr}:{c.proxy_port}",
            f"transparent@{spec.host_addr}:{c.transparent_port}",
            f"dns@{spec.host_addr}:{c.dns_port}",
        ])
        for result in await asyncio.gather(lock(), listen, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        if self.workers is not None:
            self.workers.listen(spec.name)

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

    def _netns_inodes(self) -> set[int]:
        """The network namespaces of this daemon's sandboxes (a second test besides their cgroups)."""
        found = set()
        for spec in list(self.sandboxes.values()):
            try:
                found.add(os.stat(f"/run/netns/{spec.netns}").st_ino)
            except OSError:
                pass
        return found

    def describe(self, spec: SandboxSpec) -> dict[str, Any]:
        locked = self.guard is not None
        return {"name": spec.name, "gateway": spec.gateway, "agent_addr": spec.agent_addr,
                "enforcer_addr": spec.host_addr, "uid": spec.uid, "ebpf": locked,
                "counters": self.guard.counters(cgroups.path_of(spec.name)) if self.guard else {}}

    def _agent_env(self, spec: SandboxSpec) -> dict[str, str]:
        proxy = f"http://{spec.host_addr}:{self.config.proxy_port}"
        bundle, ca = CA_BUNDLE, CA_CERT  # where the sandbox shows them, wherever the state directory is
        env = {k: proxy for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
        env |= {k: "localhost,127.0.0.1,::1" for k in ("NO_PROXY", "no_proxy")}  # host services: dialled directly
        env |= {k: bundle for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
                                    "GIT_SSL_CAINFO")}
        env |= {"NODE_EXTRA_CA_CERTS": ca, "TF_GATEWAY": spec.gateway, "TF_SANDBOX": spec.name}
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

    async def _watch_policy_files(self) -> None:
        """Reload permissions.toml and policies.toml (and the connectors' allow-list files) when edited by hand
        or by git; a bad edit is refused with file, line and reason, and the running policy stays. Nothing
        stops the watching: an unexpected error is logged and the next edit is read again."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self._reload_allow_lists()
                now = policyfiles.stamp(self.paths)
                if now != self._stamp:
                    self._stamp = now
                    self.reload_policy_files("file edit")
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad edit
                log.exception("reading the policy files failed; still watching")

    def reload_policy_files(self, who: str) -> None:
        """Read both files again; on success they run (and a rejection at start is over), else the running
        policy stays and the rejection is logged and audited with file, line and reason."""
        before = policyfiles.fingerprint(self.state.policy)
        try:
            new = policyfiles.load(self.paths, self.state.connectors)
        except (ConfigError, PolicyError) as e:
            log.error("policy files not reloaded, the running policy stays: %s", e)
            self.rejected_edit = str(e)
            if self.state.policy_error:
                self.state.policy_error = str(e)
            self.audit.append(who, "policy files rejected", before, {"error": str(e)})
            return
        self.state.policy, self.state.policy_error, self.rejected_edit = new, "", ""
        log.info("policy files reloaded: %d permission(s), %d policies", len(new.permissions), len(new.policies))
        self.audit.append(who, "policy files reloaded", before, policyfiles.fingerprint(new))

    async def _sign_audit(self) -> None:
        """A signed checkpoint at most ``interval`` seconds after a change, however few changes there were."""
        while True:
            await asyncio.sleep(5.0)
            self._checkpoint()

    def _audit_life(self, what: str) -> None:
        """The daemon's own start and stop, in the audit log (a stop that cannot be recorded still stops)."""
        try:
            self.audit.append("daemon", what, None, {"pid": os.getpid(), "tag": self.config.tag})
        except (AuditError, OSError) as e:
            log.error("audit event %r not written: %s", what, e)

    def _checkpoint(self, *, at_stop: bool = False) -> None:
        try:
            self.audit.checkpoint_if_due(at_stop=at_stop)
        except (AuditError, OSError) as e:
            log.error("audit checkpoint not written: %s", e)

    def _reload_allow_lists(self) -> None:
        """Reload the connectors' allow-list files when one changed; a bad edit (or a removed file) is refused
        with file, line and reason, and the running lists stay."""
        now = allowlists.stamp(self.config)
        if now == self._lists_stamp:
            return
        self._lists_stamp = now
        before = allowlists.describe(self.state.allow_lists)
        try:
            new = allowlists.load(self.config, self.state.connectors)
        except ConfigError as e:
            log.error("allow lists not reloaded, the running lists stay: %s", e)
            self.audit.append("file edit", "allow lists rejected", before, {"error": str(e)})
            return
        self.state.allow_lists = new
        log.info("allow lists reloaded: %s", allowlists.describe(new))
        self.audit.append("file edit", "allow lists reloaded", before, allowlists.describe(new))

    # -- brakes: kill switches, enforcement levels, rate limits ---------------------------------------
    def _cut(self, switch: Switch) -> int:
        """Close the live connections a just-activated switch covers, here and in every worker process; the
        number is this process's (the operation adds the workers' count, ``WorkerPool.closed``)."""
        closed = self.enforcer.cut(switch)
        if self.workers is not None:
            self.workers.cut(switch)
        return closed

    def _apply_brakes(self, cfg: Config) -> None:
        """Rate limits and levels into the running enforcer; requests already admitted keep their slots."""
        rl = cfg.rate_limit
        self.state.limiter.configure(rl.per_minute, rl.gateways, rl.actions)
        self.state.levels, self.state.default_level = cfg.levels(), cfg.level
        self.state.environments = {n: g.environment for n, g in cfg.gateways.items() if g.environment}
        self.state.limits = cfg.limits
        ap = cfg.approvals
        self.state.approval_timeout, self.state.approvals.per_gateway = ap.timeout, ap.per_gateway
        self.state.approvals.on_open = (Notifier(ap.notify_url, cfg.resolve, self.paths.upstream_bundle,
                                                 buttons=bool(ap.slack_signing_secret))
                                        if ap.notify_url else None)

    def known_gateways(self) -> set[str]:
        """Running, or named by permissions.toml or config.toml."""
        c = self.config
        return ({s.gateway for s in self.sandboxes.values()} | {p.gateway for p in self.state.policy.permissions}
                | set(c.gateways) | set(c.rate_limit.gateways) | {a.gateway for a in c.rate_limit.actions if a.gateway})

    # -- changes every operation makes the same way ------------------------------------------------------
    def reread_config(self) -> Config:
        """config.toml as it is on disk now: an operation changes that, not the copy loaded at start."""
        return cfgmod.load_config(self.paths.config)

    def apply_config(self, text: str, who: str = "daemon", what: str = "configuration changed") -> None:
        """Validate the new text as a whole before it replaces the file; audit what it changes (before it takes
        effect); then swap the running state."""
        cfg = cfgmod.parse_config(text, self.paths.config)
        connectors = cfg.connector_set()
        cfgmod.load_permissions(self.paths.permissions, connectors)
        lists = allowlists.load(cfg, connectors)
        before, after = config_changes(self.reread_config(), cfg)
        if before or after:
            self.audit.append(who, what, before, after)
        cfgmod.atomic_write(self.paths.config, text)
        self.config = replace(self.config, connectors=cfg.connectors, level=cfg.level, gateways=cfg.gateways, fs=cfg.fs,
                              rate_limit=cfg.rate_limit, approvals=cfg.approvals, limits=cfg.limits,
                              # only the name: a new listen address takes a restart
                              dashboard=replace(self.config.dashboard, org_name=cfg.dashboard.org_name))
        self._apply_brakes(self.config)
        self.state.connectors, self.state.open_ports = connectors, self.config.open_ports()
        self.state.allow_lists, self._lists_stamp = lists, allowlists.stamp(self.config)
        self._route_host_services(host_services(cfg))
        self.state.credentials = replace(self.state.credentials, required=frozenset(
            c.name for c in cfg.connectors if c.credential))
        if self.state.policy_error:  # a connector just added may be what the rejected files named
            self.reload_policy_files("connector change")

    def _route_host_services(self, services: dict[int, HostService]) -> None:
        """Swap the host services in; running sandboxes get the new ports from both locks at once."""
        changed = set(services) != set(self.state.host_services)
        self.state.host_services = services
        for spec in list(self.sandboxes.values()) if changed else ():
            try:
                if self.guard is not None:
                    self.guard.set_services(cgroups.path_of(spec.name), services)
                net.route_services(spec, services, SERVICES_VIA)
            except (OSError, RuntimeError) as e:
                log.error("sandbox %s keeps its previous host services: %s", spec.name, e)

    def apply_permissions(self, perms: tuple[Permission, ...], who: str, what: str, before: Any,
                          after: Any) -> None:
        """Audit, then write and run ``perms`` with the running policies."""
        self.audit.append(who, what, before, after)  # recorded before it takes effect
        self.write_policy(compile_policy(perms, self.state.policy.policies))

    def write_policy(self, policy: CompiledPolicy) -> None:
        """permissions.toml and policies.toml from ``policy``, then it runs. Refused while the files on disk
        are rejected, at start or as an edit: writing them from the running policy would erase what the operator
        wrote."""
        if why := self.state.policy_error or self.rejected_edit:
            raise OpError(f"the policy files on disk are rejected ({why}); fix them first (they reload within a "
                          "second of a save): writing them now would erase that edit")
        cfgmod.atomic_write(self.paths.permissions, cfgmod.dump_permissions(policy.permissions))
        text = dump_policies(policy.policies) if policy.policies else ""
        if text or self.paths.policies.exists():
            cfgmod.atomic_write(self.paths.policies, text)
        self._stamp = policyfiles.stamp(self.paths)  # our own write is not an edit to reload
        self.state.policy = policy
