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
    """Create the state directory, a default config and the enforcer CA (idempotent)."""
    _require_root("tf init")
    from trustfence.agent.setup import ensure_state

    p = paths()
    created = ensure_state(p)
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

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mitmproxy.proxy.server").setLevel(logging.WARNING)  # one line per connection otherwise
    try:
        asyncio.run(Daemon(paths()).serve())
    except AlreadyRunning as e:
        raise CliError(str(e)) from None
    except ConfigError as e:
        raise CliError(f"config error: {e}") from None


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
) -> None:
    """Add (or replace) a connector."""
    doms = [d.strip() for d in (domains or "").split(",") if d.strip()]
    try:
        port_list = [int(p) for p in (ports or "").split(",") if p.strip()]
    except ValueError:
        raise CliError(f"--ports must be comma-separated numbers, got {ports!r}") from None
    r = _call("connector.add", type=type_, name=name, domains=doms, urls=url or [], base_path=base_path,
              ports=port_list)
    out.print(f"connector {r['connector']} configured", highlight=False)


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
    rows = _call("connector.list")["connectors"]
    if as_json:
        _print_json(rows)
        return
    t = Table("name", "type", "hosts", "actions")
    for r in rows:
        t.add_row(r["name"], r["type"], ", ".join(r["hosts"]), str(r["actions"]))
    out.print(t)


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
    decision: Annotated[str, typer.Option("--decision", help="allow | deny")],
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
