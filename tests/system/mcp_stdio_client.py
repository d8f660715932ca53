"""The official MCP SDK's stdio client, launching ``tf mcp wrap`` as a client application would launch a server.

``python3 mcp_stdio_client.py -- TF_COMMAND...`` (TF_COMMAND: ``tf mcp wrap --name G -- SERVER ...``) makes
each call in turn and prints one JSON line per call: its result, or the JSON-RPC error it got. Run as root by
Debian's python3 with the agent SDKs on PYTHONPATH; the environment is passed on to the wrap.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def _report(call: str, outcome: dict[str, Any]) -> None:
    print(json.dumps({"call": call, **outcome}), flush=True)


async def _each(call: str, work: Callable[[], Awaitable[Any]]) -> None:
    try:
        result = await work()
    except Exception as e:  # noqa: BLE001 - the JSON-RPC error is what the test judges
        error = getattr(e, "error", None)
        _report(call, {"ok": False, "error": str(e)[:500],
                       "data": getattr(error, "data", None), "code": getattr(error, "code", None)})
        return
    _report(call, {"ok": True, "result": result.model_dump(mode="json")})


async def main(cmd: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the SDKs are this client's, not tf's
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        await _each("list_tools", s.list_tools)
        await _each("search", lambda: s.call_tool("search", {"query": "widgets"}))
        await _each("delete_file", lambda: s.call_tool("delete_file", {"path": "/etc/passwd"}))
        await _each("read_resource", lambda: s.read_resource("notes://today"))
        await _each("get_prompt", lambda: s.get_prompt("review", {"code": "x = 1"}))
        await _each("transfer", lambda: s.call_tool("transfer", {"amount": 20}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[sys.argv.index("--") + 1:]))
