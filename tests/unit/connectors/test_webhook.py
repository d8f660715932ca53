"""The webhook connector: configured URLs -> webhook.<method>, and the URL's secret never reaches params."""

from __future__ import annotations

import pytest
from trustfence.connectors.base import RequestView
from trustfence.connectors.protocols import unknown_actions
from trustfence.connectors.webhook import WebhookConnector, parse_endpoint

SLACK = "https://hooks.slack.com/services/T0AAA/B0BBB/s3cr3tT0k3n"
DISCORD = "https://discord.com/api/webhooks/123/t0k3nV4lue"
QUERY = "https://hooks.example.com:8443/in?key=qu3ryS3cret&team=a"
SECRETS = ("s3cr3tT0k3n", "t0k3nV4lue", "qu3ryS3cret", "B0BBB")

HOOKS = WebhookConnector("hooks", urls={"alerts": SLACK, "chat": DISCORD, "keyed": QUERY})


def view(method: str, host: str, path: str, query: tuple[tuple[str, str], ...] = (), port: int = 443,
         headers: dict[str, str] | None = None) -> RequestView:
    return RequestView(method=method, scheme="https", host=host, port=port, path=path, query=query,
                       headers=headers or {"content-type": "application/json"}, body=b'{"text": "hi"}')


def assert_no_secret(params: object) -> None:
    assert not any(s in repr(params) for s in SECRETS), params


@pytest.mark.parametrize(("method", "host", "path", "query", "port", "action", "risk", "label", "index"), [
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n", (), 443, "webhook.post", "medium",
     "alerts", 0),
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n/", (), 443, "webhook.post", "medium",
     "alerts", 0),
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n/extra", (), 443, "webhook.post", "medium",
     "alerts", 0),
    ("GET", "discord.com", "/api/webhooks/123/t0k3nV4lue", (), 443, "webhook.get", "low", "chat", 1),
    ("PATCH", "discord.com", "/api/webhooks/123/t0k3nV4lue/messages/9", (), 443, "webhook.patch", "medium",
     "chat", 1),
    ("DELETE", "discord.com", "/api/webhooks/123/t0k3nV4lue", (), 443, "webhook.delete", "high", "chat", 1),
    ("HEAD", "discord.com", "/api/webhooks/123/t0k3nV4lue", (), 443, "webhook.head", "low", "chat", 1),
    ("OPTIONS", "discord.com", "/api/webhooks/123/t0k3nV4lue", (), 443, "webhook.options", "low", "chat", 1),
    ("PUT", "discord.com", "/api/webhooks/123/t0k3nV4lue", (), 443, "webhook.put", "medium", "chat", 1),
    ("POST", "hooks.example.com", "/in", (("team", "a"), ("key", "qu3ryS3cret"), ("x", "y")), 8443,
     "webhook.post", "medium", "keyed", 2),
])
def test_configured_endpoints(method: str, host: str, path: str, query: tuple[tuple[str, str], ...],
                              port: int, action: str, risk: str, label: str, index: int) -> None:
    got = HOOKS.classify(view(method, host, path, query, port))
    assert (got.name, got.risk, got.connector) == (action, risk, "hooks")
    assert dict(got.params) == {"endpoint": label, "index": index}
    assert_no_secret(got.params)
    assert got.name in HOOKS.actions


@pytest.mark.parametrize(("method", "host", "path", "query", "port", "recorded"), [
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3", (), 443, "/services/…"),      # near miss
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3nX", (), 443, "/services/…"),
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB", (), 443, "/services/…"),
    ("POST", "hooks.slack.com", "/", (), 443, "/"),
    ("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n", (), 8443, "/services/…"),   # other port
    ("POST", "discord.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n", (), 443, "/services/…"),  # another host
    ("POST", "hooks.example.com", "/in", (("team", "a"),), 8443, "/in"),                         # key missing
    ("POST", "hooks.example.com", "/in", (("key", "wrong"), ("team", "a")), 8443, "/in"),
    ("POST", "hooks.example.com", "/in", (("key", "qu3ryS3cret"), ("team", "a")), 443, "/in"),
])
def test_other_requests_are_unknown_and_redacted(method: str, host: str, path: str,
                                                 query: tuple[tuple[str, str], ...], port: int,
                                                 recorded: str) -> None:
    got = HOOKS.classify(view(method, host, path, query, port))
    assert (got.name, got.risk) == ("webhook.unknown.post", "high")
    assert dict(got.params) == {"method": "POST", "path": recorded}
    assert_no_secret(got.params)


