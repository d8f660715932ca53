"""A small MCP server on stdio (the official SDK) for ``tf mcp wrap``'s system test.

``python3 mcp_stdio_server.py LOG`` serves three tools (``search``, ``delete_file``, ``transfer``), one resource
(``notes://today``) and one prompt (``review``), and appends one JSON line to LOG (with its uid) for every one of
them it is asked for: what reached the server, seen from outside the client. ``search`` also makes an HTTPS
request of its own, which the enforcer must see under the wrap's gateway. Run by Debian's python3 as the sandbox's
unprivileged user, with the agent SDKs on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

from mcp.server.mcpserver import MCPServer

log = sys.argv[1]
server = MCPServer("stdio-tools")


def _log(kind: str, name: str, args: dict[str, object]) -> None:
    with open(log, "a") as f:
        f.write(json.dumps({"kind": kind, "name": name, "args": args, "uid": os.getuid()}) + "\n")


@server.tool()
def search(query: str) -> str:
    """Search the fake corpus."""
    _log("tool", "search", {"query": query})
    try:  # the server's own egress: through the enforcer, under the wrap's gateway (no connector here: denied)
        egress = str(urllib.request.urlopen("https://api.github.com/zen", timeout=20).status)
    except urllib.error.HTTPError as e:
        egress = str(e.code)
    except OSError as e:  # the proxy refused the tunnel: "Tunnel connection failed: 403 ..."
        egress = str(e)
    return f"found {query} (egress: {egress})"


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
