"""The brakes: ``tf kill-switch`` and ``tf gateway`` (enforcement levels)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from trustfence.agent.cli.common import CliError, call, out, print_json

__all__ = ["gateway_app", "killswitch_app"]

killswitch_app = typer.Typer(no_args_is_help=True, help="Stop a scope at once: all, gateway:NAME or connector:NAME.")
gateway_app = typer.Typer(no_args_is_help=True, help="Gateways: enforcement level (monitor, soft_enforce, ...).")


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
    r = call("killswitch.activate", scope=scope, reason=_reason(reason), by=_caller())
    out.print(f"kill switch ({r['scope']}) active: {r['reason']}; {r['closed']} open connection(s) closed",
              highlight=False, markup=False)


@killswitch_app.command("deactivate")
def killswitch_deactivate(
    reason: Annotated[str, typer.Option("--reason", help="Why traffic may flow again.")],
    scope: Annotated[str, typer.Option("--scope", help="all | gateway:NAME | connector:NAME")] = "all",
) -> None:
    """Lift the kill switch of SCOPE (exit 1 if none is active there)."""
    r = call("killswitch.deactivate", scope=scope, reason=_reason(reason), by=_caller())
    left = ", ".join(s["scope"] for s in r["active"])
    out.print(f"kill switch ({r['scope']}) lifted" + (f"; still active: {left}" if left else ""), highlight=False)


@killswitch_app.command("status")
def killswitch_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The active kill switches: scope, since when, by whom, why."""
    rows = call("killswitch.status")["kill_switches"]
    if as_json:
        print_json(rows)
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
    r = call("gateway.level", name=name, level=level)
    out.print(f"gateway {r['gateway']}: {r['level']} (was {r['was']})", highlight=False)


@gateway_app.command("list")
def gateway_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Known gateways: level, rate limit, running, kill switch."""
    r = call("gateway.list")
    if as_json:
        print_json(r["gateways"])
        return
    from rich.text import Text

    t = Table("gateway", "level", "per minute", "running", "kill switch")
    for g in r["gateways"]:
        t.add_row(g["name"], g["level"], str(g["per_minute"]), "yes" if g["running"] else "no",
                  Text(g["kill_switch"] or "-"))
    out.print(t)
    out.print(f"every other gateway: {r['default_level']}", highlight=False)

