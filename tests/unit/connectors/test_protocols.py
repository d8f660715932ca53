"""Shared classifiers (gRPC, WebSocket upgrade), the generic connector's GraphQL, the multi-operation and
unknown rules, and a property: classify never raises and never leaves its connector's names."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trustfence.connectors import build_connector
from trustfence.connectors.base import Connector, RequestView, normalise_path
from trustfence.connectors.generic import GenericConnector
from trustfence.connectors.github import GitHubConnector
from trustfence.connectors.mcp import MCPConnector
from trustfence.connectors.protocols import (
    COMMON_OPEN_PREFIXES,
    combine,
    common_actions,
    unknown_action,
    unknown_actions,
)
from trustfence.connectors.webhook import WebhookConnector
from trustfence.policy.model import validate_pattern

GH = GitHubConnector("github", GitHubConnector.default_hosts)
API = GenericConnector("api", ("api.example.com",))
MCP = MCPConnector("tools", ("mcp.example.com",))
HOOK = WebhookConnector("hooks", urls=["https://hooks.example.com/in/s3cret"])
CONNECTORS: tuple[Connector, ...] = (GH, API, MCP, HOOK, *(build_connector(t, t) for t in
                                                            ("openai", "anthropic", "stripe", "slack")))


def view(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
         host: str = "api.example.com") -> RequestView:
    return RequestView(method=method, scheme="https", host=host, port=443, path=path, headers=headers or {},
                       body=body)


GRPC = {"content-type": "application/grpc"}


@pytest.mark.parametrize(("ctype", "path", "name", "service", "rpc"), [
    ("application/grpc", "/helloworld.Greeter/SayHello", "grpc.helloworld.Greeter.SayHello",
     "helloworld.Greeter", "SayHello"),
    ("application/grpc+proto", "/google.pubsub.v1.Publisher/Publish",
     "grpc.google.pubsub.v1.Publisher.Publish", "google.pubsub.v1.Publisher", "Publish"),
    ("Application/GRPC-Web+proto", "/Greeter/SayHello", "grpc.Greeter.SayHello", "Greeter", "SayHello"),
    ("application/grpc-web-text", "/a_b.C_d/_e1", "grpc.a_b.C_d._e1", "a_b.C_d", "_e1"),
    ("application/grpc", "/pkg.Svc/../pkg.Svc/Do", "grpc.pkg.Svc.Do", "pkg.Svc", "Do"),   # normalised first
])
def test_grpc_calls(ctype: str, path: str, name: str, service: str, rpc: str) -> None:
    for connector in (GH, API, MCP):
        got = connector.classify(view("POST", path, {"content-type": ctype}))
        assert (got.name, got.risk, got.connector) == (name, "medium", connector.name)
        assert dict(got.params) == {"service": service, "rpc": rpc}
        assert connector.accepts_action(got.name)
        assert validate_pattern(got.name) == name
    # the webhook connector's paths may be secrets: they never become a gRPC name
    hooked = HOOK.classify(view("POST", path, {"content-type": ctype}))
    assert (hooked.name, hooked.risk, hooked.connector) == ("grpc.invalid", "high", "hooks")


@pytest.mark.parametrize("path", [
    "/", "/Svc", "/pkg.Svc/", "/pkg.Svc/Do/More", "/pkg..Svc/Do", "/.Svc/Do", "/pkg.Svc/Do.It",
    "/1pkg.Svc/Do", "/pkg.Svc/Do-It", "/pkg.S vc/Do", "/pkg.Svc/" + "x" * 300, "/pkg.Sv%63/Do%2F",
])
def test_grpc_malformed_paths(path: str) -> None:
    got = API.classify(view("POST", path, GRPC))
    assert (got.name, got.risk, got.connector) == ("grpc.invalid", "high", "api")
    assert set(got.params) == {"path"}


def test_grpc_needs_post_and_the_content_type() -> None:
    assert API.classify(view("GET", "/pkg.Svc/Do", GRPC)).name == "http.get"
    assert API.classify(view("PUT", "/pkg.Svc/Do", GRPC)).name == "http.put"
    assert API.classify(view("POST", "/pkg.Svc/Do", {"content-type": "application/json"})).name == "http.post"
    assert API.classify(view("post", "/pkg.Svc/Do", GRPC)).name == "grpc.pkg.Svc.Do"
    assert GH.classify(view("DELETE", "/gists/abc", GRPC, host="api.github.com")).name == "github.gist.delete"


@pytest.mark.parametrize("upgrade", ["websocket", "WebSocket", " WEBSOCKET ", "h2c, websocket"])
def test_websocket_upgrade(upgrade: str) -> None:
    for connector in CONNECTORS:
        got = connector.classify(view("GET", "/socket//x/../", {"upgrade": upgrade, "connection": "Upgrade"}))
        plain = connector.classify(view("GET", "/socket//x/../"))
        assert (got.name, got.risk, got.connector) == (f"{connector.namespace}.websocket.open", "high",
                                                       connector.name)
        # the upgrade is also the plain GET (an upstream may ignore the header): both are decided
        assert got.params["operations"] == (got.name, plain.name)
        assert got.params["path"] == ("/socket/" if connector is not HOOK else "/socket")
        assert got.name in connector.all_actions
        assert got.name not in connector.actions  # the shared actions stay out of the connector's own list


def test_an_upgrade_never_hides_the_route_it_is_sent_to() -> None:
    openai = build_connector("openai", "openai")
    got = openai.classify(view("GET", "/v1/files/f1/content", {"upgrade": "websocket"}, host="api.openai.com"))
    assert got.params["operations"] == ("openai.websocket.open", "openai.file.content.read")
    got = GH.classify(view("GET", "/repos/o/r/issues", {"upgrade": "websocket"}, host="api.github.com"))
    assert got.params["operations"] == ("github.websocket.open", "github.issue.list")


def test_a_marked_websocket_endpoint_is_its_own_action() -> None:
    openai = build_connector("openai", "openai")
    got = openai.classify(view("GET", "/v1/realtime", {"upgrade": "websocket"}, host="api.openai.com"))
    assert got.name == "openai.realtime.connect" and "operations" not in got.params
    assert openai.websocket_actions == {"openai.realtime.connect"}
    assert GH.websocket_actions == frozenset()


def test_not_a_websocket_upgrade() -> None:
    assert API.classify(view("GET", "/s", {"upgrade": "h2c"})).name == "http.get"
    assert API.classify(view("GET", "/s", {"upgrade": "websockets"})).name == "http.get"
    assert API.classify(view("POST", "/s", {"upgrade": "websocket"})).name == "http.post"
    assert API.classify(view("GET", "/s")).name == "http.get"


def test_catalogue_helpers() -> None:
    assert common_actions("http") == {"http.websocket.open", "grpc.invalid"}
    assert COMMON_OPEN_PREFIXES == {"grpc."}
    assert API.all_actions == API.actions | {"http.websocket.open", "grpc.invalid"}
    assert API.all_open_prefixes == {"grpc.", "http.graphql.mutation."}
    assert API.accepts_action("grpc.any.Service.Method")
    assert API.accepts_action("http.graphql.mutation.deleteEverything")
    assert not API.accepts_action("github.pr.merge")
    for prefix in ("grpc.", "grpc.pkg.", "http.", "http.graphql.", "http.graphql.mutation.",
                   "http.graphql.mutation.x"):
        assert API.accepts_prefix(prefix), prefix
    for prefix in ("github.", "http.nothing.", "grpcx."):
        assert not API.accepts_prefix(prefix), prefix


@pytest.mark.parametrize(("path", "body", "name", "risk"), [
    ("/graphql", {"query": "{ a }"}, "http.graphql.query", "low"),
    ("/v1/graphql/", {"query": "mutation { drop { id } }"}, "http.graphql.mutation.drop", "high"),
    ("/api/graphql", [{"query": "{ a }"}, {"query": "subscription { b }"}], "http.graphql.query", "low"),
    ("/graphql", "nonsense", "http.graphql.invalid", "high"),
])
def test_generic_graphql(path: str, body: object, name: str, risk: str) -> None:
    got = API.classify(view("POST", path, {"content-type": "application/json"}, json.dumps(body).encode()))
    assert (got.name, got.risk, got.connector) == (name, risk, "api")
    assert got.params["path"] == path
    assert name in got.params["operations"]  # type: ignore[operator]
    assert API.accepts_action(name)


def test_generic_graphql_only_for_post_to_a_graphql_path() -> None:
    body = json.dumps({"query": "mutation { drop }"}).encode()
    assert API.classify(view("GET", "/graphql", body=body)).name == "http.get"
    assert API.classify(view("POST", "/graphqlx", body=body)).name == "http.post"
    assert API.classify(view("POST", "/graphql/x", body=body)).name == "http.post"


def test_combine_rule() -> None:
    got = combine("c", [("a.low", "low"), ("a.high1", "high"), ("a.med", "medium"), ("a.high2", "high"),
                        ("a.low", "low")], {"x": 1, "operations": "forged"}, frozenset({"y"}))
    assert (got.name, got.risk, got.connector) == ("a.high1", "high", "c")
    assert dict(got.params) == {"x": 1, "operations": ("a.low", "a.high1", "a.med", "a.high2")}
    assert got.unavailable == {"y"}
    assert combine("c", [("only", "critical")]).params == {"operations": ("only",)}


@pytest.mark.parametrize(("method", "verb"), [
    ("GET", "get"), ("HEAD", "head"), ("OPTIONS", "options"), ("POST", "post"), ("PUT", "put"),
    ("PATCH", "patch"), ("DELETE", "delete"), ("TRACE", "other"), ("CONNECT", "other"), ("", "other"),
])
def test_unknown_rule(method: str, verb: str) -> None:
    got = unknown_action("c", "ns", view(method, "/p"))
    assert (got.name, got.risk) == (f"ns.unknown.{verb}", "high")
    assert dict(got.params) == {"method": method, "path": "/p"}
    assert got.name in unknown_actions("ns")
    assert dict(unknown_action("c", "ns", view(method, "/p"), "/redacted").params)["path"] == "/redacted"


def test_deeply_nested_json_body_on_a_body_route() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    got = GH.classify(view("POST", "/repos/a/b/pulls", {"content-type": "application/json"}, body,
                           host="api.github.com"))
    assert got.name == "github.pr.create"
    assert got.unavailable


# --- property: classify is total and stays within its connector's names ---

_TOKENS = st.sampled_from(["graphql", "mcp", "in", "s3cret", "pkg.Svc", "Do", "..", ".", "", "%2F", "%2e%2e",
                           "repos", "acme", "pulls", "1", "merge", "api", "v3", "gists", "a b", "\u00e9"])
_PATHS = st.one_of(st.lists(_TOKENS, max_size=7).map(lambda parts: "/" + "/".join(parts)),
                   st.text(max_size=40))
_METHODS = st.one_of(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE",
                                      "get", "post"]), st.text(max_size=8))
_HEADER_VALUES = st.one_of(st.sampled_from(["application/json", "application/grpc", "application/graphql",
                                            "multipart/form-data; boundary=B", "websocket",
                                            "WebSocket, h2c"]),
                           st.text(max_size=20))
_HEADERS = st.dictionaries(st.sampled_from(["content-type", "upgrade", "connection", "accept"]),
                           _HEADER_VALUES, max_size=3)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4),
                     max_leaves=12)
_MESSAGES = st.fixed_dictionaries({"jsonrpc": st.sampled_from(["2.0", "1.0"]),
                                   "method": st.sampled_from(["tools/call", "tools/list", "ping", "x/y"]),
                                   "params": st.fixed_dictionaries({"name": st.text(max_size=10),
                                                                    "arguments": _JSON})})
_GRAPHQL = st.fixed_dictionaries({"query": st.sampled_from(["{ a }", "mutation { b c }", "subscription { s }",
                                                            "mutation { ...F } fragment F on M { d }", "{"]),
                                  "operationName": st.none() | st.text(max_size=5)})
_BODIES = st.one_of(st.binary(max_size=60),
                    st.one_of(_JSON, _MESSAGES, st.lists(_MESSAGES, max_size=3), _GRAPHQL,
                              st.lists(_GRAPHQL, max_size=3)).map(lambda v: json.dumps(v).encode()))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connector=st.sampled_from(CONNECTORS), method=_METHODS, path=_PATHS, headers=_HEADERS, body=_BODIES,
       complete=st.booleans(), host=st.sampled_from(["api.example.com", "api.github.com", "mcp.example.com",
                                                     "hooks.example.com", "api.stripe.com", "slack.com"]))
def test_classify_is_total_and_stays_in_its_namespace(connector: Connector, method: str, path: str,
                                                      headers: dict[str, str], body: bytes, complete: bool,
                                                      host: str) -> None:
    got = connector.classify(RequestView(method=method, scheme="https", host=host, port=443, path=path,
                                         headers=headers, body=body, body_complete=complete))
    assert got.connector == connector.name
    assert got.name.startswith((connector.namespace + ".", "grpc."))
    assert connector.accepts_action(got.name), got.name
    assert got.risk in ("low", "medium", "high", "critical")
    operations = got.params.get("operations", (got.name,))
    assert isinstance(operations, tuple) and got.name in operations
    assert all(connector.accepts_action(str(name)) for name in operations)
    if connector is HOOK and normalise_path(path).startswith("/in/s3cret"):
        assert "s3cret" not in repr(got.params) + got.name
