"""The ``tf`` command line. Commands are thin: they call the daemon and print. Exit codes are decided in
one place (``main``): 0 ok, 1 denied or failed check, 2 usage, configuration or internal error.

This module holds the root commands (init, daemon, status, doctor, run, logs); the groups are in their own
modules: connectors and vault, permissions and audit, approvals, brakes (kill switch, gateway levels).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, Optional

import typer

from trustfence.agent.cli.agents import agents_app
from trustfence.agent.cli.analytics import export, sql
from trustfence.agent.cli.approvals import approvals_app
from trustfence.agent.cli.brakes import gateway_app, killswitch_app
from trustfence.agent.cli.common import (CliError, call, client, csv_cell, err, lock_holder, out, print_json,
                                        require_root, wait_for_daemon)
from trustfence.agent.cli.connectors import connector_app, vault_app
from trustfence.agent.cli.dashboard import dashboard_app
from trustfence.agent.cli.audit import audit_app
from trustfence.agent.cli.mcp import mcp_app
from trustfence.agent.cli.policy import permissions_app
from trustfence.agent.cli.install import install
from trustfence.agent.ipc import Client, DaemonError, DaemonUnavailable
from trustfence.agent.paths import paths
from trustfence.agent.runner import RunError, resolve_user, run_agent

__all__ = ["app", "main", "version"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="TrustFence: a host firewall for AI agents.")
daemon_app = typer.Typer(help="Run or stop the root daemon (tf daemon | tf daemon stop).")
app.add_typer(daemon_app, name="daemon")
app.add_typer(connector_app, name="connector")
app.add_typer(permissions_app, name="permissions")
app.add_typer(killswitch_app, name="kill-switch")
app.add_typer(gateway_app, name="gateway")
app.add_typer(approvals_app, name="approvals")
app.add_typer(vault_app, name="vault")
app.add_typer(audit_app, name="audit")
app.add_typer(dashboard_app, name="dashboard")
app.add_typer(mcp_app, name="mcp")
app.add_typer(agents_app, name="agents")


def version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("trustfence")
    except PackageNotFoundError:
        raise CliError("trustfence is not installed as a distribution (pip install -e .)") from None


def _print_version(value: bool) -> None:
    if value:
        out.print(f"tf {version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """TrustFence: a host firewall for AI agents."""


@app.command()
def init(
    platform: Annotated[Optional[str], typer.Option(
        "--platform", help="Apply a platform template: langchain, crewai, n8n, claude-code, openai-agents, "
        "mcp-server, ... (an unknown name lists them all).")] = None,
    gateway: Annotated[Optional[str], typer.Option(
        "--gateway", help="With --platform: the gateway to configure (default: the template's).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --platform: show the changes, write nothing.")]
    = False,
) -> None:
    """Create the state directory, a default config, the enforcer CA and the vault key (idempotent); with
    --platform, also the connectors, permissions and enforcement level a platform's agents need."""
    if platform is not None:
        from trustfence.agent.cli.platform import init_platform

        init_platform(platform, gateway, dry_run)
        return
    if gateway is not None or dry_run:
        raise CliError("--gateway and --dry-run go with --platform")
    from trustfence.agent.cli.platform import init_state

    require_root("tf init")
    out.print(f"TrustFence state in {init_state()} is ready", highlight=False)


@daemon_app.callback(invoke_without_command=True)
def daemon(ctx: typer.Context, log_file: Annotated[Optional[Path], typer.Option(
        "--log-file", help="Log here, rotated (10 MiB x 3), stdout and stderr too; default: stderr.")] = None) -> None:
    """Run the daemon in the foreground (systemd runs exactly this)."""
    if ctx.invoked_subcommand is not None:
        return
    require_root("tf daemon")
    import asyncio
    import logging

    from trustfence.agent.logsetup import setup_logging

    from trustfence.agent.config import ConfigError
    from trustfence.agent.daemon import AlreadyRunning, Daemon
    from trustfence.store import AuditError
    from trustfence.store.migrate import SchemaError
    from trustfence.vault import VaultError

    setup_logging(log_file)
    try:
        asyncio.run(Daemon(paths()).serve())
    except AlreadyRunning as e:
        raise CliError(str(e)) from None
    except ConfigError as e:
        raise CliError(f"config error: {e}") from None
    except VaultError as e:
        raise CliError(f"vault error: {e}") from None
    except AuditError as e:
        raise CliError(f"audit log error: {e}") from None
    except SchemaError as e:
        raise CliError(f"traffic store error: {e}") from None


