"""``tf connector`` (which hosts mean what) and ``tf vault`` (the credentials behind them)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from trustfence.agent.cli.common import CliError, call, csv_list, err, out, print_json

__all__ = ["connector_app", "vault_app"]

connector_app = typer.Typer(no_args_is_help=True, help="Configure connectors (which hosts mean what).")
vault_app = typer.Typer(no_args_is_help=True, help="The credential vault: status and key rotation.")


@connector_app.command("add")
def connector_add(
    type_: Annotated[str, typer.Argument(
        metavar="TYPE",
        help="anthropic | crates | generic | github | gomod | mcp | npm | openai | pypi | slack | stripe | webhook")],
    name: Annotated[Optional[str], typer.Option("--name", help="Defaults to the type.")] = None,
    domains: Annotated[Optional[str], typer.Option(
        "--domains", help="Comma-separated hosts (required for generic; overrides a type's default hosts).")] = None,
    url: Annotated[Optional[list[str]], typer.Option(
        "--url", help="The MCP server's endpoint, or a webhook URL (repeatable).")] = None,
    base_path: Annotated[str, typer.Option(
        "--base-path", help="GitHub Enterprise API prefix (/api/v3), or a package mirror's prefix.")] = "",
    allow_list: Annotated[str, typer.Option(
        "--allow-list", metavar="FILE",
        help="pypi/npm/crates/gomod: a file of the packages that may be downloaded, one per line.")] = "",
    ports: Annotated[Optional[str], typer.Option(
        "--ports", help="Comma-separated ports to open beyond 443 and 80.")] = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", help="The real credential (visible in shell history: prefer --token-stdin).")] = None,
    token_env: Annotated[Optional[str], typer.Option(
        "--token-env", metavar="VAR", help="Read the credential from this environment variable.")] = None,
    token_stdin: Annotated[bool, typer.Option(
        "--token-stdin", help="Read the credential from standard input (the default on a terminal).")] = False,
    gateways: Annotated[Optional[str], typer.Option(
        "--gateways", help="Comma-separated gateways that may use the credential (default: all for a new one; a "
                     "replaced one keeps its own; 'all' widens it).")] = None,
    header: Annotated[Optional[str], typer.Option(
        "--header", help="generic/webhook: header that carries the credential (default Authorization).")] = None,
    prefix: Annotated[Optional[str], typer.Option(
        "--prefix", help="generic/webhook: text before the credential (default 'Bearer ' for Authorization).")] = None,
    query_param: Annotated[Optional[str], typer.Option(
        "--query-param", help="generic/webhook: send the credential as this query parameter instead.")] = None,
    env: Annotated[Optional[str], typer.Option(
        "--env", help="Comma-separated variables that hold the agent's placeholder (default: the SDKs').")] = None,
    host_service: Annotated[Optional[str], typer.Option(
        "--host-service", metavar="ADDR:PORT",
        help="A service on this host (127.0.0.1:11434) that agents reach at localhost:PORT in their sandbox.")] = None,
    sandbox_port: Annotated[Optional[int], typer.Option(
        "--sandbox-port", help="The loopback port agents dial for --host-service (default: the service's).")] = None,
) -> None:
    """Add (or replace) a connector, and seal its credential in the vault."""
    doms = [d.strip() for d in (domains or "").split(",") if d.strip()]
    try:
        port_list = [int(p) for p in (ports or "").split(",") if p.strip()]
    except ValueError:
        raise CliError(f"--ports must be comma-separated numbers, got {ports!r}") from None
    secret = _read_token(token, token_env, token_stdin, name or type_)
    r = call("connector.add", type=type_, name=name, domains=doms, urls=url or [], base_path=base_path,
              allow_list=os.path.abspath(allow_list) if allow_list else "", ports=port_list, token=secret,
              gateways=csv_list(gateways), header=header, prefix=prefix, query_param=query_param,
              env=csv_list(env), host_service=host_service, sandbox_port=sandbox_port)
    sealed = f"; credential sealed (fingerprint {r['fingerprint']}, version {r['version']})" if secret else ""
    out.print(f"connector {r['connector']} configured{sealed}", highlight=False)


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
        print_json([{"action": r.action, "method": r.method, "path": r.path, "risk": r.risk} for r in rows])
        return
    t = Table("action", "method", "path", "risk")
    for r in rows:
        t.add_row(r.action, r.method, r.path, r.risk)
    out.print(t)


@connector_app.command("list")
def connector_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Configured connectors; a credential shows as its fingerprint, never its value."""
    reply = call("connector.list")
    rows = reply["connectors"]
    if as_json:
        print_json(rows)
        return
    t = Table("name", "type", "hosts", "actions", "credential")
    for r in rows:
        cred = r["credential"] + (f" ({', '.join(r['credential_gateways'])})" if r["credential_gateways"] else "")
        hosts = (f"localhost:{r['sandbox_port']} in the sandbox -> {r['host_service']} on this host"
                 if r.get("host_service") else ", ".join(r["hosts"]))
        t.add_row(r["name"], r["type"], hosts, str(r["actions"]), cred or "-")
    out.print(t)
    if reply["vault_error"]:
        err.print(f"vault unavailable: {reply['vault_error']}", highlight=False, markup=False)


@connector_app.command("remove")
def connector_remove(name: str) -> None:
    call("connector.remove", name=name)
    out.print(f"connector {name} removed", highlight=False)


@vault_app.command("status")
def vault_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The master key's id and source, and every sealed credential's fingerprint (never a value)."""
    r = call("vault.status")
    if as_json:
        print_json(r)
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
    r = call("vault.rotate")
    out.print(f"vault re-sealed: key {r['old_key_id']} -> {r['key_id']} ({r['entries']} credential(s))",
              highlight=False)

