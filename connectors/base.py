"""The types every connector shares: the request view it reads, the route table it matches, the Action it emits.

Action names are ``<namespace>.<resource>.<verb>`` (``github.pr.merge``); the namespace is fixed per connector
type (``github`` for GitHub, ``http`` for the generic connector).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl

__all__ = ["Action", "Connector", "RequestView", "Risk", "Route", "Router", "json_body"]

Risk = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True, slots=True)
class RequestView:
    """What a connector may look at: the canonical destination and the request, already decoded.

    ``host`` is the canonical host (CONNECT authority, SNI and Host agreed), lower case, no port.
    ``path`` excludes the query string; ``query`` holds the decoded query pairs.
    ``headers`` keys are lower case. ``body`` is the raw request body (may be empty).
    """

    method: str
    scheme: str
    host: str
    port: int
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Action:
    """A structured action: what the request would do, in the words permissions and policies use.

    ``name`` is the full action (``github.pr.merge``); ``connector`` the configured connector's name
    (``github``, or the name given to a generic connector); ``params`` the values extracted from path,
    query and body that policies can test (``owner``, ``repo``, ``number`` ...).
    """

    name: str
    connector: str
    risk: Risk = "medium"
    params: Mapping[str, object] = field(default_factory=dict)


BodyRule = Callable[[Mapping[str, object]], bool]


@dataclass(frozen=True, slots=True)
class Route:
    """One row of a connector's route table.

    ``method``: HTTP method, upper case. ``template``: path with ``{name}`` segments (``/repos/{owner}/{repo}``);
    ``{name+}`` matches the rest of the path including slashes. ``action``: the verb part after the namespace
    (``pr.merge``). ``when``: optional predicate over the JSON body; routes are tried in order, so a route with
    ``when`` placed before its plain twin refines it (PATCH with ``state=closed`` is a close, not an update).
    ``body_params``: body fields copied into the Action's params when present.
    """

    method: str
    template: str
    action: str
    risk: Risk = "medium"
    when: BodyRule | None = None
    body_params: tuple[str, ...] = ()

    def compile(self) -> re.Pattern[str]:
        parts = []
        for seg in self.template.strip("/").split("/"):
            if seg.startswith("{") and seg.endswith("+}"):
                parts.append(f"(?P<{seg[1:-2]}>.+)")
            elif seg.startswith("{") and seg.endswith("}"):
                parts.append(f"(?P<{seg[1:-1]}>[^/]+)")
            else:
                parts.append(re.escape(seg))
        return re.compile("^/" + "/".join(parts) + "/?$")


def json_body(view: RequestView) -> Mapping[str, object]:
    """The body as a JSON object, or form fields, or {} when it is neither (never raises)."""
    if not view.body:
        return {}
    ctype = view.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        return dict(parse_qsl(view.body.decode("utf-8", "replace")))
    try:
        data = json.loads(view.body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


class Router:
    """A compiled route table for one namespace; ``match`` returns the first matching route's Action."""

    def __init__(self, namespace: str, routes: tuple[Route, ...]) -> None:
        self.namespace = namespace
        self.routes = routes
        self._compiled = [(r, r.compile()) for r in routes]

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(f"{self.namespace}.{r.action}" for r in self.routes)

    def match(self, connector: str, view: RequestView, path: str | None = None) -> Action | None:
        target = view.path if path is None else path
        body: Mapping[str, object] | None = None
        for route, pattern in self._compiled:
            if route.method != view.method:
                continue
            m = pattern.match(target)
            if m is None:
                continue
            if route.when is not None or route.body_params:
                body = json_body(view) if body is None else body
            if route.when is not None and not route.when(body or {}):
                continue
            params: dict[str, object] = dict(m.groupdict())
            for name in route.body_params:
                if body and name in body:
                    params[name] = body[name]
            return Action(f"{self.namespace}.{route.action}", connector, route.risk, params)
        return None


class Connector:
    """A configured connector: a name, the hosts it covers, and the parser that turns a view into an Action.

    ``parse`` is total: a request on a covered host that matches no route becomes
    ``<namespace>.unknown`` (denied by default like anything else not allowed).
    """

    type_name: str = ""
    namespace: str = ""

    def __init__(self, name: str, hosts: tuple[str, ...]) -> None:
        self.name = name
        self.hosts = tuple(h.lower() for h in hosts)

    @property
    def actions(self) -> frozenset[str]:
        """Every action name this connector can emit (used to validate permission patterns)."""
        raise NotImplementedError

    def parse(self, view: RequestView) -> Action:
        raise NotImplementedError
