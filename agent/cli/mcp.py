"""``tf mcp wrap --name G [--connector NAME] -- SERVER ...``: an MCP server on stdio, sandboxed, its calls decided.

Nothing but the server's JSON-RPC may reach this process's stdout: the client reads it. Errors go to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Annotated, Any, Optional

import typer
from trustfence.agent.cli.common import CliError, client, require_root
from trustfence.agent.ipc import Client
from trustfence.agent.mcpwrap import Lines, Relay, Verdict, pump
from trustfence.agent.paths import paths
from trustfence.agent.runner import RunError, resolve_user, run_agent

__all__ = ["mcp_app"]

mcp_app = typer.Typer(help="MCP servers on stdio: tf mcp wrap --name G -- SERVER ...")

_DRAIN = 5.0  # seconds the server's last output may take to arrive once it has exited


@mcp_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def wrap(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Gateway name: permissions are granted to it.")],
    connector: Annotated[str, typer.Option(
        "--connector", help="The mcp connector permissions name (default: the only one, or the server's).")] = "",
    user: Annotated[Optional[str], typer.Option("--user", help="Run the server as this user.")] = None,
    nftables_only: Annotated[bool, typer.Option(
        "--nftables-only", help="Run even when the eBPF lock cannot be loaded (nftables alone).")] = False,
) -> None:
    """Run an MCP server in a sandbox and relay its stdio, deciding every tool call, resource read and prompt."""
    cmd = list(ctx.args)
    if not cmd:
        raise CliError("nothing to run: tf mcp wrap --name NAME -- SERVER [ARGS...]")
    require_root("tf mcp wrap")
    with client() as c:
        try:
            agent = resolve_user(user, os.environ, str(c.call("ping")["default_user"]))
        except RunError as e:
            raise CliError(str(e)) from None
        chosen = str(c.call("mcp.connector", connector=connector, argv=cmd)["connector"])
        code = _relay(c, name, agent, cmd, chosen, nftables_only)
    raise typer.Exit(code)


def _relay(c: Client, gateway: str, agent: Any, cmd: list[str], connector: str, nftables_only: bool) -> int:
    """Run the server with its stdio on pipes, and the relay's threads between them and ours."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    to_server, to_client = Lines(in_w), Lines(sys.stdout.fileno())
    sandbox: list[str] = []
    calls: list[threading.Thread] = []

    def decide(message: object, error: str, size: int) -> Verdict:
        with Client(paths().socket, timeout=None) as d:  # its own connection: a held call holds only itself
            return d.call("mcp.decide", sandbox=sandbox[0], connector=connector, message=message, error=error,
                          size=size)

    def spawn(work: Any) -> None:
        t = threading.Thread(target=work, daemon=True)
        calls.append(t)
        t.start()

    relay = Relay(decide, to_server.write, to_client.write, spawn)

    def from_client() -> None:
        pump(sys.stdin.buffer, relay.from_client)
        for t in calls:  # calls still being decided are forwarded or answered before the server's EOF
            t.join()
        to_server.close()

    server_out = os.fdopen(out_r, "rb")
    from_server = threading.Thread(target=pump, args=(server_out, relay.from_server), daemon=True)

    def started(reply: Any) -> None:
        sandbox.append(str(reply["sandbox"]["name"]))
        threading.Thread(target=from_client, daemon=True).start()
        from_server.start()

    try:
        code = run_agent(c, gateway, agent, cmd, nftables_only, stdio=(in_r, out_w), started=started)
    finally:
        if not sandbox:
            to_server.close()
    from_server.join(_DRAIN)
    return code
