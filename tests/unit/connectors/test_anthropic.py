"""The Anthropic connector: every route's action, risk and params, beta paths, unreadable bodies, unknowns."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from trustfence.connectors.anthropic import ANTHROPIC_ROUTES, AnthropicConnector
from trustfence.connectors.base import RequestView, Route
from trustfence.connectors.generic import METHODS

AN = AnthropicConnector("anthropic", AnthropicConnector.default_hosts)
UNKNOWN = {f"anthropic.unknown.{m}" for m in (*METHODS, "other")}


def view(method: str, path: str, body: object = None, *, query: tuple[tuple[str, str], ...] = (),
         complete: bool = True) -> RequestView:
    """A JSON request (no body when ``body`` is None; raw bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return RequestView(method=method, scheme="https", host="api.anthropic.com", port=443, path=path,
                       query=query, body=raw, body_complete=complete,
                       headers={"content-type": "application/json", "anthropic-version": "2023-06-01"})


def upload(filename: str, content: bytes, *, complete: bool = True) -> RequestView:
    """A Files API upload encoded exactly as httpx (and so the official SDK) encodes it."""
    req = httpx.Request("POST", "https://api.anthropic.com/v1/files",
                        files={"file": (filename, content, "application/pdf")})
    return RequestView(method="POST", scheme="https", host="api.anthropic.com", port=443, path="/v1/files",
                       query=(("beta", "true"),),
                       headers={"content-type": req.headers["content-type"],
                                "anthropic-beta": "files-api-2025-04-14"},
                       body=req.read(), body_complete=complete)


B = "/v1/messages/batches/msgbatch_01abc"
MSG = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}

GOLDEN: list[tuple[RequestView, str, str, dict[str, object]]] = [
    # (request, expected action, expected risk, expected params)
    (view("POST", "/v1/messages", {**MSG, "stream": True, "temperature": 0.2}), "anthropic.message.create",
     "medium", {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True}),
    (view("POST", "/v1/messages/count_tokens", {"model": "claude-sonnet-4-5", "messages": []}),
     "anthropic.message.count_tokens", "low", {"model": "claude-sonnet-4-5"}),
    (view("POST", "/v1/messages/batches", {"requests": [{"custom_id": "a", "params": MSG}]}),
     "anthropic.message_batch.create", "medium", {}),
    (view("GET", "/v1/messages/batches", query=(("limit", "20"),)),
     "anthropic.message_batch.list", "low", {}),
    (view("GET", B), "anthropic.message_batch.read", "low", {"message_batch_id": "msgbatch_01abc"}),
    (view("POST", B + "/cancel"),
     "anthropic.message_batch.cancel", "medium", {"message_batch_id": "msgbatch_01abc"}),
    (view("GET", B + "/results"), "anthropic.message_batch.results.read", "low",
     {"message_batch_id": "msgbatch_01abc"}),
    (view("DELETE", B), "anthropic.message_batch.delete", "high", {"message_batch_id": "msgbatch_01abc"}),
    (view("GET", "/v1/models"), "anthropic.model.list", "low", {}),
    (view("GET", "/v1/models/claude-opus-4-1-20250805"), "anthropic.model.read", "low",
     {"model_id": "claude-opus-4-1-20250805"}),
    (upload("report.pdf", b"%PDF-1.7"), "anthropic.file.upload", "medium", {"file": "report.pdf"}),
    (view("GET", "/v1/files", query=(("beta", "true"),)), "anthropic.file.list", "low", {}),
    (view("GET", "/v1/files/file_011abc"), "anthropic.file.read", "low", {"file_id": "file_011abc"}),
    (view("GET", "/v1/files/file_011abc/content"),
     "anthropic.file.content.read", "low", {"file_id": "file_011abc"}),
    (view("DELETE", "/v1/files/file_011abc"), "anthropic.file.delete", "high", {"file_id": "file_011abc"}),
    (view("POST", "/v1/complete", {"model": "claude-2.1", "prompt": "\n\nHuman: hi\n\nAssistant:",
                                   "max_tokens_to_sample": 256, "stream": False}),
     "anthropic.completion.create", "medium",
     {"model": "claude-2.1", "max_tokens_to_sample": 256, "stream": False}),
]


@pytest.mark.parametrize(("req", "action", "risk", "params"), GOLDEN,
                         ids=[f"{v.method} {v.path} -> {a}" for v, a, _, _ in GOLDEN])
def test_golden(req: RequestView, action: str, risk: str, params: dict[str, object]) -> None:
    got = AN.classify(req)
    assert (got.name, got.risk, got.connector) == (action, risk, "anthropic")
    assert dict(got.params) == params
    assert got.unavailable == frozenset()


@pytest.mark.parametrize("route", ANTHROPIC_ROUTES,
                         ids=[f"{r.method} {r.template}" for r in ANTHROPIC_ROUTES])
def test_golden_table_covers_every_route(route: Route) -> None:
    pattern = route.compile()
    assert any(v.method == route.method and pattern.match(v.path) and a == f"anthropic.{route.action}"
               for v, a, _, _ in GOLDEN), route


