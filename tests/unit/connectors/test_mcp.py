"""The MCP connector: JSON-RPC messages over Streamable HTTP -> mcp.tools.* / mcp.rpc.* actions."""

from __future__ import annotations

import json

import pytest
from trustfence.connectors.base import RequestView
from trustfence.connectors.mcp import MAX_BATCH, RPC_METHODS, MCPConnector
from trustfence.connectors.protocols import unknown_actions

HOST = "mcp.example.com"
MCP = MCPConnector("tools", (HOST,))


def view(method: str, path: str = "/mcp", body: object = None, raw: bytes | None = None,
         complete: bool = True) -> RequestView:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return RequestView(method=method, scheme="https", host=HOST, port=443, path=path,
                       headers={"content-type": "application/json",
                                "accept": "application/json, text/event-stream"},
                       body=data, body_complete=complete)


def request(method: str, params: object = None, id_: object = 1) -> dict[str, object]:
    msg: dict[str, object] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "method": method}


# What the Python SDK sends over a session, in order (initialize .. tools/call), and what each becomes.
GOLDEN: list[tuple[str, object, str, str, dict[str, object]]] = [
    ("POST", request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "mcp", "version": "1"}}, 0),
     "mcp.rpc.initialize", "low", {}),
    ("POST", notification("notifications/initialized"), "mcp.rpc.notifications.initialized", "low", {}),
    ("GET", None, "mcp.stream.open", "low", {}),
    ("POST", request("tools/list", {}), "mcp.rpc.tools.list", "low", {}),
    ("POST", request("tools/list"), "mcp.rpc.tools.list", "low", {}),
    ("POST", request("tools/call", {"name": "create_issue", "arguments": {"repo": "acme/w", "title": "t"}}),
     "mcp.tools.create_issue", "high", {"repo": "acme/w", "title": "t"}),
    ("POST", request("tools/call", {"name": "github.search-code_v2"}), "mcp.tools.github.search-code_v2",
     "high", {}),
    ("POST", request("tools/call", {"name": "noargs", "arguments": None}), "mcp.tools.noargs", "high", {}),
    ("POST", request("resources/list"), "mcp.rpc.resources.list", "low", {}),
    ("POST", request("resources/templates/list"), "mcp.rpc.resources.templates.list", "low", {}),
    ("POST", request("resources/read", {"uri": "file:///etc/hosts"}), "mcp.rpc.resources.read", "low",
     {"uri": "file:///etc/hosts"}),
    ("POST", request("resources/subscribe", {"uri": "x://y"}), "mcp.rpc.resources.subscribe", "low",
     {"uri": "x://y"}),
    ("POST", request("prompts/list"), "mcp.rpc.prompts.list", "low", {}),
    ("POST", request("prompts/get", {"name": "review", "arguments": {"code": "x"}}), "mcp.rpc.prompts.get",
     "low", {"name": "review"}),
    ("POST", request("completion/complete", {"ref": {}, "argument": {}}), "mcp.rpc.completion.complete",
     "low", {}),
    ("POST", request("logging/setLevel", {"level": "debug"}), "mcp.rpc.logging.setLevel", "low",
     {"level": "debug"}),
    ("POST", request("ping"), "mcp.rpc.ping", "low", {}),
    ("POST", notification("notifications/cancelled"), "mcp.rpc.notifications.cancelled", "low", {}),
    ("POST", notification("notifications/roots/list_changed"), "mcp.rpc.notifications.roots.list_changed",
     "low", {}),
    # the client answering a server's request (roots/list, sampling, elicitation)
    ("POST", {"jsonrpc": "2.0", "id": 7, "result": {"roots": []}}, "mcp.rpc.response", "low", {}),
    ("POST", {"jsonrpc": "2.0", "id": 8, "error": {"code": -1, "message": "no"}}, "mcp.rpc.response", "low",
     {}),
    # a method the specification does not define
    ("POST", request("admin/shutdown"), "mcp.rpc.other", "high", {"rpc": "admin/shutdown"}),
    ("DELETE", None, "mcp.session.delete", "low", {}),
]


