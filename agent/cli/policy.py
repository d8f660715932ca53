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


@permissions_app.command("simulate")
def permissions_simulate(
    file: Annotated[str, typer.Argument(help="a candidate document (as tf permissions export writes)")],
    since: Annotated[str, typer.Option("--since", help="replay requests from then on (15m, 7d, ISO time)")] = "7d",
    gateway: Annotated[Optional[str], typer.Option("--gateway")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What would change if FILE replaced the running permissions and policies, over recorded requests."""
    try:
        text = open(file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {file}: {e}") from None
    r = call("permissions.simulate", document=text, file=os.path.abspath(file), since=since, gateway=gateway)
    r.pop("ok", None)
    if as_json:
        print_json(r)
        return
    out.print(f"{r['requests']} recorded request(s) replayed: {r['unchanged']} unchanged, "
              f"{r['requests'] - r['unchanged']} would change", highlight=False)
    for c in r["changes"]:
        out.print(f"  {c['before']} -> {c['after']}: {c['count']}", highlight=False)
        for ex in c["examples"]:
            out.print(f"      {ex['gateway']}  {ex['action']}  {ex['method']} {ex['host']}{ex['path']}  "
                      f"(x{ex['count']})\n        now:  {ex['now']}\n        then: {ex['then']}",
                      highlight=False, markup=False)


@permissions_app.command("suggest")
def permissions_suggest(
    gateway: Annotated[str, typer.Option("--gateway")],
    since: Annotated[str, typer.Option("--since", help="learn from requests from then on (15m, 7d, ISO time)")] = "7d",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Least-privilege allow permissions from what GATEWAY was seen doing (run it in monitor first); the output
    is a document tf permissions import accepts."""
    r = call("permissions.suggest", gateway=gateway, since=since)
    if as_json:
        print_json(r["permissions"])
        return
    sys.stdout.write(f"# suggested for gateway {gateway!r} from {r['requests']} recorded request(s) "
                     f"since {since}\n" + r["document"])
