"""The daemon's configuration file (``config.toml``) and the permissions file (``permissions.toml``).

Both are TOML, reviewed in git and edited by ``tf`` atomically. Loading validates everything once; an error
names the file, the line and the reason, and the caller keeps whatever it was running before.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import tomli_w

from trustfence.agent.files import write_atomic
from trustfence.agent.sandbox.fspolicy import KEYS as FS_KEYS
from trustfence.agent.sandbox.fspolicy import FsPolicy, FsPolicyError, parse_fs
from trustfence.agent.hostservice import check_service, parse_service
from trustfence.connectors import Connector, ConnectorSet, KNOWN_TYPES, build_connector
from trustfence.connectors.packages import PackageConnector
from trustfence.policy import Permission, PolicyError, validate_pattern
from trustfence.policy.model import VERDICTS, validate_name
from trustfence.proxy.limits import SandboxLimits

__all__ = [
    "ActionLimit",
    "ApprovalsConfig",
    "atomic_write",
    "Config",
    "ConfigError",
    "ConnectorConfig",
    "DashboardConfig",
    "decode_utf8",
    "dump_config",
    "dump_permissions",
    "GatewayConfig",
    "Level",
    "LEVELS",
    "LIMIT_KEYS",
    "load_config",
    "load_permissions",
    "MAX_WORKERS",
    "parse_config",
    "parse_permissions",
    "RateLimitConfig",
    "worker_count",
]

_TAG = re.compile(r"^[a-z][a-z0-9]{0,4}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Variables the sandbox sets itself (proxy, CA trust, identity): a placeholder must never replace one.
_SANDBOX_ENV = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
                          "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS",
                          "NODE_OPTIONS", "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PYTHONPATH"})
DEFAULT_CA_OVERLAYS: tuple[str, ...] = (
    "/etc/ssl/certs/ca-certificates.crt",  # clients that read the system bundle by path, ignoring SSL_CERT_FILE
    "/usr/lib/python3/dist-packages/certifi/cacert.pem",
    "/usr/local/lib/python3*/dist-packages/certifi/cacert.pem",
    "/usr/local/lib/python3*/dist-packages/stripe/data/ca-certificates.crt",
    "/usr/local/lib/python3*/dist-packages/pip/_vendor/certifi/cacert.pem",
)
_ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_HOST = re.compile(r"^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$")


class ConfigError(ValueError):
    """A file that does not validate: ``str()`` is ``file:line: reason``."""

    def __init__(self, file: Path, line: int | None, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        super().__init__(f"{file}:{line}: {reason}" if line else f"{file}: {reason}")


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """A configured connector. ``domains`` overrides the type's default hosts (required for generic).

    ``ports``: ports opened for this connector beyond 443 (TLS) and 80 (plain HTTP), e.g. ``[8443]`` for an
    internal API; left out, a CONNECT or request to any other port is denied.
    ``urls``: the endpoint of an ``mcp`` connector (one) or the endpoints of a ``webhook`` connector.
    ``base_path``: GitHub Enterprise's API prefix (``/api/v3``), or a package mirror's
    (``/artifactory/api/pypi/pypi-remote``), for types ``github``, ``pypi``, ``npm``, ``crates``, ``gomod``.
    ``allow_list``: for the package registries, a file listing the packages that may be downloaded, one name
    per line (``/etc/trustfence/pypi-allow.txt``); any other download is denied whatever permissions say.
    Reloaded within a second of an edit. Left out, permissions and policies alone decide.
    ``credential``: a credential for this connector is sealed in the vault (set by ``tf connector add
    --token``); every allowed request gets it, and with it unavailable the request is denied, never sent bare.
    ``env``: the variables that hold this connector's placeholder key in the agent's environment; left out,
    the ones its SDKs read (``GITHUB_TOKEN`` and ``GH_TOKEN`` for github), e.g. ``["MY_API_TOKEN"]``.
    ``host_service``: a service on this host the connector stands for, ``"127.0.0.1:11434"`` (a loopback
    address, or an address of this host's own interfaces, with its port); left out, the connector is reached
    by name. Inside every sandbox, TCP to ``localhost``/``127.0.0.1``/``[::1]`` on ``sandbox_port`` then
    reaches the enforcer, which decides it as this connector and forwards it to the service over plain HTTP.
    ``sandbox_port``: the loopback port the agent dials for it (default: the service's own port).
    """

    name: str
    type: str
    domains: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    urls: tuple[str, ...] = ()
    base_path: str = ""
    credential: bool = False
    env: tuple[str, ...] = ()
    allow_list: str = ""
    host_service: str = ""
    sandbox_port: int = 0

    @property
    def service(self) -> tuple[str, int] | None:
        """The host service's (address, port), or None for a connector reached by name."""
        return parse_service(self.host_service) if self.host_service else None

    def build(self) -> Connector:
        service = self.service
        # A host service is found by its sandbox port, never by name: its only host is the service's address,
        # which is what a credential for it is bound to and what its rows record.
        hosts = (service[0],) if service else self.domains
        return build_connector(self.name, self.type, hosts, urls=self.urls, base_path=self.base_path)


Level = Literal["monitor", "soft_enforce", "full_enforce"]
LEVELS: tuple[Level, ...] = ("monitor", "soft_enforce", "full_enforce")
"""Enforcement levels: ``monitor`` forwards everything and records the decision (``allowed``/``would_deny``);
``soft_enforce`` forwards a deny and records it as ``would_deny`` (approvals are still held); ``full_enforce``
enforces everything. Rate limits and kill switches are brakes, not policy: they hold at every level."""

PER_MINUTE_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class ActionLimit:
    """``[[rate_limit.actions]]``: at most ``per_minute`` requests a minute whose action matches ``action``.

    ``action``: an exact action (``stripe.refund.create``), a prefix (``github.pr.*``) or ``*``; required.
    ``per_minute``: 1 or more; required. ``gateway``: the gateway it limits; left out, every gateway, each
    with a budget of its own. A request needs room in every rule it matches and in its gateway's budget.
    """

    action: str
    per_minute: int
    gateway: str = ""


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """``[rate_limit]``: sliding one-minute windows; over a limit the agent gets 429 with ``Retry-After``.

    ``per_minute``: every gateway's budget (120). ``gateways``: a gateway's own budget instead
    (``[rate_limit.gateways.Bot] per_minute = 600``). ``actions``: budgets per action pattern.
    """

    per_minute: int = 120
    gateways: Mapping[str, int] = field(default_factory=dict)
    actions: tuple[ActionLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class ApprovalsConfig:
    """``[approvals]``: requests a permission or policy holds for a human.

    ``timeout``: seconds a held request waits before it is denied (300); a policy's own ``approval.timeout``
    wins. ``per_gateway``: requests one gateway may have waiting at once (50); the next gets 429.
    ``notify_url``: a Slack incoming-webhook URL told of every new approval, by the daemon itself (never
    through a sandbox); left out, nobody is notified. E.g. ``"https://hooks.slack.com/services/T0/B0/x"``.
    ``slack_signing_secret``: the Slack app's signing secret; set, each Slack message carries Approve / Deny
    buttons, and the dashboard's ``/slack/interactions`` answers the approval for a Slack user mapped to a
    dashboard user of member role or higher, after checking Slack's request signature. Left out, no buttons
    and that route answers 404. E.g. ``"8f742231b10e8888abcd99yyyzzz85a5"``.
    """

    timeout: int = 300
    per_gateway: int = 50
    notify_url: str = ""
    slack_signing_secret: str = ""


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """``[dashboard]``: the web dashboard the daemon serves. ``enabled``: serve it (true). ``listen``:
    ``ADDRESS:PORT``, a loopback address only (it speaks plain http), ``"127.0.0.1:3000"`` by default.
    ``org_name``: the organisation's name, shown in every page's header and title (none by default); e.g.
    ``"Acme payments"``."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 3000
    org_name: str = ""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``[gateways.NAME]``: settings of one gateway (the ``tf run --name``), whether it is running or not.

    ``level``: its enforcement level (one of ``LEVELS``); left out, ``[enforcer] level``. E.g.
    ``[gateways.Bot]`` ``level = "soft_enforce"``. ``environment``: what policies' ``environments`` scope and
    the ``environment`` field test (``prod``); left out, none. ``fs``: its filesystem policy (``writable``,
    ``hidden``, ``writable_cwd``; see ``FsPolicy``); left out, ``[sandbox]``'s.
    """

    level: Level | None = None
    environment: str = ""
    fs: FsPolicy | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """Daemon settings. Every field has a default, so an empty file is a valid configuration.

    The brakes and levels: ``[enforcer] level`` is the enforcement level of every gateway without its own in
    ``[gateways.NAME] level`` (``monitor`` | ``soft_enforce`` | ``full_enforce``, the default); ``[rate_limit]``
    holds the request budgets (see ``RateLimitConfig``).
    """

    # Prefix of every kernel object this daemon creates (netns ``tf-<id>``, veth ``tfh-<id>``, nft table,
    # cgroup): 1-5 lower-case letters/digits. Two daemons with different tags never touch each other's.
    tag: str = "tf"
    # Private range carved into one /30 per sandbox.
    subnet_pool: str = "10.201.0.0/16"
    # Keep IPv6 up inside sandboxes (a ULA address and a default route to the host) for agents that insist on
    # it. Every IPv6 packet is still refused, by nftables and by the eBPF lock; off means the stack is disabled.
    ipv6: bool = False
    # CA bundles the agent's clients carry instead of the system's (globs): inside the sandbox each existing
    # match is covered, read-only, by the bundle the agent trusts (system roots + the enforcer CA), so such a
    # client works unchanged. The system bundle and the usual Python package bundles are covered by default;
    # tf run also finds the bundles of the command's own venv, user site, .venv, node_modules and JDK
    # (sandbox.catrust): this list is for the rest.
    ca_overlays: tuple[str, ...] = DEFAULT_CA_OVERLAYS
    proxy_port: int = 8080
    transparent_port: int = 8081
    dns_port: int = 53
    # Account agents run as when ``tf run`` is invoked by root directly (no SUDO_UID): never uid 0.
    # "dynamic": a uid/gid of the sandbox's own, from 61184-65519, free in /etc/passwd, released at teardown.
    default_user: str = "dynamic"
    # The filesystem every agent sees, unless its gateway says otherwise ([sandbox] writable, hidden,
    # writable_cwd; see FsPolicy).
    fs: FsPolicy = field(default_factory=FsPolicy)
    # Upstream name overrides (GitHub Enterprise, split DNS, tests): host -> (address, port or None).
    resolve: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    # Extra PEM CA trusted for upstream TLS in addition to the public roots.
    extra_ca: str | None = None
    # Rows waiting for the writer before new requests are refused.
    queue_max: int = 10_000
    # When the traffic journal is flushed to disk: interval (every 0.2 s) | always (before each request is
    # forwarded) | none (the kernel's writeback). What a power loss may cost; a SIGKILL costs nothing in any.
    journal_sync: Literal["interval", "always", "none"] = "interval"
    # [enforcer] workers: enforcer processes serving the agents' connections. "auto" (the default): one per
    # core the daemon may run on. 1: the daemon alone (no other process). N > 1: the daemon plus N-1 worker
    # processes listening beside it; the daemon stays the only writer, and owns approvals, kill switches and
    # rate-limit counters. E.g. 2. Read the resolved count with ``worker_count``.
    workers: int | Literal["auto"] = "auto"
    # What one sandbox may take of the enforcer ([enforcer] max_connections_per_sandbox, max_held_per_sandbox,
    # idle_timeout, header_timeout, body_timeout, max_request_body; see SandboxLimits): the rest is left for the other sandboxes.
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    # [store] retention_days: traffic rows older than this many days are deleted in the background (0: kept
    # forever). Export them first (tf export --parquet) if they must be kept elsewhere.
    retention_days: int = 0
    connectors: tuple[ConnectorConfig, ...] = ()
    # The enforcement level of every gateway not given its own under [gateways.NAME].
    level: Level = "full_enforce"
    gateways: Mapping[str, GatewayConfig] = field(default_factory=dict)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    approvals: ApprovalsConfig = field(default_factory=ApprovalsConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)

    def fs_policy(self, gateway: str) -> dict[str, Any]:
        """The effective filesystem policy of ``gateway``, with where it was set (for messages)."""
        g = self.gateways.get(gateway)
        own = g is not None and g.fs is not None
        return self.fs.for_gateway(g.fs if g else None, f"[gateways.{gateway}]" if own else "[sandbox]")

    def levels(self) -> dict[str, Level]:
        """Gateway -> level, for the gateways that have their own."""
        return {n: g.level for n, g in self.gateways.items() if g.level is not None}

    def connector_set(self) -> ConnectorSet:
        return ConnectorSet((c.build() for c in self.connectors if not c.host_service),
                            local=(c.build() for c in self.connectors if c.host_service))

    def host_services(self) -> dict[int, ConnectorConfig]:
        """Sandbox port -> the connector of the host service agents reach there."""
        return {c.sandbox_port: c for c in self.connectors if c.host_service}

    def open_ports(self) -> dict[str, frozenset[int]]:
        return {c.name: frozenset(c.ports) for c in self.connectors if c.ports}


def _line_of(text: str, pattern: str, nth: int = 0) -> int | None:
    hits = [i + 1 for i, ln in enumerate(text.splitlines()) if re.match(pattern, ln.strip())]
    return hits[nth] if nth < len(hits) else (hits[0] if hits else None)


def _read(path: Path) -> str:
    try:
        return decode_utf8(path.read_bytes(), path)
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None


def decode_utf8(data: bytes, path: Path) -> str:
    """A configuration file's text; a byte that is not UTF-8 is refused with its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(path, line, f"not UTF-8: byte 0x{data[e.start]:02x} at column {column} (TOML files are "
                                      "UTF-8; save the file as UTF-8)") from None


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python < 3.14 only puts the position in the message: "... (at line 2, column 5)"
        m = re.search(r"\s*\(at line (\d+), column \d+\)$", str(e))
        line = getattr(e, "lineno", None) or (int(m.group(1)) if m else None)
        msg = getattr(e, "msg", None) or (str(e)[: m.start()] if m else str(e))
        raise ConfigError(path, line, f"not valid TOML: {msg}") from None


def parse_resolve(spec: str) -> dict[str, tuple[str, int | None]]:
    """``host=addr[:port],...`` (the TF_UPSTREAM_RESOLVE form)."""
    out: dict[str, tuple[str, int | None]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        host, sep, target = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: expected host=address[:port]")
        out[host.strip().lower()] = _parse_target(target.strip())
    return out


def _parse_target(target: str) -> tuple[str, int | None]:
    """``addr``, ``addr:port``, ``v6`` or ``[v6]:port``."""
    if target.startswith("["):
        addr, _, rest = target[1:].partition("]")
        port = rest.removeprefix(":")
    elif target.count(":") == 1:
        addr, _, port = target.partition(":")
    else:
        addr, port = target, ""
    ipaddress.ip_address(addr)  # raises ValueError with a clear message
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"port in {target!r} must be 1-65535")
    return addr, int(port) if port else None


def _format_target(addr: str, port: int | None) -> str:
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


MAX_WORKERS = 64


def worker_count(cfg: Config) -> int:
    """How many enforcer processes ``cfg`` asks for: ``auto`` is one per core this process may run on."""
    if cfg.workers == "auto":
        return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))
    return cfg.workers


def _int(d: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError(f"{key} must be an integer from {lo} to {hi}, got {v!r}")
    return v


LIMIT_KEYS = ("max_connections_per_sandbox", "max_held_per_sandbox", "idle_timeout", "header_timeout",
              "body_timeout", "max_request_body")
"""The ``[enforcer]`` keys of ``Config.limits``."""


def _seconds(d: Mapping[str, Any], key: str, default: float, hi: float) -> float:
    v = d.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.5 <= v <= hi:
        raise ValueError(f"{key} must be a number of seconds from 0.5 to {hi:g}, got {v!r}")
    return float(v)


def _limits(en: Mapping[str, Any]) -> SandboxLimits:
    """``[enforcer]``'s per-sandbox limits (defaults: ``SandboxLimits``)."""
    d = SandboxLimits()
    return SandboxLimits(max_connections=_int(en, "max_connections_per_sandbox", d.max_connections, 1, 1_000_000),
                         max_held=_int(en, "max_held_per_sandbox", d.max_held, 1, 100_000),
                         idle_timeout=_seconds(en, "idle_timeout", d.idle_timeout, 86_400),
                         header_timeout=_seconds(en, "header_timeout", d.header_timeout, 3_600),
                         body_timeout=_seconds(en, "body_timeout", d.body_timeout, 86_400),
                         max_request_body=_int(en, "max_request_body", d.max_request_body, 1024, 1 << 40))


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    return parse_config(_read(path), path, env)


def parse_config(text: str, path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Validate config text as if it were ``path`` (errors name that file)."""
    env = os.environ if env is None else env
    data = _parse_toml(text, path)
    section = "top level"
    try:
        section = "sandbox"
        sb = data.get("sandbox", {})
        tag = sb.get("tag", "tf")
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise ValueError(f"tag must be 1-5 lower-case letters/digits starting with a letter, got {tag!r}")
        pool = ipaddress.ip_network(sb.get("subnet_pool", "10.201.0.0/16"))
        if pool.version != 4 or not pool.is_private or pool.prefixlen > 28:
            raise ValueError(f"subnet_pool must be a private IPv4 range of /28 or larger, got {pool}")
        user = sb.get("default_user", "dynamic")
        ipv6 = sb.get("ipv6", False)
        if not isinstance(ipv6, bool):
            raise ValueError(f"ipv6 must be true or false, got {ipv6!r}")
        overlays = sb.get("ca_overlays", list(DEFAULT_CA_OVERLAYS))
        if not isinstance(overlays, list) or not all(isinstance(o, str) and o.startswith("/") for o in overlays):
            raise ValueError(f"ca_overlays must be a list of absolute paths or globs, got {overlays!r}")
        section = "enforcer"
        en = data.get("enforcer", {})
        ports = {k: _int(en, k, d, 1, 65535) for k, d in
                 (("proxy_port", 8080), ("transparent_port", 8081), ("dns_port", 53))}
        if len(set(ports.values())) != 3:
            raise ValueError("proxy_port, transparent_port and dns_port must differ")
        queue_max = _int(en, "queue_max", 10_000, 100, 10_000_000)
        limits = _limits(en)
        workers = en.get("workers", "auto")
        if workers != "auto" and (not isinstance(workers, int) or isinstance(workers, bool)
                                  or not 1 <= workers <= MAX_WORKERS):
            raise ValueError(f'workers must be "auto" or an integer from 1 to {MAX_WORKERS}, got {workers!r}')
        journal_sync = en.get("journal_sync", "interval")
        if journal_sync not in ("interval", "always", "none"):
            raise ValueError(f"journal_sync must be interval, always or none, got {journal_sync!r}")
        section = "store"
        st = data.get("store", {})
        if not isinstance(st, dict) or set(st) - {"retention_days"}:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(set(st) - {'retention_days'}))}; "
                             "known: retention_days" if isinstance(st, dict) else "[store] must be a table")
        retention_days = _int(st, "retention_days", 0, 0, 36_500)
        section = "upstream"
        up = data.get("upstream", {})
        resolve = {str(h).lower(): _parse_target(str(t)) for h, t in up.get("resolve", {}).items()}
        extra_ca = up.get("extra_ca")
        if env.get("TF_UPSTREAM_RESOLVE"):
            section = "TF_UPSTREAM_RESOLVE"
            resolve.update(parse_resolve(env["TF_UPSTREAM_RESOLVE"]))
        if env.get("TF_UPSTREAM_CA"):
            extra_ca = env["TF_UPSTREAM_CA"]
        if extra_ca is not None and not Path(extra_ca).is_file():
            raise ValueError(f"extra_ca {extra_ca} is not a readable file")
    except (ValueError, TypeError, AttributeError) as e:
        line = _line_of(text, rf"\[{re.escape(section)}\]") if text else None
        raise ConfigError(path, line, f"[{section}] {e}") from None
    fs = _parse_fs(data.get("sandbox", {}), text, path, r"\[sandbox\]", "sandbox")
    connectors = []
    claimed: dict[int, str] = {}  # sandbox port -> the host-service connector that has it
    for i, (name, c) in enumerate(data.get("connectors", {}).items()):
        try:
            validate_name("connector name", name)
            if not isinstance(c, dict) or c.get("type") not in KNOWN_TYPES:
                got = c.get("type") if isinstance(c, dict) else c
                raise ValueError(f"type must be one of {', '.join(sorted(KNOWN_TYPES))}, got {got!r}")
            domains = tuple(str(d).lower() for d in c.get("domains", ()))
            for d in domains:
                if not _HOST.match(d):
                    raise ValueError(f"domain {d!r} is not a host name")
            extra = c.get("ports", [])
            if not isinstance(extra, list) or not all(
                    isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in extra):
                raise ValueError(f"ports must be a list of port numbers, got {extra!r}")
            urls = c.get("urls", [])
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise ValueError(f"urls must be a list of URLs, got {urls!r}")
            base_path = c.get("base_path", "")
            if not isinstance(base_path, str):
                raise ValueError(f"base_path must be a string, got {base_path!r}")
            credential = c.get("credential", False)
            if not isinstance(credential, bool):
                raise ValueError(f"credential must be true or false, got {credential!r}")
            env_names = c.get("env", [])
            if not isinstance(env_names, list) or not all(isinstance(n, str) and _ENV.match(n) for n in env_names):
                raise ValueError(f"env must be a list of environment variable names, got {env_names!r}")
            taken = sorted(n for n in env_names if n.upper() in _SANDBOX_ENV or n.startswith(("LD_", "TF_")))
            if taken:
                raise ValueError(f"env names {', '.join(taken)} are the sandbox's own; choose other names")
            allow_list = c.get("allow_list", "")
            if not isinstance(allow_list, str) or (allow_list and not allow_list.startswith("/")):
                raise ValueError(f"allow_list must be the absolute path of a file, got {allow_list!r}")
            service, sandbox_port = check_service(c, ports, str(pool), claimed)
            cc = ConnectorConfig(name, c["type"], domains, tuple(sorted(set(extra))), tuple(urls), base_path,
                                 credential, tuple(env_names), allow_list, service, sandbox_port)
            if not isinstance(cc.build(), PackageConnector) and allow_list:
                raise ValueError("allow_list is for the package registries (pypi, npm, crates, gomod) only")
        except ValueError as e:
            line = _key_line(text, rf"\[connectors\.{re.escape(name)}\]", getattr(e, "key", None))
            raise ConfigError(path, line, f"[connectors.{name}] {e}") from None
        if service:
            claimed[sandbox_port] = name
        connectors.append(cc)
    level, gateways, rate_limit = _parse_brakes(data, text, path, fs)
    cfg = Config(tag=tag, subnet_pool=str(pool), ipv6=ipv6, ca_overlays=tuple(overlays), default_user=str(user), fs=fs,
                 resolve=resolve, extra_ca=extra_ca,
                 queue_max=queue_max, journal_sync=journal_sync, workers=workers, retention_days=retention_days, limits=limits,
                 connectors=tuple(connectors), level=level,
                 gateways=gateways,
                 rate_limit=rate_limit, approvals=_parse_approvals(data, text, path),
                 dashboard=_parse_dashboard(data, text, path), **ports)
    try:
        cfg.connector_set()
    except ValueError as e:
        raise ConfigError(path, None, str(e)) from None
    return cfg


def _parse_fs(table: Any, text: str, path: Path, header: str, where: str) -> FsPolicy:
    """``[sandbox]``'s filesystem policy; an error points at its key's line."""
    try:
        return parse_fs(table if isinstance(table, dict) else {}, path.parent)
    except FsPolicyError as e:
        raise ConfigError(path, _key_line(text, header, e.key), f"[{where}] {e}") from None


class _Bad(ValueError):
    """A setting that does not validate; ``key`` is the key to point the line at (None: the table)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _key_line(text: str, header: str, key: str | None, nth: int = 0) -> int | None:
    """The line of ``key`` in the ``nth`` table whose header matches the regex ``header``, else the header's."""
    lines = [ln.strip() for ln in text.splitlines()]
    heads = [i for i, ln in enumerate(lines) if re.match(header + r"\s*(#.*)?$", ln)]
    if not heads:
        return None
    start = heads[min(nth, len(heads) - 1)]
    for j in range(start + 1, len(lines) if key else start + 1):
        if lines[j].startswith("["):
            break
        if re.match(rf"{re.escape(key or '')}\s*=", lines[j]):
            return j + 1
    return start + 1


def _table(value: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"must be a table, got {value!r}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _Bad(f"unknown setting {unknown[0]!r} (known: {', '.join(known)})", unknown[0])
    return value


def _level(value: Any) -> Level:
    if value not in LEVELS:
        raise _Bad(f"level must be one of {', '.join(LEVELS)}, got {value!r}", "level")
    return cast(Level, value)


def _per_minute(table: Mapping[str, Any], default: int | None) -> int:
    if default is None and "per_minute" not in table:
        raise _Bad("per_minute is required")
    try:
        return _int(table, "per_minute", default or 0, 1, PER_MINUTE_MAX)
    except ValueError as e:
        raise _Bad(str(e), "per_minute") from None


def _tables(value: Any, key: str | None = None) -> dict[str, Any]:
    """A table of tables keyed by name (``[gateways.NAME]``); ``key`` names it inside its table."""
    if not isinstance(value, dict):
        raise _Bad(f"{key + ' ' if key else ''}must be a table of [NAME] tables, got {value!r}", key)
    return value


def _gateway_name(name: Any, key: str | None = None) -> str:
    if not isinstance(name, str):
        raise _Bad(f"gateway must be a name, got {name!r}", key)
    try:
        return validate_name("gateway", name)
    except PolicyError as e:
        raise _Bad(str(e), key) from None


def _parse_brakes(data: Mapping[str, Any], text: str, path: Path, fs: FsPolicy
                  ) -> tuple[Level, dict[str, GatewayConfig], RateLimitConfig]:
    """``[enforcer] level``, ``[gateways.NAME]`` and ``[rate_limit]``; errors point at the key's line."""
    where, header = "enforcer", r"\[enforcer\]"
    nth = 0
    try:
        en = data.get("enforcer", {})
        level = _level(en.get("level", "full_enforce")) if isinstance(en, dict) else "full_enforce"
        where, header = "gateways", r"\[gateways[.\]]"
        gateways: dict[str, GatewayConfig] = {}
        for name, g in _tables(data.get("gateways", {})).items():
            where, header = f"gateways.{name}", rf"\[gateways\.{re.escape(name)}\]"
            _gateway_name(name)
            g = _table(g, ("level", "environment", *FS_KEYS))
            env = g.get("environment", "")
            if not isinstance(env, str) or (env and not _ENV_NAME.match(env)):
                raise _Bad(f"environment must be a short name (prod, staging), got {env!r}", "environment")
            try:
                own = parse_fs(g, path.parent, fs.for_gateway(None, "")["hidden"]) if set(g) & set(FS_KEYS) else None
            except FsPolicyError as e:
                raise _Bad(str(e), e.key) from None
            gateways[name] = GatewayConfig(_level(g["level"]) if "level" in g else None, env, own)
        where, header = "rate_limit", r"\[rate_limit\]"
        rl = _table(data.get("rate_limit", {}), ("per_minute", "gateways", "actions"))
        per_minute = _per_minute(rl, 120)
        limits: dict[str, int] = {}
        for name, g in _tables(rl.get("gateways", {}), "gateways").items():
            where, header = f"rate_limit.gateways.{name}", rf"\[rate_limit\.gateways\.{re.escape(name)}\]"
            limits[_gateway_name(name)] = _per_minute(_table(g, ("per_minute",)), None)
        where, header = "rate_limit.actions", r"\[\[rate_limit\.actions\]\]"
        rows = rl.get("actions", [])
        if not isinstance(rows, list):
            raise _Bad("actions must be an array of tables ([[rate_limit.actions]])")
        actions: list[ActionLimit] = []
        for nth, row in enumerate(rows):
            row = _table(row, ("gateway", "action", "per_minute"))
            gw = _gateway_name(row["gateway"], "gateway") if "gateway" in row else ""
            pattern = row.get("action")
            if not isinstance(pattern, str):
                raise _Bad("action is required: an action (stripe.refund.create), a prefix (github.pr.*) or *")
            try:
                validate_pattern(pattern)
            except PolicyError as e:
                raise _Bad(str(e), "action") from None
            if any((a.gateway, a.action) == (gw, pattern) for a in actions):
                raise _Bad(f"a rule for {pattern} ({'gateway ' + gw if gw else 'every gateway'}) is already "
                           "above", "action")
            actions.append(ActionLimit(pattern, _per_minute(row, None), gw))
    except _Bad as e:
        line = _key_line(text, header, e.key, nth) or _key_line(
            text, r"\[+" + re.escape(where.split(".")[0]) + r"[.\]].*", None)
        raise ConfigError(path, line, f"[{where}] {e}") from None
    return level, gateways, RateLimitConfig(per_minute, limits, tuple(actions))


def _parse_approvals(data: Mapping[str, Any], text: str, path: Path) -> ApprovalsConfig:
    ap = data.get("approvals", {})
    try:
        if not isinstance(ap, dict):
            raise ValueError("must be a table")
        known = ("timeout", "per_gateway", "notify_url", "slack_signing_secret")
        unknown = sorted(set(ap) - set(known))
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        url = ap.get("notify_url", "")
        if not isinstance(url, str) or (url and not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?/\S*$", url)):
            # never echoed: a webhook URL is a secret (its path is the credential)
            raise ValueError("notify_url must be an https:// URL (https://host/path, no spaces)")
        secret = ap.get("slack_signing_secret", "")
        if not isinstance(secret, str) or (secret and not re.match(r"^[A-Za-z0-9]{16,128}$", secret)):
            # never echoed: the message names the rule, not the value
            raise ValueError("slack_signing_secret must be the Slack app's signing secret (16-128 letters and "
                             "digits)")
        return ApprovalsConfig(_int(ap, "timeout", 300, 1, 7 * 24 * 3600), _int(ap, "per_gateway", 50, 1, 10_000),
                               url, secret)
    except ValueError as e:
        raise ConfigError(path, _line_of(text, r"\[approvals\]"), f"[approvals] {e}") from None


def _parse_dashboard(data: Mapping[str, Any], text: str, path: Path) -> DashboardConfig:
    db = data.get("dashboard", {})
    try:
        if not isinstance(db, dict):
            raise ValueError("must be a table")
        unknown = sorted(set(db) - {"enabled", "listen", "org_name"})
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: enabled, listen, org_name")
        org = db.get("org_name", "")
        if not isinstance(org, str) or len(org) > 80 or any(ord(ch) < 32 for ch in org):
            raise ValueError("org_name must be text of at most 80 characters on one line")
        enabled = db.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be true or false, got {enabled!r}")
        listen = db.get("listen", "127.0.0.1:3000")
        host, sep, port = str(listen).rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen must be ADDRESS:PORT, got {listen!r}")
        if not ipaddress.ip_address(host.strip("[]")).is_loopback:
            raise ValueError(f"listen must be a loopback address (the dashboard speaks plain http), got {listen!r}")
        return DashboardConfig(enabled, host.strip("[]"), int(port), org.strip())
    except ValueError as e:
        raise ConfigError(path, _line_of(text, r"\[dashboard\]"), f"[dashboard] {e}") from None


def dump_config(cfg: Config) -> str:
    """The whole configuration as TOML (what ``tf connector`` writes back)."""
    data: dict[str, Any] = {
        "sandbox": {"tag": cfg.tag, "subnet_pool": cfg.subnet_pool, "ipv6": cfg.ipv6,
                    **({"ca_overlays": list(cfg.ca_overlays)} if cfg.ca_overlays != DEFAULT_CA_OVERLAYS else {}),
                    "default_user": cfg.default_user, **cfg.fs.dump()},
        "enforcer": {"proxy_port": cfg.proxy_port, "transparent_port": cfg.transparent_port,
                     "dns_port": cfg.dns_port, "queue_max": cfg.queue_max,
                     **({"journal_sync": cfg.journal_sync} if cfg.journal_sync != "interval" else {}),
                     **({"workers": cfg.workers} if cfg.workers != "auto" else {}),
                     **_limit_settings(cfg.limits)},
    }
    if cfg.retention_days:
        data["store"] = {"retention_days": cfg.retention_days}
    if cfg.resolve or cfg.extra_ca:
        up: dict[str, Any] = {}
        if cfg.resolve:
            up["resolve"] = {h: _format_target(a, p) for h, (a, p) in cfg.resolve.items()}
        if cfg.extra_ca:
            up["extra_ca"] = cfg.extra_ca
        data["upstream"] = up
    if cfg.level != "full_enforce":
        data["enforcer"]["level"] = cfg.level
    if cfg.rate_limit != RateLimitConfig():
        rl = cfg.rate_limit
        data["rate_limit"] = {"per_minute": rl.per_minute}
        if rl.gateways:
            data["rate_limit"]["gateways"] = {n: {"per_minute": v} for n, v in rl.gateways.items()}
        if rl.actions:
            data["rate_limit"]["actions"] = [{**({"gateway": a.gateway} if a.gateway else {}), "action": a.action,
                                              "per_minute": a.per_minute} for a in rl.actions]
    if cfg.approvals != ApprovalsConfig():
        a = cfg.approvals
        data["approvals"] = {"timeout": a.timeout, "per_gateway": a.per_gateway,
                             **({"notify_url": a.notify_url} if a.notify_url else {}),
                             **({"slack_signing_secret": a.slack_signing_secret} if a.slack_signing_secret else {})}
    if cfg.dashboard != DashboardConfig():
        h = cfg.dashboard.host
        data["dashboard"] = {"enabled": cfg.dashboard.enabled,
                             "listen": f"[{h}]:{cfg.dashboard.port}" if ":" in h else f"{h}:{cfg.dashboard.port}",
                             **({"org_name": cfg.dashboard.org_name} if cfg.dashboard.org_name else {})}
    if cfg.gateways:
        data["gateways"] = {n: {**({"level": g.level} if g.level else {}),
                                **({"environment": g.environment} if g.environment else {}),
                                **(g.fs.dump() if g.fs else {})}
                            for n, g in cfg.gateways.items()}
    if cfg.connectors:
        data["connectors"] = {
            c.name: {"type": c.type, **({"domains": list(c.domains)} if c.domains else {}),
                     **({"ports": list(c.ports)} if c.ports else {}), **({"urls": list(c.urls)} if c.urls else {}),
                     **({"base_path": c.base_path} if c.base_path else {}),
                     **({"credential": True} if c.credential else {}),
                     **({"allow_list": c.allow_list} if c.allow_list else {}),
                     **({"env": list(c.env)} if c.env else {}), **_service_settings(c)} for c in cfg.connectors
        }
    return "# TrustFence daemon configuration\n" + tomli_w.dumps(data)


def _limit_settings(limits: SandboxLimits) -> dict[str, Any]:
    """The per-sandbox limits that differ from the defaults, as ``[enforcer]`` keys."""
    d = SandboxLimits()
    pairs = (("max_connections_per_sandbox", limits.max_connections, d.max_connections),
             ("max_held_per_sandbox", limits.max_held, d.max_held),
             ("idle_timeout", limits.idle_timeout, d.idle_timeout),
             ("header_timeout", limits.header_timeout, d.header_timeout),
             ("body_timeout", limits.body_timeout, d.body_timeout),
             ("max_request_body", limits.max_request_body, d.max_request_body))
    return {k: int(v) if float(v).is_integer() else v for k, v, default in pairs if v != default}


def _service_settings(c: ConnectorConfig) -> dict[str, Any]:
    if not c.host_service:
        return {}
    default = not c.sandbox_port or c.host_service.endswith(f":{c.sandbox_port}")  # the service's own port
    return {"host_service": c.host_service, **({} if default else {"sandbox_port": c.sandbox_port})}


def with_connector(cfg: Config, conn: ConnectorConfig) -> Config:
    others = tuple(c for c in cfg.connectors if c.name != conn.name)
    return replace(cfg, connectors=(*others, conn))


def load_permissions(path: Path, connectors: ConnectorSet) -> tuple[Permission, ...]:
    return parse_permissions(_read(path), path, connectors)


def parse_permissions(text: str, path: Path, connectors: ConnectorSet) -> tuple[Permission, ...]:
    """Validate permissions text as if it were ``path`` (errors name that file and the line)."""
    data = _parse_toml(text, path)
    rows = data.get("permission", [])
    if not isinstance(rows, list):
        raise ConfigError(path, _line_of(text, r"permission\s*="), "permission must be an array of tables")
    out: list[Permission] = []
    for i, row in enumerate(rows):
        try:
            out.append(check_permission(row, connectors))
        except PolicyError as e:
            raise ConfigError(path, _line_of(text, r"\[\[permission\]\]", i), str(e)) from None
    return tuple(out)


def check_permission(row: Mapping[str, Any], connectors: ConnectorSet) -> Permission:
    """Validate one permission against the configured connectors and their action catalogues."""
    if not isinstance(row, Mapping):
        raise PolicyError("a permission must be a table with gateway, connector, action, decision")
    missing = [k for k in ("gateway", "connector", "action", "decision") if not isinstance(row.get(k), str)]
    if missing:
        raise PolicyError(f"permission is missing {', '.join(missing)}")
    gateway = validate_name("gateway", row["gateway"])
    conn = connectors.by_name.get(row["connector"])
    if conn is None:
        known = ", ".join(sorted(connectors.by_name)) or "none configured; add one with tf connector add"
        raise PolicyError(f"unknown connector {row['connector']!r}; known: {known}")
    if row["decision"] not in VERDICTS:
        raise PolicyError(f"decision must be one of {', '.join(VERDICTS)}, got {row['decision']!r}")
    action = validate_pattern(row["action"], conn.catalogue)
    return Permission(gateway, conn.name, action, row["decision"])


def dump_permissions(perms: tuple[Permission, ...]) -> str:
    """One ``[[permission]]`` table per row: a change is a small diff in review, and errors have a line."""
    if not perms:
        return "# no permissions: everything is denied\n"
    return "\n".join("[[permission]]\n" + tomli_w.dumps({"gateway": p.gateway, "connector": p.connector,
                                                        "action": p.action, "decision": p.decision})
                     for p in perms)


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write through a temp file, fsync and rename: a reader sees the old file or the new, never half."""
    write_atomic(path, text.encode(), mode)
