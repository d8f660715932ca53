"""``tf agents``: agents that ask before they act (advisory mode, the v1 API), and their API keys."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from trustfence.agent.cli.common import call, err, out, print_json

__all__ = ["agents_app"]

agents_app = typer.Typer(no_args_is_help=True, help="Advisory agents: API keys for POST /api/v1/actions.")


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else ""


@agents_app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="The agent's name (letters, digits, _ . -).")],
    gateway: Annotated[Optional[str], typer.Option(
        "--gateway", help="Whose permissions, policies and limits decide its actions (default: NAME).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register NAME and print its API key, once: only its hash is kept."""
    r = call("agents.register", name=name, gateway=gateway or name)
    if as_json:
        print_json(r)
        return
    err.print(f"agent {r['name']} registered (gateway {r['gateway']}, key {r['fingerprint']}); its API key "
              "follows and is not shown again:", highlight=False, markup=False)
    sys.stdout.write(r["key"] + "\n")


@agents_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered agents: gateway, key fingerprint, when registered and revoked."""
    rows = call("agents.list")["agents"]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no agents registered (tf agents register NAME)")
        return
    t = Table("agent", "gateway", "key", "registered", "revoked")
    for r in rows:
        t.add_row(Text(r["name"]), Text(r["gateway"]), r["fingerprint"], _when(r["created"]), _when(r["revoked"]))
    out.print(t)


@agents_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The agent whose key stops working now.")]) -> None:
    """Revoke NAME's key: every request with it is refused (401) from now on."""
    r = call("agents.revoke", name=name)
    out.print(f"agent {r['name']}: key revoked", highlight=False, markup=False)
