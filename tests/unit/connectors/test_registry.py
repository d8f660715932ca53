"""Which connector covers a host, and the generic connector's http.<method> actions."""

from __future__ import annotations

import pytest

from trustfence.connectors import ConnectorSet, RequestView, build_connector
from trustfence.connectors.generic import GenericConnector
from trustfence.connectors.github import GitHubConnector

SET = ConnectorSet([
    build_connector("github", "github"),
    build_connector("api", "generic", ("api.example.com", "*.svc.example.com")),
    build_connector("wide", "generic", ("*.example.com",)),
])


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("api.github.com", "github"),
        ("API.GitHub.com", "github"),
        ("api.github.com.", "github"),
        ("github.com", "github"),                 # git over HTTPS
        ("codeload.github.com", "github"),
        ("gist.github.com", None),
        ("api.github.com.evil.net", None),
        ("api.example.com", "api"),               # exact beats the wider wildcard
        ("x.svc.example.com", "api"),             # longer wildcard beats the shorter
        ("a.b.svc.example.com", "api"),           # wildcard covers deeper subdomains
        ("svc.example.com", "wide"),              # apex of *.svc.example.com is not covered by it
        ("www.example.com", "wide"),
        ("example.com", None),                    # *.example.com does not cover the apex
        ("notexample.com", None),
        ("example.com.evil.net", None),
        ("", None),
    ],
)
def test_for_host(host: str, name: str | None) -> None:
    found = SET.for_host(host)
    assert (found.name if found else None) == name
    assert SET.covers(host) is (name is not None)


def test_by_name() -> None:
    assert sorted(SET.by_name) == ["api", "github", "wide"]
    assert isinstance(SET.by_name["github"], GitHubConnector)
    assert isinstance(SET.by_name["api"], GenericConnector)


def test_empty_set_covers_nothing() -> None:
    assert ConnectorSet().for_host("api.github.com") is None


@pytest.mark.parametrize(
    "connectors",
    [
        [build_connector("a", "generic", ("api.example.com",)), build_connector("b", "generic", ("api.example.com",))],
        [build_connector("gh", "github"), build_connector("other", "generic", ("API.github.com",))],
        [build_connector("gh1", "github"), build_connector("gh2", "github")],
    ],
)
def test_host_claimed_twice_raises(connectors: list[GenericConnector]) -> None:
    with pytest.raises(ValueError, match="claimed by both"):
        ConnectorSet(connectors)


def test_claim_error_names_both_connectors() -> None:
    with pytest.raises(ValueError) as ei:
        ConnectorSet([build_connector("first", "generic", ("h.example",)),
                      build_connector("second", "generic", ("h.example",))])
    assert "h.example" in str(ei.value)
    assert "first" in str(ei.value) and "second" in str(ei.value)


def view(method: str, path: str = "/v1/items") -> RequestView:
    return RequestView(method=method, scheme="https", host="api.example.com", port=443, path=path)


API = build_connector("api", "generic", ("api.example.com",))


@pytest.mark.parametrize(
    ("method", "action", "risk"),
    [
        ("GET", "http.get", "low"),
        ("get", "http.get", "low"),
        ("HEAD", "http.head", "low"),
        ("OPTIONS", "http.options", "low"),
        ("POST", "http.post", "medium"),
        ("PUT", "http.put", "medium"),
        ("PATCH", "http.patch", "medium"),
        ("DELETE", "http.delete", "high"),
        ("PROPFIND", "http.other", "high"),
        ("TRACE", "http.other", "high"),
    ],
)
def test_generic_actions(method: str, action: str, risk: str) -> None:
    a = API.parse(view(method))
    assert (a.name, a.connector, a.risk) == (action, "api", risk)
    assert a.params["path"] == "/v1/items"
    assert a.name in API.actions


def test_generic_other_keeps_method() -> None:
    assert API.parse(view("PROPFIND")).params["method"] == "PROPFIND"


def test_generic_catalogue() -> None:
    assert API.actions == frozenset({"http.get", "http.head", "http.options", "http.post", "http.put",
                                     "http.patch", "http.delete", "http.other", "http.graphql.query",
                                     "http.graphql.subscription", "http.graphql.invalid"})
    assert API.open_prefixes == frozenset({"http.graphql.mutation."})


def test_build_connector_github_defaults_and_override() -> None:
    gh = build_connector("gh", "github")
    assert isinstance(gh, GitHubConnector)
    assert gh.hosts == GitHubConnector.default_hosts
    ghe = build_connector("ghe", "github", ("GHE.corp.example",))
    assert ghe.hosts == ("ghe.corp.example",)
    assert ghe.name == "ghe"


def test_build_connector_unknown_type() -> None:
    with pytest.raises(ValueError) as ei:
        build_connector("x", "gitlab", ("gitlab.com",))
    msg = str(ei.value)
    assert "unknown connector type 'gitlab'" in msg
    assert "generic" in msg and "github" in msg


def test_build_connector_generic_needs_hosts() -> None:
    with pytest.raises(ValueError, match="connector 'api' of type generic needs at least one domain"):
        build_connector("api", "generic")


def test_wildcard_claimed_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="more than one connector"):
        ConnectorSet([build_connector("a", "generic", ("*.x.com",)), build_connector("b", "generic", ("*.x.com",))])