@daemon_app.command("stop")
def daemon_stop() -> None:
    """Stop the daemon: every sandbox is torn down first."""
    p = paths()
    try:
        c = Client(p.socket)
    except DaemonUnavailable:
        if lock_holder(p.lock) is None or not wait_for_daemon(p):  # a starting one is stopped once it answers
            out.print("the daemon is not running")
            return
        c = Client(p.socket)
    with c:
        pid = c.call("stop")["pid"]
    for _ in range(300):
        if not _running(pid):
            break
        time.sleep(0.05)
    out.print(f"daemon stopped (pid {pid})")


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs. A zombie (exited, not yet reaped by whoever started it: a test harness, a
    shell) has stopped: waiting for it to vanish waited out the whole 15 s each time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat.rsplit(b")", 1)[-1].split()[:1] != [b"Z"]


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Daemon, sandboxes, connectors and traffic at a glance."""
    s = call("status")
    s.pop("ok", None)
    if as_json:
        print_json(s)
        return
    out.print(f"daemon pid {s['pid']}  state {s['home']}  tag {s['tag']}", highlight=False)
    out.print(f"connectors: {', '.join(s['connectors']) or 'none'}  permissions: {s['permissions']}  "
              f"traffic rows: {s['traffic_rows']}  eBPF lock: {s['ebpf']}", highlight=False)
    if s.get("policy_error"):
        out.print(f"POLICY FILES REJECTED (every request is denied): {s['policy_error']}", highlight=False,
                  markup=False)
    tl = s.get("traffic_log") or {}
    if tl and not tl["ok"]:
        out.print(f"TRAFFIC LOG UNAVAILABLE: {tl['reason']} — new requests are refused (503) until it can be "
                  f"written; {tl['refused']} refused so far", highlight=False, markup=False)
    elif tl:
        out.print(f"traffic log: ok (journal {tl['journal']['dir']}, sync {tl['journal']['sync']}, "
                  f"{tl['journal']['pending']} record(s) not yet in the table)", highlight=False, markup=False)
    if tl.get("missing"):
        runs = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in tl["gaps"])
        out.print(f"TRAFFIC LOG GAPS: {tl['missing']} sequence number(s) missing ({runs})", highlight=False,
                  markup=False)
    if fd := s.get("file_descriptors"):
        out.print(f"file descriptors: {fd['open']} open of {fd['limit']} ({fd['free_percent']}% free)",
                  highlight=False)
    if (w := s.get("workers")) and w["workers"] > 1:
        pids = ", ".join(f"{c['pid']}{'' if c['ready'] else ' (starting)'}" for c in w["children"])
        conns = " + ".join(str(n) for n in [w["connections"], *(c["connections"] for c in w["children"])])
        out.print(f"enforcer workers: {w['workers']} (the daemon and {pids}), {w['restarts']} restart(s); "
                  f"agent connections open: {conns}", highlight=False)
    for ks in s.get("kill_switches", []):
        out.print(f"KILL SWITCH {ks['scope']} since {ks['since']}: {ks['reason']}", highlight=False, markup=False)
    for sb in s["sandboxes"]:
        counts = "  ".join(f"{k}={v}" for k, v in sb["counters"].items())
        out.print(f"  sandbox {sb['name']}  gateway {sb['gateway']}  agent {sb['agent_addr']}  uid {sb['uid']}  "
                  f"{counts}", highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    agent: Annotated[bool, typer.Option("--agent", help=(
        "tf doctor --agent -- CMD: whether CMD's TLS client will trust the enforcer, tried once in a sandbox "
        "of a temporary gateway (Python, Java and Node clients), and the fix if not."))] = False,
    production: Annotated[bool, typer.Option("--production", help=(
        "Also what a production host needs: the hardened unit running, the key as an encrypted credential, "
        "file modes, a synchronized clock, disk space for the store."))] = False,
) -> None:
    """Check every prerequisite on this host and say how to fix what is missing (exit 1 if a required one fails)."""
    from dataclasses import asdict
    from pathlib import Path

    from trustfence.agent.doctor import CHECKS, Check, run_checks

    if agent or ctx.args:
        if not agent or not ctx.args:
            raise CliError("tf doctor --agent -- COMMAND [ARGS...]")
        _doctor_agent(list(ctx.args), as_json)
        return
    extra: tuple[Callable[[], Check], ...] = ()
    if production:
        from trustfence.agent.install import Target
        from trustfence.agent.production import production_checks

        extra = production_checks(Target(Path("/")), paths())
    checks = run_checks(CHECKS + extra)
    if as_json:
        print_json([asdict(c) for c in checks])
    else:
        for c in checks:
            mark = "[green]ok[/]  " if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]warn[/]")
            out.print(f"{mark} {c.name:<15} {c.detail}" + (f"\n     fix: {c.fix}" if c.fix else ""),
                      highlight=False)
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(1)


def _doctor_agent(cmd: list[str], as_json: bool) -> None:
    from trustfence.agent.doctor_agent import probe_for, verdict

    require_root("tf doctor --agent")
    probe = probe_for(cmd, os.environ.get("PATH", os.defpath), os.getcwd())
    if probe is None:
        msg = (f"{cmd[0]} is not a Python, Java or Node program, so its TLS client cannot be tried alone: run it "
               "under tf run; a client that refuses the enforcer's certificate is an error row in "
               "tf logs --decision error, with its fix")
        if as_json:
            print_json({"ok": None, "checked": False, "detail": msg})
        else:
            out.print(f"[yellow]unknown[/] {msg}", highlight=False)
        raise typer.Exit(1)
    read, write = os.pipe()
    with client() as c:
        try:
            user = resolve_user(None, os.environ, str(c.call("ping")["default_user"]))
            code = run_agent(c, f"doctor-{secrets.token_hex(3)}", user, probe.argv,
                             stdio=(os.open(os.devnull, os.O_RDONLY), write))
        except RunError as e:
            raise CliError(str(e)) from None
    with os.fdopen(read) as f:
        v = verdict(probe, f.read(1 << 20))
    if as_json:
        print_json({"ok": v.ok, "checked": True, "program": probe.program, "kind": probe.kind, "results": v.lines,
                    "fix": v.fix, "probe_exit": code})
    else:
        out.print(f"{probe.kind} client {probe.program}:", highlight=False, markup=False)
        for line in v.lines:
            out.print(f"  {line}", highlight=False, markup=False)
        out.print("it will trust the enforcer" if v.ok else f"it will NOT trust the enforcer\n  fix: {v.fix}",
                  highlight=False, markup=False)
    if not v.ok:
        raise typer.Exit(1)


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
    require_root("tf run")
    with client() as c:
        try:  # the daemon has the configuration loaded: ask it rather than parse it here
            agent = resolve_user(user, os.environ, str(c.call("ping")["default_user"]))
        except RunError as e:
            raise CliError(str(e)) from None
        code = run_agent(c, name, agent, cmd, nftables_only)
    raise typer.Exit(code)


def _params_text(raw: object, limit: int = 160) -> str:
    """A row's params as ``name=value`` pairs (``name=requests version=2.32.3``), shortened for one line."""
    try:
        params = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return ""
    if not isinstance(params, dict):
        return ""
    text = " ".join(f"{k}={v if isinstance(v, (str, int, float, bool)) else json.dumps(v)}"
                    for k, v in params.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _log_line(r: dict[str, Any]) -> str:
    ts = str(r["ts"])[:19].replace("T", " ")
    where = f"{r['host']}{r['path']}"
    who = f"{r['comm']}[{r['pid']}]" if r.get("comm") else "-"
    fix = _fix_of(r.get("params"))
    params = "" if fix else _params_text(r.get("params"))
    return (f"{ts}  {r['gateway']:<10} {r['decision']:<8} {r['status']:>3}  {r['action'] or '-':<24} "
            f"{params + '  ' if params else ''}{r['method']:<6} {where}  {who}  [{r['reason']}]"
            + (f"\n    fix: {fix}" if fix else ""))


def _fix_of(raw: object) -> str:
    """The fix a row carries (a TLS handshake the client refused: how to make it trust the enforcer)."""
    try:
        params = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return ""
    return str(params.get("fix", "")) if isinstance(params, dict) else ""


@app.command()
def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    gateway: Annotated[Optional[str], typer.Option("--gateway")] = None,
    decision: Annotated[Optional[str], typer.Option("--decision", help="allowed, denied, would_deny, ...")] = None,
    action: Annotated[Optional[str], typer.Option("--action", help="github.pr.merge | github.pr.* | *")] = None,
    connector: Annotated[Optional[str], typer.Option("--connector")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="15m, 2h, 7d or an ISO 8601 time")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="15m, 2h, 7d or an ISO 8601 time")] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="text in host, path, action or reason")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="newest N rows (1-100000)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header line.")] = False,
) -> None:
    """Recent traffic, newest last, filtered."""
    if as_json and as_csv:
        raise CliError("choose one of --json and --csv")
    after = 0
    filters = {"gateway": gateway, "decision": decision, "action": action, "connector": connector, "since": since,
               "until": until, "search": search}
    writer = None
    with client() as c:
        while True:
            rows = c.call("logs", limit=limit, after_seq=after, **filters)["rows"]
            for r in rows:
                if as_csv:
                    if writer is None:
                        writer = csv.DictWriter(sys.stdout, fieldnames=list(r), extrasaction="ignore")
                        writer.writeheader()
                    writer.writerow({k: csv_cell(v) for k, v in r.items()})
                else:
                    print(json.dumps(r, default=str) if as_json else _log_line(r), flush=True)
                after = max(after, int(r["seq"]))
            sys.stdout.flush()
            if not follow:
                return
            limit = 1000
            time.sleep(0.5)


app.command()(sql)
app.command()(export)
app.command()(install)


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
        _fail(str(e), e.code)
    except KeyboardInterrupt:
        _fail("aborted", 130)
    except PermissionError as e:
        _fail(f"{e.strerror}: {e.filename}", 2)

