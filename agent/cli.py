"""The ``tf`` command line. Commands are thin: they call the daemon and print. Exit codes are decided in
one place (``main``): 0 ok, 1 denied or failed check, 2 usage, configuration or internal error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from trustfence.agent.ipc import Client, DaemonError, DaemonUnavailable
from trustfence.agent.paths import Paths, paths
from trustfence.agent.runner import RunError, resolve_user, run_agent

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="TrustFence: a host firewall for AI agents.")
daemon_app = typer.Typer(help="Run or stop the root daemon (tf daemon | tf daemon stop).")
connector_app = typer.Typer(no_args_is_help=True, help="Configure connectors (which hosts mean what).")
permissions_app = typer.Typer(no_args_is_help=True, help="Allow or deny actions per gateway.")
app.add_typer(daemon_app, name="daemon")
app.add_typer(connector_app, name="connector")
app.add_typer(permissions_app, name="permissions")
killswitch_app = typer.Typer(no_args_is_help=True, help="Stop a scope at once: all, gateway:NAME or connector:NAME.")
app.add_typer(killswitch_app, name="kill-switch")
gateway_app = typer.Typer(no_args_is_help=True, help="Gateways: enforcement level (monitor, soft_enforce, ...).")
app.add_typer(gateway_app, name="gateway")
approvals_app = typer.Typer(no_args_is_help=True, help="Requests held for a human: list, show, approve, deny.")
app.add_typer(approvals_app, name="approvals")
vault_app = typer.Typer(no_args_is_help=True, help="The credential vault: status and key rotation.")
app.add_typer(vault_app, name="vault")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise CliError(f"{what} needs root: run it with sudo")


def _start_daemon(p: Paths) -> None:
    _require_root("starting the daemon")
    from trustfence.agent.setup import ensure_state

    ensure_state(p)
    with open(p.log, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "trustfence.agent.cli", "daemon"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
    err.print(f"tf: started the TrustFence daemon (pid {proc.pid}, log {p.log})", highlight=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = p.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise CliError("the daemon exited at start:\n  " + "\n  ".join(tail))
        try:
            Client(p.socket, timeout=5).close()
            return
        except DaemonUnavailable:
            time.sleep(0.1)
    raise CliError(f"the daemon did not answer within 60 s (see {p.log})")


def _client(start: bool = True) -> Client:
    p = paths()
    try:
        return Client(p.socket)
    except DaemonUnavailable:
        if not start:
            raise CliError("the TrustFence daemon is not running") from None
        if os.geteuid() != 0:
            raise CliError("the TrustFence daemon is not running; start it with: sudo tf daemon") from None
        _start_daemon(p)
        return Client(p.socket)


def _call(op: str, **args: Any) -> dict[str, Any]:
    with _client() as c:
        return c.call(op, **args)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


# -- init / daemon / status ---------------------------------------------------------------------------
@app.command()
def init() -> None:
    """Create the state directory, a default config, the enforcer CA and the vault key (idempotent)."""
    _require_root("tf init")
    from trustfence.agent.setup import ensure_state
    from trustfence.vault import VaultError

    p = paths()
    try:
        created = ensure_state(p)
    except VaultError as e:
        raise CliError(str(e)) from None
    for c in created:
        out.print(f"created {c}", highlight=False)
    out.print(f"TrustFence state in {p.home} is ready", highlight=False)


@daemon_app.callback(invoke_without_command=True)
def daemon(ctx: typer.Context) -> None:
    """Run the daemon in the foreground (systemd runs exactly this)."""
    if ctx.invoked_subcommand is not None:
        return
    _require_root("tf daemon")
    import asyncio
    import logging

    from trustfence.agent.config import ConfigError
    from trustfence.agent.daemon import AlreadyRunning, Daemon
    from trustfence.vault import VaultError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mitmproxy.proxy.server").setLevel(logging.WARNING)  # one line per connection otherwise
    try:
        asyncio.run(Daemon(paths()).serve())
    except AlreadyRunning as e:
        raise CliError(str(e)) from None
    except ConfigError as e:
        raise CliError(f"config error: {e}") from None
    except VaultError as e:
        raise CliError(f"vault error: {e}") from None


@daemon_app.command("stop")
def daemon_stop() -> None:
    """Stop the daemon: every sandbox is torn down first."""
    p = paths()
    try:
        c = Client(p.socket)
    except DaemonUnavailable:
        out.print("the daemon is not running")
        return
    with c:
        pid = c.call("stop")["pid"]
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    out.print(f"daemon stopped (pid {pid})")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Daemon, sandboxes, connectors and traffic at a glance."""
    s = _call("status")
    s.pop("ok", None)
    if as_json:
        _print_json(s)
        return
    out.print(f"daemon pid {s['pid']}  state {s['home']}  tag {s['tag']}", highlight=False)
    out.print(f"connectors: {', '.join(s['connectors']) or 'none'}  permissions: {s['permissions']}  "
              f"traffic rows: {s['traffic_rows']}  eBPF lock: {s['ebpf']}", highlight=False)
    for ks in s.get("kill_switches", []):
        out.print(f"KILL SWITCH {ks['scope']} since {ks['since']}: {ks['reason']}", highlight=False, markup=False)
    for sb in s["sandboxes"]:
        counts = "  ".join(f"{k}={v}" for k, v in sb["counters"].items())
        out.print(f"  sandbox {sb['name']}  gateway {sb['gateway']}  agent {sb['agent_addr']}  uid {sb['uid']}  "
                  f"{counts}", highlight=False)


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check every prerequisite on this host and say how to fix what is missing (exit 1 if a required one fails)."""
    from dataclasses import asdict

    from trustfence.agent.doctor import run_checks

    checks = run_checks()
    if as_json:
        _print_json([asdict(c) for c in checks])
    else:
        for c in checks:
            mark = "[green]ok[/]  " if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]warn[/]")
            out.print(f"{mark} {c.name:<15} {c.detail}" + (f"\n     fix: {c.fix}" if c.fix else ""),
                      highlight=False)
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(1)


# -- run -------------------------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Gateway name: permissions are granted to it.")],
    user: Annotated[Optional[str], typer.Option("--user", help="Run the agent as this user.")] = None,
    nftables_only: Annotated[bool, typer.Option(
        "--nftables-only", help="Run even when the eBPF lock cannot be loaded (nftables alone).")] = False,
) -> None:
    """Run CMD in a sandbox whose only way out is the enforcer: tf run --name Bot -- CMD ..."""
    cmd = list(ctx.args)
    if not cmd:
        raise CliError("nothing to run: tf run --name NAME -- COMMAND [ARGS...]")
    _require_root("tf run")
    with _client() as c:
        try:  # the daemon has the configuration loaded: ask it rather than parse it here
            agent = resolve_user(user, os.environ, str(c.call("ping")["default_user"]))
        except RunError as e:
            raise CliError(str(e)) from None
        code = run_agent(c, name, agent, cmd, nftables_only)
    raise typer.Exit(code)


# -- logs --------------------------------------------------------------------------------------------------
def _log_line(r: dict[str, Any]) -> str:
    ts = str(r["ts"])[:19].replace("T", " ")
    where = f"{r['host']}{r['path']}"
    who = f"{r['comm']}[{r['pid']}]" if r.get("comm") else "-"
    return (f"{ts}  {r['gateway']:<10} {r['decision']:<8} {r['status']:>3}  {r['action'] or '-':<24} "
            f"{r['method']:<6} {where}  {who}  [{r['reason']}]")


@app.command()
def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    gateway: Annotated[Optional[str], typer.Option("--gateway")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Recent traffic, newest last."""
    after = 0
    with _client() as c:
        while True:
            rows = c.call("logs", limit=limit, gateway=gateway, after_seq=after)["rows"]
            for r in rows:
                print(json.dumps(r, default=str) if as_json else _log_line(r), flush=True)
                after = max(after, int(r["seq"]))
            if not follow:
                return
            limit = 1000
            time.sleep(0.5)


