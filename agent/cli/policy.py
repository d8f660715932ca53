"""``tf permissions``: who may do what."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from trustfence.agent.cli.common import CliError, call, out, print_json

__all__ = ["permissions_app"]

permissions_app = typer.Typer(no_args_is_help=True, help="Allow or deny actions per gateway.")


@permissions_app.command("set")
def permissions_set(
    gateway: Annotated[str, typer.Option("--gateway")],
    connector: Annotated[str, typer.Option("--connector")],
    action: Annotated[str, typer.Option("--action", help="github.pr.merge | github.pr.* | *")],
    decision: Annotated[str, typer.Option("--decision", help="allow | deny | require_approval")],
) -> None:
    """Set the decision for a gateway, connector and action pattern (replaces the same pattern)."""
    r = call("permissions.set", gateway=gateway, connector=connector, action=action, decision=decision)
    out.print(f"{decision} {gateway}/{connector}/{action} ({r['rule_id']})", highlight=False)


@permissions_app.command("list")
def permissions_list(
    gateway: Annotated[Optional[str], typer.Option("--gateway")] = None,
    connector: Annotated[Optional[str], typer.Option("--connector")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    rows = call("permissions.list", gateway=gateway, connector=connector)["permissions"]
    if as_json:
        print_json(rows)
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
    call("permissions.remove", gateway=gateway, connector=connector, action=action)
    out.print(f"removed {gateway}/{connector}/{action}", highlight=False)


@permissions_app.command("preset")
def permissions_preset(
    gateway: Annotated[str, typer.Option("--gateway")],
    connector: Annotated[str, typer.Option("--connector")],
    preset: Annotated[str, typer.Argument(metavar="PRESET", help="allow-all | read-only | require-approval")],
) -> None:
    """Replace GATEWAY's permissions on CONNECTOR with a preset (read-only: every low-risk action it knows)."""
    r = call("permissions.preset", gateway=gateway, connector=connector, preset=preset)
    out.print(f"{gateway}/{connector}: {preset} ({r['permissions']} permission(s))", highlight=False)


@permissions_app.command("export")
def permissions_export() -> None:
    """Every permission and policy as one TOML document (for git, review, another host)."""
    sys.stdout.write(call("permissions.export")["text"])


@permissions_app.command("import")
def permissions_import(file: Annotated[str, typer.Argument(metavar="FILE", help="A document from export; - for stdin.")]) -> None:
    """Replace every permission and policy with FILE's, validated whole first (file:line: reason, exit 2)."""
    try:
        text = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {file}: {e}") from None
    r = call("permissions.import", text=text, name=os.path.abspath(file) if file != "-" else "<stdin>")
    out.print(f"imported {r['permissions']} permission(s) and {r['policies']} policies", highlight=False)