def test_beta_messages_are_the_same_action() -> None:
    """The SDK's beta namespace adds ``?beta=true`` and a header; the path, so the action, is unchanged."""
    beta = view("POST", "/v1/messages", {**MSG, "stream": False}, query=(("beta", "true"),))
    got = AN.classify(beta)
    assert got.name == "anthropic.message.create"
    assert dict(got.params) == {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": False}
    assert AN.classify(view("DELETE", B, query=(("beta", "true"),))).name == "anthropic.message_batch.delete"


def test_batches_are_not_under_the_message_prefix() -> None:
    """A permission on ``anthropic.message.*`` must not reach batch deletion."""
    assert not any(a.startswith("anthropic.message.") and "batch" in a for a in AN.actions)
    assert {a for a in AN.actions if a.startswith("anthropic.message.")} == {
        "anthropic.message.create", "anthropic.message.count_tokens"}


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/messages"),                          # outside /v1
    ("POST", "/v2/messages"),
    ("GET", "/"),
    ("GET", "/v1/messages"),                        # messages are only created
    ("PUT", "/v1/messages"),
    ("DELETE", "/v1/messages/batches"),
    ("POST", "/v1/messages/batches/b1/results"),
    ("GET", "/v1/messages/batches/b1/results/x"),
    ("POST", "/v1/files/file_1"),
    ("DELETE", "/v1/models/claude-3-haiku-20240307"),
    ("GET", "/v1/skills"),                          # not modelled: fails closed
    ("HEAD", "/v1/models"),
    ("OPTIONS", "/v1/messages"),
    ("PATCH", "/v1/files/file_1"),
    ("TRACE", "/v1/messages"),
])
def test_unknown(method: str, path: str) -> None:
    got = AN.classify(view(method, path))
    verb = method.lower()
    assert got.name == f"anthropic.unknown.{verb if verb in METHODS else 'other'}"
    assert (got.risk, got.connector) == ("high", "anthropic")
    assert dict(got.params) == {"method": method, "path": path}
    assert got.name in AN.actions


@pytest.mark.parametrize("req", [
    view("POST", "/v1/messages", b'{"model": "claude-sonnet-4-5", "max_tok'),
    view("POST", "/v1/messages", b"[1, 2, 3]"),
    view("POST", "/v1/messages", b"\xc3\x28"),
    view("POST", "/v1/messages", MSG, complete=False),
], ids=["malformed", "array", "not-utf8", "truncated"])
def test_unreadable_body_marks_params_unavailable(req: RequestView) -> None:
    got = AN.classify(req)
    assert got.name == "anthropic.message.create"
    assert dict(got.params) == {}
    assert got.unavailable == {"model", "max_tokens", "stream"}


def test_truncated_upload_and_bodyless_routes() -> None:
    cut = AN.classify(upload("big.pdf", b"%PDF" * 64, complete=False))
    assert (cut.name, dict(cut.params), cut.unavailable) == ("anthropic.file.upload", {}, frozenset({"file"}))
    # a batch create extracts nothing, so an unreadable batch body leaves nothing unavailable
    batch = AN.classify(view("POST", "/v1/messages/batches", b"{oops"))
    assert (batch.name, dict(batch.params), batch.unavailable) == ("anthropic.message_batch.create", {},
                                                                   frozenset())
    empty = AN.classify(view("POST", "/v1/messages"))
    assert (dict(empty.params), empty.unavailable) == ({}, frozenset())


@pytest.mark.parametrize(("method", "path", "action"), [
    ("post", "/v1/messages", "anthropic.message.create"),
    ("POST", "//v1//messages/", "anthropic.message.create"),
    ("POST", "/v1/messages%2Fcount_tokens", "anthropic.message.count_tokens"),
    ("DELETE", "/v1/models/../files/file_1", "anthropic.file.delete"),
    ("GET", "/v1/messages/batches/", "anthropic.message_batch.list"),
])
def test_normalised_paths(method: str, path: str, action: str) -> None:
    assert AN.classify(view(method, path)).name == action


def test_class_attributes() -> None:
    assert (AnthropicConnector.type_name, AnthropicConnector.namespace) == ("anthropic", "anthropic")
    assert AnthropicConnector.default_hosts == ("api.anthropic.com",)
    assert AnthropicConnector("an", ("API.Anthropic.com",)).hosts == ("api.anthropic.com",)


def _sample_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x9", template)


@pytest.mark.parametrize("route", [r for r in ANTHROPIC_ROUTES if r.when is None],
                         ids=[f"{r.method} {r.template}" for r in ANTHROPIC_ROUTES if r.when is None])
def test_every_plain_route_is_reachable(route: Route) -> None:
    """No route is shadowed by an earlier one: a request built from its template yields its own action."""
    got = AN.classify(view(route.method, _sample_path(route.template)))
    assert (got.name, got.risk) == (f"anthropic.{route.action}", route.risk)


def test_route_table_is_consistent() -> None:
    assert AN.actions == {f"anthropic.{r.action}" for r in ANTHROPIC_ROUTES} | UNKNOWN
    for r in ANTHROPIC_ROUTES:
        assert r.method == r.method.upper()
        assert r.template.startswith("/v1/")
        if r.method == "GET":
            assert r.risk == "low", r
        if r.action.endswith(".delete"):
            assert r.risk in ("high", "critical"), r


def test_actions_cover_everything_parse_emits() -> None:
    """Every method against every template, its parent and an extension: the result is always listed."""
    paths = {"/", "/v1", "/v1/x9/x9/x9/x9/x9/x9"}
    for r in ANTHROPIC_ROUTES:
        sample = _sample_path(r.template)
        paths |= {sample, sample + "/x9", sample.rsplit("/", 1)[0]}
    for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT"):
        for path in paths:
            got = AN.classify(view(method, path))
            assert got.name in AN.actions, (method, path)
            assert got.connector == "anthropic"