# -- connectors -------------------------------------------------------------------------------------------
@connector_app.command("add")
def connector_add(
    type_: Annotated[str, typer.Argument(
        metavar="TYPE", help="anthropic | generic | github | mcp | openai | slack | stripe | webhook")],
    name: Annotated[Optional[str], typer.Option("--name", help="Defaults to the type.")] = None,
    domains: Annotated[Optional[str], typer.Option(
        "--domains", help="Comma-separated hosts (required for generic; overrides a type's default hosts).")] = None,
    url: Annotated[Optional[list[str]], typer.Option(
        "--url", help="The MCP server's endpoint, or a webhook URL (repeatable).")] = None,
    base_path: Annotated[str, typer.Option("--base-path", help="GitHub Enterprise API prefix: /api/v3.")] = "",
    ports: Annotated[Optional[str], typer.Option(
        "--ports", help="Comma-separated ports to open beyond 443 and 80.")] = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", help="The real credential (visible in shell history: prefer --token-stdin).")] = None,
    token_env: Annotated[Optional[str], typer.Option(
        "--token-env", metavar="VAR", help="Read the credential from this environment variable.")] = None,
    token_stdin: Annotated[bool, typer.Option(
        "--token-stdin", help="Read the credential from standard input (the default on a terminal).")] = False,
    gateways: Annotated[Optional[str], typer.Option(
        "--gateways", help="Comma-separated gateways that may use the credential (default: all).")] = None,
    header: Annotated[Optional[str], typer.Option(
        "--header", help="generic/webhook: header that carries the credential (default Authorization).")] = None,
    prefix: Annotated[Optional[str], typer.Option(
        "--prefix", help="generic/webhook: text before the credential (default 'Bearer ' for Authorization).")] = None,
    query_param: Annotated[Optional[str], typer.Option(
        "--query-param", help="generic/webhook: send the credential as this query parameter instead.")] = None,
    env: Annotated[Optional[str], typer.Option(
        "--env", help="Comma-separated variables that hold the agent's placeholder (default: the SDKs').")] = None,
) -> None:
    """Add (or replace) a connector, and seal its credential in the vault."""
    doms = [d.strip() for d in (domains or "").split(",") if d.strip()]
    try:
        port_list = [int(p) for p in (ports or "").split(",") if p.strip()]
    except ValueError:
        raise CliError(f"--ports must be comma-separated numbers, got {ports!r}") from None
    secret = _read_token(token, token_env, token_stdin, name or type_)
    r = _call("connector.add", type=type_, name=name, domains=doms, urls=url or [], base_path=base_path,
              ports=port_list, token=secret, gateways=_csv(gateways), header=header, prefix=prefix,
              query_param=query_param, env=_csv(env))
    sealed = f"; credential sealed (fingerprint {r['fingerprint']}, version {r['version']})" if secret else ""
    out.print(f"connector {r['connector']} configured{sealed}", highlight=False)


