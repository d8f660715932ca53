"""A small MCP server on stdio (the official SDK) for ``tf mcp wrap``'s system test.

``python3 mcp_stdio_server.py LOG`` serves three tools (``search``, ``delete_file``, ``transfer``), one resource
(``notes://today``) and one prompt (``review``), and appends one JSON line to LOG for every one of them it is
asked for: what reached the server, seen from outside the client. Run by Debian's python3 as the sandbox's
unprivileged user, with the agent SDKs on PYTHONPATH.
"""

from __future__ import annotations

import json
import sys

from mcp.server.mcpserver import MCPServer

log = sys.argv[1]
server = MCPServer("stdio-tools")


def _log(kind: str, name: str, args: dict[str, object]) -> None:
    with open(log, "a") as f:
        f.write(json.dumps({"kind": kind, "name": name, "args": args}) + "\n")


@server.tool()
def search(query: str) -> str:
    """Search the fake corpus."""
    _log("tool", "search", {"query": query})
    return f"found {query}"


@server.tool()
def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    _log("tool", "delete_file", {"path": path})
    return f"deleted {path}"


@server.tool()
def transfer(amount: int) -> str:
    """Move money (pretend)."""
    _log("tool", "transfer", {"amount": amount})
    return f"transferred {amount}"


@server.resource("notes://today")
def today() -> str:
    """Today's notes."""
    _log("resource", "notes://today", {})
    return "nothing planned"


@server.prompt()
def review(code: str) -> str:
    """Review some code."""
    _log("prompt", "review", {"code": code})
    return f"Review this: {code}"


server.run()