def test_unusual_methods() -> None:
    got = HOOKS.classify(view("PROPFIND", "discord.com", "/api/webhooks/123/t0k3nV4lue"))
    assert (got.name, got.risk) == ("webhook.other", "high")
    assert dict(got.params) == {"endpoint": "chat", "index": 1, "method": "PROPFIND"}
    assert HOOKS.classify(view("TRACE", "discord.com", "/nope/x")).name == "webhook.unknown.other"


def test_shared_classifiers_redact_the_path_too() -> None:
    ws = HOOKS.classify(view("GET", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n",
                             headers={"upgrade": "websocket"}))
    assert ws.name == "webhook.websocket.open"
    assert ws.params["path"] == "/services/…"
    assert_no_secret(ws.params)
    grpc = HOOKS.classify(view("POST", "hooks.slack.com", "/services/T0AAA/B0BBB/s3cr3tT0k3n",
                               headers={"content-type": "application/grpc"}))
    assert grpc.name == "grpc.invalid"
    assert_no_secret(grpc.params)
    # a path shaped like a gRPC method still never becomes an action name
    named = WebhookConnector("n", urls=["https://h.example/svc.In/s3cr3tT0k3n"])
    got = named.classify(view("POST", "h.example", "/svc.In/s3cr3tT0k3n",
                              headers={"content-type": "application/grpc"}))
    assert (got.name, dict(got.params)) == ("grpc.invalid", {"path": "/svc.In/…"})


def test_sequence_of_urls_is_labelled_by_index_and_hosts_are_derived() -> None:
    hooks = WebhookConnector("h", ("extra.example.com",), urls=[SLACK, DISCORD])
    assert hooks.hosts == ("extra.example.com", "hooks.slack.com", "discord.com")
    got = hooks.classify(view("POST", "discord.com", "/api/webhooks/123/t0k3nV4lue"))
    assert dict(got.params) == {"endpoint": "1", "index": 1}
    assert hooks.classify(view("POST", "extra.example.com", "/x")).name == "webhook.unknown.post"
    assert WebhookConnector("empty", ("a.example",)).classify(view("POST", "a.example", "/")).name == \
        "webhook.unknown.post"


def test_url_parsing() -> None:
    ep = parse_endpoint(" HTTP://Hooks.Example.COM./a/%2e%2e/b//c/?x=1 ", "l")
    assert (ep.label, ep.host, ep.port, ep.path) == ("l", "hooks.example.com", 80, "/b/c")
    assert ep.query == (("x", "1"),)
    assert parse_endpoint("https://h.example", "r").path == "/"
    for bad in ("ftp://h/x", "h.example/x", "https:///x", ""):
        with pytest.raises(ValueError, match="not an http"):
            parse_endpoint(bad, "bad")


def test_root_url_covers_the_whole_host() -> None:
    hooks = WebhookConnector("h", urls=["https://in.example.com/"])
    assert hooks.classify(view("POST", "in.example.com", "/anything/here")).name == "webhook.post"


def test_class_attributes_and_catalogue() -> None:
    assert (WebhookConnector.type_name, WebhookConnector.namespace) == ("webhook", "webhook")
    assert WebhookConnector.default_hosts == ()
    assert HOOKS.actions == frozenset({"webhook.get", "webhook.head", "webhook.options", "webhook.post",
                                       "webhook.put", "webhook.patch", "webhook.delete",
                                       "webhook.other"}) | unknown_actions("webhook")