def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _read_token(token: str | None, token_env: str | None, token_stdin: bool, name: str) -> str | None:
    """The credential from exactly one source, checked here so a bad one never travels; None for none."""
    from trustfence.vault import InvalidSecret, clean_token, validate_token

    given = [f for f, v in (("--token", token is not None), ("--token-env", token_env is not None),
                            ("--token-stdin", token_stdin)) if v]
    if len(given) > 1:
        raise CliError(f"give the credential one way, not {' and '.join(given)}")
    try:
        if token is not None:
            return validate_token(token)
        if token_env is not None:
            if token_env not in os.environ:
                raise CliError(f"environment variable {token_env} is not set (with sudo, use sudo -E or "
                               "--token-stdin)")
            return clean_token(os.environ[token_env])
        if token_stdin or sys.stdin.isatty():
            if sys.stdin.isatty():
                import getpass

                text = getpass.getpass(f"credential for {name} ({'required' if token_stdin else 'empty for none'}): ")
                if not text and not token_stdin:
                    return None
                return validate_token(text)
            return clean_token(sys.stdin.read(65536))
    except InvalidSecret as e:
        raise CliError(f"credential refused, nothing changed: {e}") from None
    return None


@connector_app.command("actions")
def connector_actions(
    type_: Annotated[str, typer.Argument(metavar="TYPE")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The catalogue of a connector type: every action with its method, path and risk."""
    from trustfence.connectors.catalogue import catalogue

    try:
        rows = catalogue(type_)
    except ValueError as e:
        raise CliError(str(e)) from None
    if as_json:
        _print_json([{"action": r.action, "method": r.method, "path": r.path, "risk": r.risk} for r in rows])
        return
    t = Table("action", "method", "path", "risk")
    for r in rows:
        t.add_row(r.action, r.method, r.path, r.risk)
    out.print(t)


@connector_app.command("list")
def connector_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Configured connectors; a credential shows as its fingerprint, never its value."""
    reply = _call("connector.list")
    rows = reply["connectors"]
    if as_json:
        _print_json(rows)
        return
    t = Table("name", "type", "hosts", "actions", "credential")
    for r in rows:
        cred = r["credential"] + (f" ({', '.join(r['credential_gateways'])})" if r["credential_gateways"] else "")
        t.add_row(r["name"], r["type"], ", ".join(r["hosts"]), str(r["actions"]), cred or "-")
    out.print(t)
    if reply["vault_error"]:
        err.print(f"vault unavailable: {reply['vault_error']}", highlight=False, markup=False)


@connector_app.command("remove")
def connector_remove(name: str) -> None:
    _call("connector.remove", name=name)
    out.print(f"connector {name} removed", highlight=False)


# -- permissions ------------------------------------------------------------------------------------------
@permissions_app.command("set")
def permissions_set(
    gateway: Annotated[str, typer.Option("--gateway")],
    connector: Annotated[str, typer.Option("--connector")],
    action: Annotated[str, typer.Option("--action", help="github.pr.merge | github.pr.* | *")],
    decision: Annotated[str, typer.Option("--decision", help="allow | deny | require_approval")],
) -> None:
    """Set the decision for a gateway, connector and action pattern (replaces the same pattern)."""
    r = _call("permissions.set", gateway=gateway, connector=connector, action=action, decision=decision)
    out.print(f"{decision} {gateway}/{connector}/{action} ({r['rule_id']})", highlight=False)


@permissions_app.command("list")
def permissions_list(
    gateway: Annotated[Optional[str], typer.Option("--gateway")] = None,
    connector: Annotated[Optional[str], typer.Option("--connector")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    rows = _call("permissions.list", gateway=gateway, connector=connector)["permissions"]
    if as_json:
        _print_json(rows)
        return
    t = Table("gateway", "connector", "action", "decision")
    for r in rows:
        t.add_row(r["gateway"], r["connector"], r["action"], r["decision"])
    out.print(t)


@permissions_app.command("remove")
def permissions_remove(
    gateway: Annotated[str, typer.Option("--gateway")],
    connector: Annotated[str, typer.Option("--connector")],
    action: Annotated[str, typer.Option("--action")],
) -> None:
    _call("permissions.remove", gateway=gateway, connector=connector, action=action)
    out.print(f"removed {gateway}/{connector}/{action}", highlight=False)


# -- vault ------------------------------------------------------------------------------------------------
@vault_app.command("status")
def vault_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The master key's id and source, and every sealed credential's fingerprint (never a value)."""
    r = _call("vault.status")
    if as_json:
        _print_json(r)
        return
    out.print(f"key {r['key_id'] or '-'} from {r['key_source'] or '-'}", highlight=False)
    t = Table("connector", "type", "hosts", "gateways", "version", "updated", "fingerprint", "status")
    for e in r["entries"]:
        t.add_row(e["name"], e["type"], ", ".join(e["hosts"]), ", ".join(e["gateways"]) or "all",
                  str(e["version"]), e["updated"], e["fingerprint"], "cannot be opened" if e["error"] else "ok")
    out.print(t)
    broken = [e for e in r["entries"] if e["error"]]
    for e in broken:
        err.print(f"{e['name']}: {e['error']}", highlight=False, markup=False)
    if r["error"] or broken:
        raise CliError(r["error"] or f"{len(broken)} credential(s) cannot be opened", code=1)


@vault_app.command("rotate")
def vault_rotate() -> None:
    """Re-seal every credential under a new random master key; the old key is removed."""
    r = _call("vault.rotate")
    out.print(f"vault re-sealed: key {r['old_key_id']} -> {r['key_id']} ({r['entries']} credential(s))",
              highlight=False)


@permissions_app.command("preset")
def permissions_preset(
    gateway: Annotated[str, typer.Option("--gateway")],
    connector: Annotated[str, typer.Option("--connector")],
    preset: Annotated[str, typer.Argument(metavar="PRESET", help="allow-all | read-only | require-approval")],
) -> None:
    """Replace GATEWAY's permissions on CONNECTOR with a preset (read-only: every low-risk action it knows)."""
    r = _call("permissions.preset", gateway=gateway, connector=connector, preset=preset)
    out.print(f"{gateway}/{connector}: {preset} ({r['permissions']} permission(s))", highlight=False)


@permissions_app.command("export")
def permissions_export() -> None:
    """Every permission and policy as one TOML document (for git, review, another host)."""
    sys.stdout.write(_call("permissions.export")["text"])


@permissions_app.command("import")
def permissions_import(file: Annotated[str, typer.Argument(metavar="FILE", help="A document from export; - for stdin.")]) -> None:
    """Replace every permission and policy with FILE's, validated whole first (file:line: reason, exit 2)."""
    try:
        text = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {file}: {e}") from None
    r = _call("permissions.import", text=text, name=os.path.abspath(file) if file != "-" else "<stdin>")
    out.print(f"imported {r['permissions']} permission(s) and {r['policies']} policies", highlight=False)


@app.command()
def audit(
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Changes to what is enforced: who, what, before and after (hash-chained; exit 1 if the chain is broken)."""
    r = _call("audit", limit=limit)
    for e in r["events"]:
        if as_json:
            print(json.dumps(e))
        else:
            print(f"{e['ts']}  {e['who']:<16} {e['what']}  before={json.dumps(e['before'])} "
                  f"after={json.dumps(e['after'])}")
    if r["broken"]:
        raise CliError(f"the audit log was tampered with: {r['broken']}", code=1)


# -- approvals --------------------------------------------------------------------------------------------
def _approval_line(a: dict[str, Any]) -> list[str]:
    left = max(0, round(a["expires"] - time.time())) if a["state"] == "pending" else 0
    return [a["id"], a["state"], a["gateway"], a["action"], f"{a['method']} {a['url']}",
            f"{left}s" if a["state"] == "pending" else (a["note"] or "-")]


@approvals_app.command("list")
def approvals_list(
    state: Annotated[Optional[str], typer.Option("--state", help="pending | approved | denied | expired")] = None,
    gateway: Annotated[Optional[str], typer.Option("--gateway")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Requests held for a human (and the recent answers)."""
    from rich.text import Text

    rows = _call("approvals.list", state=state, gateway=gateway)["approvals"]
    if as_json:
        _print_json(rows)
        return
    t = Table("id", "state", "gateway", "action", "request", "expires in / note")
    for a in rows:
        t.add_row(*(Text(c) for c in _approval_line(a)))
    out.print(t)


@approvals_app.command("show")
def approvals_show(approval_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One approval, whole: why it is held, the exact request it is bound to, and its answer."""
    _print_json(_call("approvals.show", id=approval_id))


def _answer(approval_id: str, approve: bool, note: str, always: bool = False) -> None:
    a = _call("approvals.answer", id=approval_id, approve=approve, note=note, always=always)
    extra = f"; permission written: allow {a['gateway']} {a['action']}" if a["always"] else ""
    out.print(f"approval {a['id']} {a['state']} ({a['action']} for {a['gateway']}){extra}", highlight=False,
              markup=False)


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(metavar="ID")],
    always: Annotated[bool, typer.Option("--always", help="Also allow this action for this gateway from now on.")] = False,
    note: Annotated[str, typer.Option("--note", help="Kept with the answer and shown in the traffic row.")] = "",
) -> None:
    """Release the held request: it goes upstream exactly as it was held."""
    _answer(approval_id, True, note, always)


@approvals_app.command("deny")
def approvals_deny(
    approval_id: Annotated[str, typer.Argument(metavar="ID")],
    note: Annotated[str, typer.Option("--note", help="Told to the agent in its 403.")] = "",
) -> None:
    """Refuse the held request: the agent gets 403 with the note."""
    _answer(approval_id, False, note)


# -- brakes: kill switch, gateway levels -------------------------------------------------------------------
def _caller() -> str:
    """Who runs this, for the record: the sudo caller when there is one."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or f"uid {os.getuid()}"


def _reason(reason: str) -> str:
    if not reason.strip():
        raise CliError("--reason must say why (it is shown to every refused request and kept with the switch)")
    return reason


@killswitch_app.command("activate")
def killswitch_activate(
    reason: Annotated[str, typer.Option("--reason", help="Why: every refused request is told.")],
    scope: Annotated[str, typer.Option("--scope", help="all | gateway:NAME | connector:NAME")] = "all",
) -> None:
    """Stop SCOPE now: new requests get 403, its open connections (streams, WebSockets, tunnels) are closed.

    The switch survives a daemon restart until deactivated."""
    r = _call("killswitch.activate", scope=scope, reason=_reason(reason), by=_caller())
    out.print(f"kill switch ({r['scope']}) active: {r['reason']}; {r['closed']} open connection(s) closed",
              highlight=False, markup=False)


@killswitch_app.command("deactivate")
def killswitch_deactivate(
    reason: Annotated[str, typer.Option("--reason", help="Why traffic may flow again.")],
    scope: Annotated[str, typer.Option("--scope", help="all | gateway:NAME | connector:NAME")] = "all",
) -> None:
    """Lift the kill switch of SCOPE (exit 1 if none is active there)."""
    r = _call("killswitch.deactivate", scope=scope, reason=_reason(reason), by=_caller())
    left = ", ".join(s["scope"] for s in r["active"])
    out.print(f"kill switch ({r['scope']}) lifted" + (f"; still active: {left}" if left else ""), highlight=False)


@killswitch_app.command("status")
def killswitch_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The active kill switches: scope, since when, by whom, why."""
    rows = _call("killswitch.status")["kill_switches"]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no kill switch is active")
        return
    from rich.text import Text  # reasons are people's words: never markup

    t = Table("scope", "since", "by", "reason")
    for r in rows:
        t.add_row(r["scope"], r["since"], Text(r["by"] or "-"), Text(r["reason"]))
    out.print(t)


@gateway_app.command("level")
def gateway_level(
    name: Annotated[str, typer.Argument(help="The gateway (tf run --name); it need not be running.")],
    level: Annotated[str, typer.Argument(metavar="LEVEL", help="monitor | soft_enforce | full_enforce")],
) -> None:
    """Set a gateway's enforcement level (config.toml [gateways.NAME] level); applies to new requests at once."""
    r = _call("gateway.level", name=name, level=level)
    out.print(f"gateway {r['gateway']}: {r['level']} (was {r['was']})", highlight=False)


@gateway_app.command("list")
def gateway_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Known gateways: level, rate limit, running, kill switch."""
    r = _call("gateway.list")
    if as_json:
        _print_json(r["gateways"])
        return
    from rich.text import Text

    t = Table("gateway", "level", "per minute", "running", "kill switch")
    for g in r["gateways"]:
        t.add_row(g["name"], g["level"], str(g["per_minute"]), "yes" if g["running"] else "no",
                  Text(g["kill_switch"] or "-"))
    out.print(t)
    out.print(f"every other gateway: {r['default_level']}", highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"tf: error: {message}", highlight=False, markup=False)
    raise SystemExit(code)


def main() -> None:
    """Entry point: every error becomes one line on stderr and its exit code."""
    try:
        app()  # click's standalone mode: usage errors exit 2 with its message
    except CliError as e:
        _fail(str(e), e.code)
    except DaemonError as e:
        _fail(str(e), e.code)
    except RunError as e:
        _fail(str(e), 2)
    except KeyboardInterrupt:
        _fail("aborted", 130)
    except PermissionError as e:
        _fail(f"{e.strerror}: {e.filename}", 2)


if __name__ == "__main__":
    main()
