"""A real MCP server (the official SDK, Streamable HTTP over TLS) for the SDK suite's outside namespace.

``python3 mcp_server.py ADDR PORT CERT KEY LOG`` serves two tools, ``search`` and ``delete_file``, at ``/mcp``
and appends one JSON line per tool call to LOG. Run by Debian's python3 with the agent SDKs on PYTHONPATH.
"""

from __future__ import annotations

import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

addr, port, cert, key, log = sys.argv[1:6]
server = MCPServer("fake-tools")


def _log(tool: str, args: dict[str, str]) -> None:
    with open(log, "a") as f:
        f.write(json.dumps({"tool": tool, "args": args}) + "\n")


@server.tool()
def search(query: str) -> str:
    """Search the fake corpus."""
    _log("search", {"query": query})
    return f"found {query}"


@server.tool()
def delete_file(path: str) -> str:
    """Delete a file (pretend)."""
    _log("delete_file", {"path": path})
    return f"deleted {path}"


# The Host header is the public name the enforcer connected by, not this address: no rebinding check here.
app = server.streamable_http_app(transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
uvicorn.run(app, host=addr, port=int(port), ssl_certfile=cert, ssl_keyfile=key, log_level="warning")
