"""``tf dashboard``: the web dashboard's one-time setup token for its first owner."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from trustfence.agent.cli.common import call, err, out, print_json, require_root

__all__ = ["dashboard_app"]

dashboard_app = typer.Typer(no_args_is_help=True, help="The web dashboard: create its first owner.")


@dashboard_app.command("setup")
def setup(
    force: Annotated[bool, typer.Option("--force", help="Issue a token even though an owner exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print a one-time token (valid 15 minutes) that creates the dashboard's owner on its /setup page.

    Only root gets one, so no other local process can become owner by reaching the port first."""
    require_root("tf dashboard setup")
    r = call("dashboard.setup", force=force)
    if as_json:
        print_json(r)
        return
    minutes = max(1, round((r["expires"] - time.time()) / 60))
    out.print(f"setup token (valid {minutes} min, used once): {r['token']}", highlight=False, markup=False)
    if r["url"]:
        out.print(f"open {r['url']}setup and create the owner with it", highlight=False, markup=False)
    else:
        err.print(f"tf: the dashboard is not being served: {r['error']}", highlight=False, markup=False)
