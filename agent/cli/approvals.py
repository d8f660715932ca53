"""``tf approvals``: requests held for a human."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table
from trustfence.agent.cli.common import CliError, call, out, print_json

__all__ = ["approvals_app"]

approvals_app = typer.Typer(no_args_is_help=True, help="Requests held for a human: list, show, approve, deny.")


def _approval_line(a: dict[str, Any]) -> list[str]:
    pending = a["state"] == "pending" and isinstance(a["expires"], (int, float))
    left = max(0, round(a["expires"] - time.time())) if pending else 0
    return [a["id"], a["state"], a["gateway"], a["action"], f"{a['method']} {a['url']}",
            f"{left}s" if pending else (a["note"] or "-")]


@approvals_app.command("list")
def approvals_list(
    state: Annotated[str | None, typer.Option("--state", help="pending | approved | denied | expired")] = None,
    gateway: Annotated[str | None, typer.Option("--gateway")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="the history in the store, across restarts")] = False,
    since: Annotated[str | None, typer.Option("--since", help="with --all: 15m, 7d or an ISO time")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Requests held for a human (and the recent answers); --all: every approval the store has recorded."""
    from rich.text import Text

    if since and not show_all:
        raise CliError("--since goes with --all (the history in the store)")
    rows = call("approvals.list", state=state, gateway=gateway, all=show_all, since=since)["approvals"]
    if as_json:
        print_json(rows)
        return
    t = Table("id", "state", "gateway", "action", "request", "expires in / note")
    for a in rows:
        t.add_row(*(Text(c) for c in _approval_line(a)))
    out.print(t)


@approvals_app.command("show")
def approvals_show(approval_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """One approval, whole: why it is held, the exact request it is bound to, and its answer."""
    print_json(call("approvals.show", id=approval_id))


def _answer(approval_id: str, approve: bool, note: str, always: bool = False) -> None:
    a = call("approvals.answer", id=approval_id, approve=approve, note=note, always=always)
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

