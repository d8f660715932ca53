"""The MCP connector: Model Context Protocol over Streamable HTTP becomes ``mcp.*`` actions.

An MCP server has one endpoint (``path``, e.g. ``/mcp``). The client ``POST``s JSON-RPC 2.0 messages to it
(one message, or a batch as a JSON array), ``GET``s it to open the server's event stream, and ``DELETE``s it
to end the session:

- ``tools/call`` is ``mcp.tools.<tool name>`` (high: what a tool does is the server's to define, so it is
  treated like an unknown request until a permission names it); the call's ``arguments`` are the params.
  Tool names are limited to the characters the MCP specification allows (letters, digits, ``_``, ``-``, ``.``;
  1-128, no empty dot segment); a name outside them is ``mcp.invalid``;
- every other method is ``mcp.rpc.<method with / turned into .>`` (``tools/list`` -> ``mcp.rpc.tools.list``,
  ``notifications/initialized`` -> ``mcp.rpc.notifications.initialized``), low risk; a method the
  specification does not define is ``mcp.rpc.other`` (high); a response the client sends to a server's request
  (roots, sampling, elicitation) is ``mcp.rpc.response``;
- ``GET`` on the endpoint is ``mcp.stream.open``, ``DELETE`` is ``mcp.session.delete`` (both low);
- a body that is not JSON, not JSON-RPC 2.0, or beyond the inspection bound is ``mcp.invalid`` (high);
- any other path or method on the host is ``mcp.unknown.<method>``.

A batch is one Action by the multi-operation rule (``protocols.combine``): the name is its first highest-risk
message, ``params["operations"]`` lists every message's action. A batch's arguments are not copied into params
(they may differ per call): their names are ``unavailable``, so a policy condition on them fails closed.

The older HTTP+SSE transport (protocol 2024-11-05) posts messages to a second path: give it as
``message_path`` (the stream then stays on ``path``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from trustfence.connectors.base import Action, Connector, RequestView, Risk, normalise_path, parse_json
from trustfence.connectors.protocols import OPERATIONS, combine, unknown_action, unknown_actions

__all__ = ["MAX_BATCH", "RPC_METHODS", "InvalidMessage", "MCPConnector", "message_action"]

RPC_METHODS: Mapping[str, Risk] = {
    # Client-to-server requests and notifications of the MCP specification (2024-11-05 to 2025-11-25, plus
    # the methods of the next draft), other than tools/call.
    "initialize": "low",
    "ping": "low",
    "tools/list": "low",
    "resources/list": "low",
    "resources/templates/list": "low",
    "resources/read": "low",
    "resources/subscribe": "low",
    "resources/unsubscribe": "low",
    "prompts/list": "low",
    "prompts/get": "low",
    "completion/complete": "low",
    "logging/setLevel": "low",
    "tasks/get": "low",
    "tasks/list": "low",
    "tasks/result": "low",
    "tasks/cancel": "low",
    "server/discover": "low",
    "subscriptions/listen": "low",
    "notifications/initialized": "low",
    "notifications/cancelled": "low",
    "notifications/progress": "low",
    "notifications/roots/list_changed": "low",
}

# Fields of a request's params copied into the Action's params (strings only), so a policy can narrow by them.
_RPC_PARAMS: Mapping[str, tuple[str, ...]] = {
    "resources/read": ("uri",),
    "resources/subscribe": ("uri",),
    "resources/unsubscribe": ("uri",),
    "prompts/get": ("name",),
    "logging/setLevel": ("level",),
}

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_TOOL_NAME_MAX = 128
MAX_BATCH = 64
"""Messages in one JSON-RPC batch; a longer batch is ``mcp.invalid``."""

_Part = tuple[str, Risk, Mapping[str, object]]


class InvalidMessage(ValueError):
    """A message that is not a JSON-RPC 2.0 message this connector can name; the text is a fixed phrase."""


_Invalid = InvalidMessage


def _endpoint(path: str) -> str:
    """A configured or requested path in the form compared: normalised, no trailing slash (``/`` stays)."""
    return normalise_path(path).rstrip("/") or "/"


class MCPConnector(Connector):
    """``mcp.*`` actions for one MCP server endpoint (``path``) on the configured hosts."""

    type_name = "mcp"
    namespace = "mcp"
    open_prefixes = frozenset({"mcp.tools."})

    def __init__(self, name: str, hosts: tuple[str, ...], path: str = "/mcp", message_path: str = "") -> None:
        super().__init__(name, hosts)
        self.path = _endpoint(path)
        self.message_path = _endpoint(message_path) if message_path else ""

    @property
    def actions(self) -> frozenset[str]:
        rpc = {"mcp.rpc." + m.replace("/", ".") for m in RPC_METHODS}
        return frozenset(rpc | {"mcp.rpc.other", "mcp.rpc.response", "mcp.invalid", "mcp.stream.open",
                                "mcp.session.delete"}) | unknown_actions("mcp")

    def parse(self, view: RequestView) -> Action:
        target = view.path.rstrip("/") or "/"
        if view.method == "POST" and target in (self.path, self.message_path):
            return self._messages(view)
        if target == self.path and view.method == "GET":
            return Action("mcp.stream.open", self.name, "low", {})
        if target == self.path and view.method == "DELETE":
            return Action("mcp.session.delete", self.name, "low", {})
        return unknown_action(self.name, "mcp", view)

    def _messages(self, view: RequestView) -> Action:
        try:
            if not view.body_complete:
                raise _Invalid("body beyond the inspection bound")
            try:
                data = parse_json(view.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise _Invalid("body is not JSON") from None
            messages = data if isinstance(data, list) else [data]
            if not messages or len(messages) > MAX_BATCH:
                raise _Invalid("batch is empty or too large")
            parts = [message_action(m) for m in messages]
        except _Invalid as e:
            return Action("mcp.invalid", self.name, "high", {"error": str(e)})
        if len(parts) == 1:
            return combine(self.name, [(parts[0][0], parts[0][1])], parts[0][2])
        withheld = frozenset(k for _, _, params in parts for k in params)
        return combine(self.name, [(n, r) for n, r, _ in parts], None, withheld)


def message_action(message: object) -> _Part:
    """One JSON-RPC message's action name, risk and params, whatever carried it (Streamable HTTP here, stdio
    in ``tf mcp wrap``). Raises InvalidMessage for anything that is not a JSON-RPC 2.0 message."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise _Invalid("not a JSON-RPC 2.0 message")
    if "method" not in message:
        if "id" in message and ("result" in message or "error" in message):
            return "mcp.rpc.response", "low", {}
        raise _Invalid("neither a request, a notification nor a response")
    method, params = message["method"], message.get("params")
    if not isinstance(method, str) or not method:
        raise _Invalid("method is not a string")
    if params is not None and not isinstance(params, dict):
        raise _Invalid("params is not an object")
    params = params or {}
    if method == "tools/call":
        return _tool_call(params)
    if method in RPC_METHODS:
        picked = {k: params[k] for k in _RPC_PARAMS.get(method, ()) if isinstance(params.get(k), str)}
        return "mcp.rpc." + method.replace("/", "."), RPC_METHODS[method], picked
    return "mcp.rpc.other", "high", {"rpc": method[:_TOOL_NAME_MAX]}


def _tool_call(params: Mapping[str, object]) -> _Part:
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str) or len(name) > _TOOL_NAME_MAX or not _TOOL_NAME.match(name):
        raise _Invalid("tool name missing or outside the allowed characters")
    if arguments is not None and not isinstance(arguments, dict):
        raise _Invalid("tool arguments are not an object")
    # "operations" is set by combine and cannot be an argument's: the enforcer reads it as the list to decide.
    args = {k: v for k, v in (arguments or {}).items() if k != OPERATIONS}
    return f"mcp.tools.{name}", "high", args
