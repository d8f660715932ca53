"""Mode A's requests: built from the connectors' own tables, and checked by the connectors' own parse."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from trustfence.agent.advisory.routes import BuildError, build
from trustfence.connectors import build_connector


def test_a_github_merge_becomes_the_put_the_route_table_names() -> None:
    gh = build_connector("github", "github")
    out = build(gh, "github.pr.merge", {"owner": "octo", "repo": "demo", "number": 7, "merge_method": "squash"}, {})
    assert (out.method, out.host, out.path) == ("PUT", "api.github.com", "/repos/octo/demo/pulls/7/merge")
    assert json.loads(out.body) == {"merge_method": "squash"}


def test_github_enterprise_requests_go_under_the_base_path() -> None:
    ghe = build_connector("ghe", "github", ("ghe.example",), base_path="/api/v3")
    out = build(ghe, "github.issue.create", {"owner": "o", "repo": "r", "title": "t"}, {})
    assert (out.host, out.path, out.method) == ("ghe.example", "/api/v3/repos/o/r/issues", "POST")


def test_reads_take_their_parameters_in_the_query() -> None:
    out = build(build_connector("github", "github"), "github.pr.list", {"owner": "o", "repo": "r", "state": "open"},
                {})
    assert out.method == "GET" and out.query == (("state", "open"),) and out.body == b""


def test_stripe_bodies_are_forms_with_nested_keys() -> None:
    out = build(build_connector("stripe", "stripe"), "stripe.refund.create",
                {"charge": "ch_1", "amount": 500, "metadata": {"order": "7"}}, {})
    assert (out.method, out.path) == ("POST", "/v1/refunds")
    assert dict(parse_qsl(out.body.decode())) == {"charge": "ch_1", "amount": "500", "metadata[order]": "7"}


def test_slack_calls_go_to_the_web_api_method() -> None:
    out = build(build_connector("slack", "slack"), "slack.message.send", {"channel": "C1", "text": "hi"}, {})
    assert (out.host, out.path, json.loads(out.body)) == ("slack.com", "/api/chat.postMessage",
                                                           {"channel": "C1", "text": "hi"})


def test_openai_and_anthropic() -> None:
    o = build(build_connector("openai", "openai"), "openai.chat.create", {"model": "m", "messages": []}, {})
    a = build(build_connector("anthropic", "anthropic"), "anthropic.message.create", {"model": "m"}, {})
    assert (o.host, o.path) == ("api.openai.com", "/v1/chat/completions")
    assert (a.host, a.path) == ("api.anthropic.com", "/v1/messages")


def test_a_webhook_goes_to_its_configured_url() -> None:
    url = "https://hooks.example/services/T1/B2/secret"
    hook = build_connector("alerts", "webhook", urls=[url])
    out = build(hook, "webhook.post", {"body": {"text": "up"}}, {"0": url})
    assert out.url == url and json.loads(out.body) == {"text": "up"}


@pytest.mark.parametrize(("name", "params", "words"), [
    ("github.pr.merge", {"owner": "o", "repo": "r"}, "needs the path parameters"),
    ("github.pr.merge", {"owner": "o/../x", "repo": "r", "number": 1}, "classifies as"),
    ("github.pr.close", {"owner": "o", "repo": "r", "number": 1}, "classifies as github.pr.update"),
    ("github.git.push", {}, "not a request the daemon can make"),
])
def test_a_request_that_would_not_be_the_decided_action_is_never_built(name: str, params: dict[str, object],
                                                                        words: str) -> None:
    with pytest.raises(BuildError) as e:
        build(build_connector("github", "github"), name, params, {})
    assert words in str(e.value)
