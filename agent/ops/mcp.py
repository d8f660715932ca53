"""Operations for ``tf mcp wrap``: which connector names a wrapped server, and the decision on each call.

The wrap runs as root next to the sandbox it launched; it sends each call the client makes (the JSON-RPC
message as the client sent it) with the sandbox's name. The gateway and the agent's uid come from the
daemon's own record of that sandbox, never from the message, and the message is classified here, by the MCP
connector's own code (``connectors.mcp.message_action``), so stdio and Streamable HTTP name calls alike.
Every call is a traffic row (scheme ``stdio``), journalled before the wrap is told to forward it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import OpError, Reply, op
from trustfence.connectors import Action
from trustfence.connectors.mcp import InvalidMessage, MCPConnector, message_action
from trustfence.proxy.calls import Call, Outcome, decide_call, record_call
from trustfence.proxy.record import call_row
from trustfence.proxy.state import Gateway
from trustfence.store import TrafficRow

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["choose_connector"]

log = logging.getLogger("trustfence.daemon")

_STATUS = {"allowed": 200, "would_deny": 200, "would_require_approval": 200, "denied": 403, "rate_limited": 429}


def choose_connector(mcp: list[str], wanted: str, argv: list[str]) -> str:
    """The connector a wrapped server's calls go through: ``wanted`` if given, else the only mcp connector,
    else the one named after the server (an element of its command line, without directory or suffix)."""
    known = ", ".join(sorted(mcp)) or "none; add one: [connectors.NAME] type = \"mcp\" in config.toml"
    if wanted:
        if wanted not in mcp:
            raise OpError(f"no mcp connector {wanted!r}; mcp connectors: {known}")
        return wanted
    if len(mcp) == 1:
        return mcp[0]
    for arg in argv:
        stem = PurePath(arg).stem
        if stem in mcp:
            return stem
    raise OpError(f"which mcp connector does this server use? pass --connector NAME; mcp connectors: {known}")


def _mcp_connectors(d: Daemon) -> list[str]:
    return [n for n, c in d.state.connectors.by_name.items() if isinstance(c, MCPConnector)]


@op("mcp.connector")
async def mcp_connector(d: Daemon, req: dict[str, Any]) -> Reply:
    argv = [str(a) for a in req.get("argv") or []]
    return {"connector": choose_connector(_mcp_connectors(d), str(req.get("connector") or ""), argv)}


def _gateway_of(d: Daemon, sandbox: str) -> Gateway:
    for gw in list(d.state.gateways.values()):
        if gw.sandbox == sandbox:
            return gw
    raise OpError(f"no running sandbox {sandbox!r}")


@op("mcp.decide")
async def mcp_decide(d: Daemon, req: dict[str, Any]) -> Reply:
    """``sandbox``, ``connector``, ``message`` (the JSON-RPC message) or ``error`` (why the client's frame was
    not one): the outcome, after the row is journalled. Only a forwarded outcome says ``forward``."""
    started = time.time()
    gw = _gateway_of(d, str(req.get("sandbox") or ""))
    connector = str(req.get("connector") or "")
    if connector not in _mcp_connectors(d):
        raise OpError(f"no mcp connector {connector!r}")
    message, error = req.get("message"), str(req.get("error") or "")
    body = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
    rpc = str(message.get("method", "")) if isinstance(message, dict) else ""
    if not error:
        try:
            name, risk, params = message_action(message)
        except InvalidMessage as e:
            error = str(e)
    if error:
        action = Action("mcp.invalid", connector, "high", {"error": error})
        outcome = Outcome("denied", f"malformed JSON-RPC from the client: {error}")
    else:
        action = Action(name, connector, risk, dict(params))
        outcome = await decide_call(d.state, gw, Call(action, rpc, f"stdio://{gw.sandbox}/{connector}", body))
    row = _row(gw, action, outcome, rpc, len(body) if message is not None else int(req.get("size") or 0), started,
               d.state.environments.get(gw.name, ""))
    outcome = record_call(d.state, row, outcome)
    dec = outcome.decision
    return {"forward": outcome.forward, "decision": outcome.outcome, "reason": outcome.reason,
            "decision_id": dec.decision_id if dec else "", "action": action.name, "allow_with": outcome.allow_with,
            "retry_after": outcome.retry_after, "approval": outcome.approval}


def _row(gw: Gateway, action: Action, outcome: Outcome, rpc: str, size: int, started: float,
         environment: str) -> TrafficRow:
    target = action.params.get("uri") if action.name == "mcp.rpc.resources.read" else action.params.get("name")
    return call_row(gw, action, outcome, started=started, client="stdio", method=rpc[:64], scheme="stdio",
                    path=target if isinstance(target, str) else "", bytes_in=size,
                    status=_STATUS.get(outcome.outcome, 403), environment=environment,
                    uid=gw.uid if gw.uid >= 0 else None)
