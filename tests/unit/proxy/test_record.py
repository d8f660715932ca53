"""The params a traffic row keeps: what policies tested, as JSON, bounded."""

from __future__ import annotations

import json

from trustfence.connectors import Action
from trustfence.proxy.record import PARAMS_MAX, params_text


def test_params_become_json_with_lists_for_tuples() -> None:
    action = Action("github.git.push", "github", "high", {"refs": ("refs/heads/main",), "force": True})
    assert json.loads(params_text(action)) == {"refs": ["refs/heads/main"], "force": True}
    assert params_text(Action("github.user.read", "github", "low")) == "" and params_text(None) == ""


def test_long_values_and_lists_are_cut_and_the_json_stays_valid() -> None:
    action = Action("mcp.tools.write", "tools", "high", {"content": "x" * 10_000, "ids": tuple(range(1000)),
                                                         "ratio": float("nan"), "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}})
    got = json.loads(params_text(action))
    assert got["content"] == "x" * 256 + "…" and len(got["ids"]) == 64 and got["ratio"] == "nan"
    assert got["deep"] == {"a": {"b": {"c": {"d": "…"}}}}  # five levels of tables at most


def test_too_many_params_keep_only_their_names() -> None:
    action = Action("x.y", "c", "low", {f"p{i:03d}": "v" * 200 for i in range(60)})
    text = params_text(action)
    assert len(text) <= PARAMS_MAX and json.loads(text)["truncated"][:2] == ["p000", "p001"]


def test_a_dns_query_row_names_the_query_and_its_answer() -> None:
    from mitmproxy.test import tflow

    from trustfence.connectors import ConnectorSet, build_connector
    from trustfence.proxy.record import dns_row
    from trustfence.proxy.state import EnforcerState, Gateway

    state = EnforcerState(store=None, connectors=ConnectorSet([build_connector("github", "github")]))
    gw = Gateway("Bot", "s1", "10.0.0.2", "10.0.0.1")
    f = tflow.tdnsflow(resp=True)
    f.request.questions[0].name = "api.github.com"
    row = dns_row(state, f, gw, "answered 10.0.0.1 (the enforcer)", None)
    assert (row.gateway, row.sandbox, row.scheme, row.host, row.port, row.method, row.action, row.connector) == \
        ("Bot", "s1", "dns", "api.github.com", 53, "A", "dns.a", "github")
    assert (row.decision, row.status, row.reason) == ("allowed", 0, "answered 10.0.0.1 (the enforcer)")
    assert row.bytes_in == len(f.request.packed) and row.bytes_out == len(f.response.packed) > 0
