"""The published catalogue of every connector type: action, HTTP method, path (or protocol method) and risk.

Built from the route tables themselves, so ``tf connector actions TYPE`` and ``docs/connectors.md`` can never
describe a catalogue other than the one the enforcer uses. ``render_markdown`` is a pure renderer; a test
compares its output with the committed file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trustfence.connectors.anthropic import ANTHROPIC_ROUTES
from trustfence.connectors.base import Route
from trustfence.connectors.crates import CRATES_ROUTES
from trustfence.connectors.githost import GIT_SERVICES, HOST_ROUTES
from trustfence.connectors.github import GITHUB_MUTATIONS, GITHUB_ROUTES
from trustfence.connectors.gomod import GOMOD_ROUTES
from trustfence.connectors.mcp import RPC_METHODS
from trustfence.connectors.npm import NPM_ROUTES
from trustfence.connectors.openai import OPENAI_ROUTES
from trustfence.connectors.protocols import HTTP_METHODS, METHOD_RISK
from trustfence.connectors.pypi import PYPI_ROUTES
from trustfence.connectors.registry import KNOWN_TYPES
from trustfence.connectors.slack import SLACK_METHODS, SLACK_PATH_ROUTES
from trustfence.connectors.stripe import STRIPE_ROUTES

__all__ = ["Entry", "catalogue", "render_markdown"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One published row. ``method`` and ``path`` say what a request looks like; ``risk`` is the Action's."""

    action: str
    method: str
    path: str
    risk: str


def _routes(namespace: str, routes: Iterable[Route]) -> list[Entry]:
    return [Entry(f"{namespace}.{r.action}", r.method, r.template, r.risk) for r in routes]


def _unknowns(namespace: str) -> list[Entry]:
    return [Entry(f"{namespace}.unknown.{m}", m.upper(), "(no route matches)", "high") for m in (*HTTP_METHODS, "other")]


def _shared(namespace: str) -> list[Entry]:
    return [Entry(f"{namespace}.websocket.open", "GET", "(Upgrade: websocket)", "high"),
            Entry("grpc.<package.Service>.<Method>", "POST", "/<package.Service>/<Method> (application/grpc)",
                  "medium"),
            Entry("grpc.invalid", "POST", "(application/grpc, not a gRPC path)", "high")]


_TABLES: dict[str, tuple[Route, ...]] = {"anthropic": ANTHROPIC_ROUTES, "crates": CRATES_ROUTES,
                                         "gomod": GOMOD_ROUTES, "npm": NPM_ROUTES, "openai": OPENAI_ROUTES,
                                         "pypi": PYPI_ROUTES, "stripe": STRIPE_ROUTES}
"""Types whose whole catalogue is their route table."""


def _github_hosts() -> list[Entry]:
    """The git and download rows, each path with its host (git's also live on an Enterprise Server host)."""
    rows = []
    for host, routes in HOST_ROUTES.items():
        for r in routes:
            if r.template.endswith("/info/refs"):
                rows += [Entry(f"github.{verb}", r.method, f"{host}{r.template}?service={service}", risk)
                         for service, (verb, risk) in GIT_SERVICES.items()]
            else:
                rows.append(Entry(f"github.{r.action}", r.method, host + r.template, r.risk))
    return rows


def catalogue(type_name: str) -> list[Entry]:
    """Every action a connector of ``type_name`` can emit, in table order. ValueError for an unknown type."""
    if type_name not in KNOWN_TYPES:
        raise ValueError(f"unknown connector type {type_name!r}; known: {', '.join(sorted(KNOWN_TYPES))}")
    ns = KNOWN_TYPES[type_name].namespace
    rows: list[Entry]
    if type_name == "github":
        rows = _routes(ns, GITHUB_ROUTES) + [
            Entry("github.graphql.query", "POST", "/graphql (query)", "low"),
            Entry("github.graphql.subscription", "POST", "/graphql (subscription)", "low"),
            Entry("github.graphql.invalid", "POST", "/graphql (does not parse)", "high"),
            *(Entry(f"github.graphql.mutation.{m}", "POST", "/graphql (mutation)", risk)
              for m, risk in GITHUB_MUTATIONS.items()),
            Entry("github.graphql.mutation.<field>", "POST", "/graphql (any other mutation)", "high"),
            *_github_hosts()]
    elif type_name in _TABLES:
        rows = _routes(ns, _TABLES[type_name])
    elif type_name == "slack":
        rows = [Entry(f"slack.{m.action}", "POST", f"/api/{m.name}", m.risk) for m in SLACK_METHODS]
        rows += [Entry("slack.admin.other", "POST", "/api/admin.* (not listed)", "high")]
        rows += _routes(ns, SLACK_PATH_ROUTES)
    elif type_name == "mcp":
        rows = [Entry("mcp.tools.<tool>", "POST", "tools/call", "high")]
        rows += [Entry(f"mcp.rpc.{m.replace('/', '.')}", "POST", m, risk) for m, risk in RPC_METHODS.items()]
        rows += [Entry("mcp.rpc.other", "POST", "(a method MCP does not define)", "high"),
                 Entry("mcp.rpc.response", "POST", "(a JSON-RPC response the client sends)", "low"),
                 Entry("mcp.invalid", "POST", "(not JSON-RPC 2.0)", "high"),
                 Entry("mcp.stream.open", "GET", "(the endpoint: SSE stream)", "low"),
                 Entry("mcp.session.delete", "DELETE", "(the endpoint)", "low")]
    elif type_name == "webhook":
        rows = [Entry(f"webhook.{m}", m.upper(), "(a configured URL)", METHOD_RISK[m])
                for m in HTTP_METHODS] + [Entry("webhook.other", "*", "(a configured URL)", "high")]
    else:  # generic
        rows = [Entry(f"http.{m}", m.upper(), "(any path)", METHOD_RISK[m]) for m in HTTP_METHODS]
        rows += [Entry("http.other", "*", "(any path)", "high"),
                 Entry("http.graphql.query", "POST", "*/graphql (query)", "low"),
                 Entry("http.graphql.subscription", "POST", "*/graphql (subscription)", "low"),
                 Entry("http.graphql.mutation.<field>", "POST", "*/graphql (mutation)", "high"),
                 Entry("http.graphql.invalid", "POST", "*/graphql (does not parse)", "high")]
    if type_name != "generic":
        rows += _unknowns(ns)
    return rows + _shared(ns)


def render_markdown() -> str:
    """``docs/connectors.md``: one section per connector type, generated from the tables."""
    out = ["# Connector catalogues", "",
           "Generated from the route tables by `python -m trustfence.connectors.catalogue`; a test fails when this",
           "file is stale. `tf connector actions TYPE` prints the same rows. Rows are tried in the order shown:",
           "the first match names the request.", ""]
    for t in sorted(KNOWN_TYPES):
        rows = catalogue(t)
        distinct = len({r.action for r in rows})
        hosts = KNOWN_TYPES[t].default_hosts
        covers = f" Default hosts: {', '.join(f'`{h}`' for h in hosts)}." if hosts else ""
        out += [f"## {t}", "", f"{distinct} actions.{covers}", "", "| action | method | path | risk |",
                "|---|---|---|---|"]
        out += [f"| `{r.action}` | {r.method} | `{r.path}` | {r.risk} |".replace("`(", "(").replace(")`", ")")
                for r in rows]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render_markdown(), end="")