@pytest.mark.parametrize(("method", "body", "action", "risk", "params"), GOLDEN,
                         ids=[f"{m} {a}" for m, _, a, _, _ in GOLDEN])
def test_golden(method: str, body: object, action: str, risk: str, params: dict[str, object]) -> None:
    got = MCP.classify(view(method, body=body))
    assert (got.name, got.risk, got.connector) == (action, risk, "tools")
    extracted = {k: v for k, v in got.params.items() if k != "operations"}
    assert extracted == params
    if method == "POST":
        assert got.params["operations"] == (action,)
    assert MCP.accepts_action(got.name)


def test_every_rpc_method_is_named_and_listed() -> None:
    for method in RPC_METHODS:
        got = MCP.classify(view("POST", body=request(method)))
        assert got.name == "mcp.rpc." + method.replace("/", ".")
        assert got.name in MCP.actions
    assert "tools/call" not in RPC_METHODS


def test_batch_names_the_riskiest_and_lists_all() -> None:
    batch = [notification("notifications/initialized"), request("tools/list", id_=1),
             request("tools/call", {"name": "read_file", "arguments": {"path": "a"}}, 2),
             request("tools/call", {"name": "delete_repo", "arguments": {"repo": "x"}}, 3),
             request("tools/list", id_=4)]
    got = MCP.classify(view("POST", body=batch))
    assert (got.name, got.risk) == ("mcp.tools.read_file", "high")
    assert got.params == {"operations": ("mcp.rpc.notifications.initialized", "mcp.rpc.tools.list",
                                         "mcp.tools.read_file", "mcp.tools.delete_repo")}
    # arguments of a batch are not copied (they differ per call): a condition on them fails closed
    assert got.unavailable == frozenset({"path", "repo"})


def test_an_argument_cannot_replace_the_operations_list() -> None:
    got = MCP.classify(view("POST", body=request("tools/call", {
        "name": "t", "arguments": {"operations": ["mcp.rpc.ping"], "x": 1}})))
    assert got.params == {"x": 1, "operations": ("mcp.tools.t",)}


@pytest.mark.parametrize("body", [
    b"",
    b"{not json",
    b"\xff",
    b"null",
    b"[]",
    b"[" * 50_000 + b"]" * 50_000,
    json.dumps([request("ping")] * (MAX_BATCH + 1)).encode(),
    json.dumps({"id": 1, "method": "ping"}).encode(),                       # no jsonrpc member
    json.dumps({"jsonrpc": "1.0", "id": 1, "method": "ping"}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": 1}).encode(),                        # neither request nor response
    json.dumps({"jsonrpc": "2.0", "result": {}}).encode(),                   # a response without id
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": 5}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": ""}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]}).encode(),
    json.dumps(request("tools/call", {})).encode(),                          # no tool name
    json.dumps(request("tools/call", {"name": 3})).encode(),
    json.dumps(request("tools/call", {"name": "ok", "arguments": [1, 2]})).encode(),
    json.dumps([request("ping"), "garbage"]).encode(),                  # one bad message spoils the batch
])
def test_malformed_bodies_are_invalid(body: bytes) -> None:
    got = MCP.classify(view("POST", raw=body))
    assert (got.name, got.risk) == ("mcp.invalid", "high")
    assert isinstance(got.params["error"], str)


@pytest.mark.parametrize("name", [
    "", "a b", "a/b", "../x", "a..b", ".a", "a.", "tool\u00e9", "x" * 129, "a;b", "*", "a\nb",
])
def test_tool_names_outside_the_charset_are_invalid(name: str) -> None:
    assert MCP.classify(view("POST", body=request("tools/call", {"name": name}))).name == "mcp.invalid"


def test_tool_name_at_the_length_limit() -> None:
    got = MCP.classify(view("POST", body=request("tools/call", {"name": "x" * 128})))
    assert got.name == "mcp.tools." + "x" * 128


