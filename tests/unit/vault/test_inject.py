"""Injection: each type's header and prefix, agent credential headers stripped first, inputs left alone."""

from __future__ import annotations

import pytest
from trustfence.vault import TYPES, InjectionSpec, InvalidEntry, InvalidSecret, apply, spec_for
from trustfence.vault.inject import SPECS

AGENT_HEADERS = [
    ("Host", "api.example"),
    ("AUTHORIZATION", "Bearer ghp_agent_dummy"),
    ("x-api-key", "sk-ant-agent-dummy"),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
    ("Accept", "application/json"),
]


@pytest.mark.parametrize(
    ("type_name", "header", "value"),
    [
        ("github", "Authorization", "Bearer s3cret"),
        ("openai", "Authorization", "Bearer s3cret"),
        ("stripe", "Authorization", "Bearer s3cret"),
        ("slack", "Authorization", "Bearer s3cret"),
        ("mcp", "Authorization", "Bearer s3cret"),
        ("anthropic", "x-api-key", "s3cret"),
        ("generic", "Authorization", "Bearer s3cret"),
        ("webhook", "Authorization", "Bearer s3cret"),
    ],
)
def test_each_type(type_name: str, header: str, value: str) -> None:
    headers, query = apply(spec_for(type_name), AGENT_HEADERS, [("page", "2")], "s3cret")
    assert headers == [("Host", "api.example"), ("Accept", "application/json"), (header, value)]
    assert query == [("page", "2")]


def test_every_type_has_a_spec() -> None:
    from trustfence.connectors import KNOWN_TYPES
    from trustfence.vault.dummy import ENV_VARS, placeholder

    assert set(TYPES) == set(SPECS) == set(ENV_VARS) == set(KNOWN_TYPES)
    assert all(placeholder(t) for t in KNOWN_TYPES)
    assert spec_for("npm") == InjectionSpec("Authorization", "Bearer ")
    assert spec_for("crates") == InjectionSpec("Authorization", "")


def test_strip_lists() -> None:
    assert spec_for("github").strip == ("authorization", "proxy-authorization", "x-api-key")
    assert "x-token" in spec_for("generic", header="X-Token").strip


def test_configured_header_and_prefix() -> None:
    spec = spec_for("generic", header="X-Token", prefix="Token ")
    agent = [("x-token", "agent-dummy"), ("Authorization", "Bearer agent"), ("Accept", "*/*")]
    headers, _ = apply(spec, agent, [], "s3cret")
    assert headers == [("Accept", "*/*"), ("X-Token", "Token s3cret")]


def test_custom_header_defaults_to_no_prefix() -> None:
    assert spec_for("webhook", header="X-Hook-Secret").prefix == ""
    assert spec_for("webhook", header="authorization").prefix == "Bearer "
    assert spec_for("generic", prefix="Token ").header == "Authorization"


def test_query_parameter() -> None:
    spec = spec_for("generic", query_param="api_key")
    headers, query = apply(spec, AGENT_HEADERS, [("api_key", "agent-dummy"), ("q", "x"), ("api_key", "2")],
                           "s3cret")
    assert query == [("q", "x"), ("api_key", "s3cret")]
    assert [k.lower() for k, _ in headers] == ["host", "accept"]  # credential headers still stripped


def test_apply_is_pure() -> None:
    headers, query = list(AGENT_HEADERS), [("a", "1")]
    apply(spec_for("github"), headers, query, "s3cret")
    apply(spec_for("generic", query_param="a"), headers, query, "s3cret")
    assert headers == AGENT_HEADERS and query == [("a", "1")]


@pytest.mark.parametrize("secret", ["", "a\r\nX-Evil: 1", "tab\there", "nul\x00"])
def test_apply_refuses_a_secret_that_would_break_the_request(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        apply(spec_for("github"), [], [], secret)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"header": "X-Token"}, "always sends"),
        ({"query_param": "key"}, "always sends"),
    ],
)
def test_fixed_types_cannot_be_configured(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidEntry, match=match):
        spec_for("github", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"header": "Host"}, "reserved"),
        ({"header": "Content-Length"}, "reserved"),
        ({"header": "Bad Header"}, "not a valid header name"),
        ({"header": "X-A", "prefix": "Bearer\r\n"}, "printable ASCII"),
        ({"query_param": "a b"}, "not a valid name"),
        ({"query_param": "key", "header": "X-A"}, "not both"),
    ],
)
def test_bad_configuration(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidEntry, match=match):
        spec_for("generic", **kwargs)


def test_unknown_type() -> None:
    with pytest.raises(InvalidEntry, match="known: anthropic, crates, generic, github"):
        spec_for("gitlab")


def test_spec_needs_exactly_one_target() -> None:
    with pytest.raises(InvalidEntry, match="exactly one"):
        InjectionSpec(None, "", None)
    with pytest.raises(InvalidEntry, match="exactly one"):
        InjectionSpec("X-A", "", "key")