def test_truncated_body_is_invalid() -> None:
    body = json.dumps(request("tools/call", {"name": "t", "arguments": {"big": "x"}})).encode()
    assert MCP.classify(view("POST", raw=body, complete=False)).name == "mcp.invalid"


@pytest.mark.parametrize(("method", "path", "action"), [
    ("POST", "/mcp/", "mcp.rpc.ping"),                     # trailing slash (a mounted app redirects to it)
    ("POST", "//mcp", "mcp.rpc.ping"),
    ("POST", "/x/../mcp", "mcp.rpc.ping"),
    ("POST", "/other", "mcp.unknown.post"),
    ("POST", "/mcp/extra", "mcp.unknown.post"),
    ("POST", "/mcpx", "mcp.unknown.post"),
    ("GET", "/", "mcp.unknown.get"),
    ("PUT", "/mcp", "mcp.unknown.put"),
    ("PATCH", "/mcp", "mcp.unknown.patch"),
    ("OPTIONS", "/mcp", "mcp.unknown.options"),
    ("HEAD", "/mcp", "mcp.unknown.head"),
    ("PROPFIND", "/mcp", "mcp.unknown.other"),
])
def test_paths_and_methods(method: str, path: str, action: str) -> None:
    got = MCP.classify(view(method, path, body=request("ping") if method == "POST" else None))
    assert got.name == action
    if ".unknown." in action:
        assert got.risk == "high"
        assert got.params["method"] == method


def test_configured_path_and_legacy_message_path() -> None:
    root = MCPConnector("root", (HOST,), path="/")
    assert root.classify(view("POST", "/", body=request("ping"))).name == "mcp.rpc.ping"
    assert root.classify(view("GET", "/")).name == "mcp.stream.open"
    legacy = MCPConnector("old", (HOST,), path="/sse", message_path="/messages/")
    assert legacy.path == "/sse" and legacy.message_path == "/messages"
    assert legacy.classify(view("GET", "/sse")).name == "mcp.stream.open"
    posted = legacy.classify(view("POST", "/messages/", body=request("tools/list")))
    assert posted.name == "mcp.rpc.tools.list"
    assert legacy.classify(view("GET", "/messages/")).name == "mcp.unknown.get"
    assert legacy.classify(view("DELETE", "/messages/")).name == "mcp.unknown.delete"


def test_class_attributes_and_catalogue() -> None:
    assert (MCPConnector.type_name, MCPConnector.namespace, MCPConnector.default_hosts) == ("mcp", "mcp", ())
    assert MCP.path == "/mcp"
    assert MCP.open_prefixes == frozenset({"mcp.tools."})
    assert unknown_actions("mcp") <= MCP.actions
    assert {"mcp.invalid", "mcp.stream.open", "mcp.session.delete", "mcp.rpc.response", "mcp.rpc.other",
            "mcp.rpc.tools.list", "mcp.rpc.initialize"} <= MCP.actions
    assert all(a.startswith("mcp.") for a in MCP.actions)
    assert MCP.accepts_prefix("mcp.tools.")
    assert MCP.accepts_action("mcp.tools.anything")
    assert not MCP.accepts_action("mcp.rpc.tools.call")


def test_one_classifier_for_every_transport() -> None:
    """``tf mcp wrap`` names a stdio message with the same function the HTTP endpoint uses."""
    from trustfence.connectors.mcp import InvalidMessage, message_action

    msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"q": "x"}}}
    assert message_action(msg) == ("mcp.tools.search", "high", {"q": "x"})
    assert MCP.parse(view("POST", body=msg)).name == "mcp.tools.search"
    with pytest.raises(InvalidMessage):
        message_action([msg])


def test_an_mcp_connector_without_a_url_serves_stdio_only() -> None:
    from trustfence.connectors.registry import ConnectorSet, build_connector

    c = build_connector("tools", "mcp")
    assert isinstance(c, MCPConnector) and c.hosts == ()
    assert ConnectorSet([c]).for_host("tools") is None
    with pytest.raises(ValueError, match="takes one url"):
        build_connector("tools", "mcp", urls=["https://a.example/mcp", "https://b.example/mcp"])
