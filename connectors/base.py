"""The types every connector shares: the request view it reads, the route table it matches, the Action it emits.

Action names are ``<namespace>.<resource>.<verb>`` (``github.pr.merge``); the namespace is fixed per connector
type (``github`` for GitHub, ``http`` for the generic connector). ``RequestView`` and ``Action`` are defined in
``values`` and re-exported here.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

from trustfence.connectors import protocols
from trustfence.connectors.values import Action, RequestView, Risk
from trustfence.policy.model import Catalogue

__all__ = ["INSPECT_BYTES", "Action", "Connector", "RequestView", "Risk", "Route", "RouteMatch", "Router",
           "body_fields", "clean_base_path", "normalise_path", "parse_json", "under_base"]

INSPECT_BYTES = 256 * 1024
"""How much of a request body classify reads. Beyond it the route still decides the action; body parameters are
marked unavailable (and a policy condition on them fails closed)."""

BodyRule = Callable[[Mapping[str, object]], bool]


@dataclass(frozen=True, slots=True)
class Route:
    """One row of a connector's route table.

    ``method``: HTTP method, upper case. ``template``: path with ``{name}`` segments (``/repos/{owner}/{repo}``);
    ``{name+}`` matches the rest of the path including slashes; a parameter may end in a literal suffix
    (``{version}.zip``: the segment must end in ``.zip``, which the parameter leaves out). ``action``: the verb part after the namespace
    (``pr.merge``). ``when``: optional predicate over the JSON body; routes are tried in order, so a route with
    ``when`` placed before its plain twin refines it (PATCH with ``state=closed`` is a close, not an update).
    ``body_params``: body fields (JSON, form-encoded or multipart form fields) copied into the Action's params
    when present. ``query_params``: query parameters copied the same way (the first value when repeated).
    ``websocket``: the route is a WebSocket endpoint: a ``GET`` with ``Upgrade: websocket`` here is this route's
    action alone (left out: the upgrade also needs ``<namespace>.websocket.open``, see ``protocols``).

    A ``when`` that cannot read the body (cut at ``INSPECT_BYTES``, not UTF-8, not the JSON or form its
    content type claims, or readable both ways) fails closed: the request is every route the body could make
    it, from this one down to the first plain twin, and each of them is decided (``params["operations"]``).
    """

    method: str
    template: str
    action: str
    risk: Risk = "medium"
    when: BodyRule | None = None
    body_params: tuple[str, ...] = ()
    query_params: tuple[str, ...] = ()
    websocket: bool = False

    def compile(self) -> re.Pattern[str]:
        parts = []
        for seg in self.template.strip("/").split("/"):
            if seg.startswith("{") and seg.endswith("+}"):
                parts.append(f"(?P<{seg[1:-2]}>.+)")
            elif seg.startswith("{") and seg.endswith("}"):
                parts.append(f"(?P<{seg[1:-1]}>[^/]+)")
            elif seg.startswith("{") and "}" in seg:
                name, _, suffix = seg[1:].partition("}")
                parts.append(f"(?P<{name}>[^/]+){re.escape(suffix)}")
            else:
                parts.append(re.escape(seg))
        return re.compile("^/" + "/".join(parts) + "/?\\Z")  # \Z: "$" would also match before a final newline


def body_fields(view: RequestView) -> Mapping[str, object] | None:
    """The body's fields: a JSON object, form-encoded or multipart form fields; {} for an empty body.

    None when the body cannot be read: cut at the inspection bound, malformed, or not UTF-8, or when it reads
    two ways (a form body that is also a JSON object: many APIs parse JSON whatever the content type says).
    Never raises. A multipart file part contributes its file name, never its content.
    """
    if not view.body:
        return {} if view.body_complete else None
    if not view.body_complete:
        return None
    ctype = view.headers.get("content-type", "").lower()
    try:
        if "application/x-www-form-urlencoded" in ctype:
            text = view.body.decode("utf-8")
            if text.lstrip(_JSON_SPACE)[:1] == "{" and _json_object(text):
                return None
            return _form_fields(text)
        if ctype.startswith("multipart/form-data"):
            return _multipart_fields(view.headers.get("content-type", ""), view.body)
        data = parse_json(view.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: hostile nesting depth
        return None
    return data if isinstance(data, dict) else None


_JSON_SPACE = " \t\n\r"  # the whitespace JSON allows around a value


def _json_object(text: str) -> bool:
    try:
        return isinstance(parse_json(text), dict)
    except (ValueError, RecursionError):
        return False
# The scanner json.loads ends in (C where available); typeshed does not declare the attribute.
_SCAN_JSON: Callable[[str, int], tuple[object, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def parse_json(text: str) -> object:
    """``json.loads(text)``: the same value, or ValueError (RecursionError for hostile nesting) where it fails.

    Bodies are decoded on the classify path; this skips the layers ``json.loads`` wraps around the decoder's
    scanner (two regex passes for the surrounding whitespace among them), which cost as much as the scan of a
    typical API body. ``json.loads`` also rejects a leading byte order mark; the scanner does too."""
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, end = _SCAN_JSON(text, start)
    except StopIteration:
        raise ValueError("no JSON value") from None
    if len(text.rstrip(_JSON_SPACE)) != end:  # a value never ends in whitespace: anything left is extra data
        raise ValueError("data after the JSON value")
    return value


def _form_fields(text: str) -> dict[str, str]:
    """``dict(parse_qsl(text, keep_blank_values=True))``: the last value of a repeated name wins."""
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    # Nothing to decode: the same pairs parse_qsl gives, without its per-pair unquoting calls.
    out: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[name] = value
    return out


def _multipart_fields(ctype: str, body: bytes) -> Mapping[str, object] | None:
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        return None
    out: dict[str, object] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        if filename is not None:
            out[name] = filename
        else:
            payload = part.get_payload(decode=True)
            out[name] = payload.decode("utf-8") if isinstance(payload, bytes) else ""
    return out


def normalise_path(path: str) -> str:
    """The path a server would most plausibly act on: percent-decoded (``%2F`` included), duplicate slashes
    collapsed, ``.`` and ``..`` segments resolved, never above the root. Classification always sees this form,
    so an encoding trick can only make a request look like what it really is."""
    if "%" not in path and "//" not in path and "/." not in path and path.startswith("/"):
        return path  # nothing to decode, collapse or resolve
    decoded = path
    for _ in range(3):  # double-encoding (%252F) decodes in a bounded number of rounds
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    clean = posixpath.normpath("/" + decoded.lstrip("/"))
    clean = "/" + clean.lstrip("/")
    if decoded.endswith("/") and clean != "/":
        clean += "/"
    return clean


def clean_base_path(base_path: str) -> str:
    """A configured API prefix in one form: a leading slash, no trailing slash (``api/v3/`` -> ``/api/v3``);
    empty for none."""
    base = base_path.strip().rstrip("/")
    return "/" + base.lstrip("/") if base else ""


def under_base(path: str, base: str) -> str | None:
    """``path`` relative to the prefix ``base`` (from ``clean_base_path``), or None when it lies outside.

    A GitHub Enterprise API (``/api/v3``) or a private package mirror (``/artifactory/api/npm/npm-remote``)
    serves the public layout under a prefix; a request elsewhere on the host is nothing the layout explains."""
    if not base:
        return path
    if path == base:
        return "/"
    if path.startswith(base + "/"):
        return path[len(base):]
    return None


_INDEX_DEPTH = 4  # leading path segments used to pick candidate routes
_CACHE_MAX = 4096  # candidate lists kept; beyond that they are computed per request (no unbounded growth)


def _segments(template: str) -> tuple[int, bool]:
    """(segment count, whether the route is matched by its pattern: a ``{name+}`` segment may take any number
    of path segments, and a parameter with a suffix (``{version}.zip``) is checked by the pattern)."""
    segs = template.strip("/").split("/") if template.strip("/") else []
    return len(segs), any(seg.endswith("+}") or (seg.startswith("{") and not seg.endswith("}")) for seg in segs)


def _literals_at(template: str) -> dict[int, str]:
    """Position -> literal segment, for the first ``_INDEX_DEPTH`` segments (parameters are absent)."""
    out: dict[int, str] = {}
    for i, seg in enumerate(template.strip("/").split("/")[:_INDEX_DEPTH]):
        if seg.startswith("{"):
            if seg.endswith("+}"):
                break  # the rest of the path: later positions say nothing
            continue
        out[i] = seg
    return out


class RouteMatch(NamedTuple):
    """What a route table says of a request before it becomes an Action: the full action ``name``, its
    ``risk``, the ``params`` read from path, query and body (a fresh dict the caller may change), and the
    wanted body params that could not be read (``unavailable``)."""

    name: str
    risk: Risk
    params: dict[str, object]
    unavailable: frozenset[str]


PathParams = Callable[[str, list[str]], "dict[str, object] | None"]
"""A route's matcher: (the path, its segments) -> the path params, or None when the route does not match."""


def _pattern_params(route: Route) -> PathParams:
    """The matcher of a route with a ``{name+}``: its regular expression."""
    match = route.compile().match

    def params(path: str, segments: list[str]) -> dict[str, object] | None:
        m = match(path)
        return None if m is None else m.groupdict()

    return params


def _segment_params(route: Route) -> PathParams:
    """The matcher of a route without ``{name+}``, by segments: what its regular expression would answer,
    given a path of the route's segment count whose first ``_INDEX_DEPTH`` literals the index already matched
    and that has the form the expression requires (``_select``'s ``exact``)."""
    segs = route.template.strip("/").split("/") if route.template.strip("/") else []
    deep = tuple((i, seg) for i, seg in enumerate(segs) if i >= _INDEX_DEPTH and not seg.startswith("{"))
    names = tuple((i, seg[1:-1]) for i, seg in enumerate(segs) if seg.startswith("{"))

    def params(path: str, segments: list[str]) -> dict[str, object] | None:
        for i, literal in deep:
            if segments[i] != literal:
                return None
        out: dict[str, object] = {}
        for i, name in names:
            value = segments[i]
            if not value:  # a parameter is at least one character
                return None
            out[name] = value
        return out

    return params


class _Candidate(NamedTuple):
    """A route as matching needs it: the row, its matcher, its full action name, and whether the matcher works
    by segments (``_segment_params``: the path must then have the pattern's form) or by the pattern."""

    route: Route
    params: PathParams
    name: str
    by_segments: bool


class Router:
    """A compiled route table for one namespace; ``match`` returns the first matching route's Action, ``find``
    the same answer as a ``RouteMatch`` for a connector that adds to the params before building its Action.

    Matching is indexed, not a scan: the method, the number of path segments and the first four segments (each
    either a literal some route has at that position, or "anything else") select the candidate routes, in table
    order, so first-match-wins holds; only the candidates' patterns are tried. A route's pattern can only match
    a path of its own segment count (its parameters hold no slash), unless it has a ``{name+}``, which takes any
    text, slashes and empty segments included."""

    def __init__(self, namespace: str, routes: tuple[Route, ...]) -> None:
        self.namespace = namespace
        self.routes = routes
        self._compiled = []
        for r in routes:
            count, rest = _segments(r.template)
            matcher = _pattern_params(r) if rest else _segment_params(r)
            self._compiled.append((_Candidate(r, matcher, f"{namespace}.{r.action}", not rest),
                                   _literals_at(r.template), count, rest))
        self._literals = [{lits[i] for _, lits, _, _ in self._compiled if i in lits} for i in range(_INDEX_DEPTH)]
        self._candidates: dict[tuple[str | int, ...], list[_Candidate]] = {}

    def _select(self, method: str, path: str) -> tuple[list[_Candidate], list[str], bool]:
        """(the candidates, the path's segments, whether the path has the form a route pattern requires: one
        leading slash, at most one trailing slash)."""
        stripped = path.strip("/")
        segments = stripped.split("/") if stripped else []
        exact = path[:1] == "/" and (path[1:] == stripped or (path[-1] == "/" and path[1:-1] == stripped))
        # The appended empty segments stand in for those a short path lacks.
        s0, s1, s2, s3 = (segments + ["", "", "", ""])[:_INDEX_DEPTH]
        lit = self._literals  # spelled out for the four positions of _INDEX_DEPTH: this is the hot path
        count = len(segments)
        key = (method, count, s0 if s0 in lit[0] else "\0", s1 if s1 in lit[1] else "\0",
               s2 if s2 in lit[2] else "\0", s3 if s3 in lit[3] else "\0")
        found = self._candidates.get(key)
        if found is None:
            found = [c for c, lits, n, rest in self._compiled
                     if c.route.method == method and (count == n or rest)
                     and all(key[2 + i] == lit for i, lit in lits.items())]
            if len(self._candidates) < _CACHE_MAX:
                self._candidates[key] = found
        return found, segments, exact

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(f"{self.namespace}.{r.action}" for r in self.routes)

    def find(self, view: RequestView, path: str | None = None) -> RouteMatch | None:
        """The first route matching ``view`` (at ``path`` when given, else the view's path), or None."""
        found = self._first(view, view.path if path is None else path)
        return None if found is None else RouteMatch(*found)

    def match(self, connector: str, view: RequestView, path: str | None = None) -> Action | None:
        """``find``'s answer as the Action of ``connector``, or None when no route matches."""
        found = self._first(view, view.path if path is None else path)
        if found is None:
            return None
        name, risk, params, unavailable = found
        return Action(name, connector, risk, params, unavailable)

    def _first(self, view: RequestView, target: str
               ) -> tuple[str, Risk, dict[str, object], frozenset[str]] | None:
        """``RouteMatch``'s fields for the first route matching ``target``. The body is read at most once, and
        only when a matching route looks at it."""
        body: Mapping[str, object] | None = None
        body_read = False
        candidates, segments, exact = self._select(view.method, target)
        for i, (route, matcher, name, by_segments) in enumerate(candidates):
            if by_segments and not exact:
                continue
            found = matcher(target, segments)
            if found is None:
                continue
            if (route.when is not None or route.body_params) and not body_read:
                body, body_read = body_fields(view), True
            if route.when is not None and body is None:
                return self._any_of(view, target, candidates[i:], segments, exact, found)
            if route.when is not None and not route.when(body or {}):
                continue
            return name, route.risk, self._with_query(view, route, found), self._body_params(route, body, found)
        return None

    @staticmethod
    def _with_query(view: RequestView, route: Route, params: dict[str, object]) -> dict[str, object]:
        if route.query_params:
            query = dict(reversed(view.query))  # reversed: the first value of a repeated name wins
            for n in route.query_params:
                if n in query:
                    params[n] = query[n]
        return params

    @staticmethod
    def _body_params(route: Route, body: Mapping[str, object] | None, params: dict[str, object]
                     ) -> frozenset[str]:
        """Copy the route's body params into ``params``; the names that could not be read."""
        if not route.body_params:
            return frozenset()
        if body is None:
            return frozenset(route.body_params)
        for n in route.body_params:
            if n in body:
                params[n] = body[n]
        return frozenset()

    def _any_of(self, view: RequestView, target: str, candidates: list[_Candidate], segments: list[str],
                exact: bool, found: dict[str, object]) -> tuple[str, Risk, dict[str, object], frozenset[str]]:
        """A ``when`` could not read the body: every route the body could make this request, from the first
        candidate (a ``when`` route) down to the first matching route without ``when``, as one request with
        several operations (``params["operations"]``, each decided, as ``protocols.combine`` lists them)."""
        parts: list[tuple[str, Risk]] = []
        unread: set[str] = set()
        for route, matcher, name, by_segments in candidates:
            if (by_segments and not exact) or matcher(target, segments) is None:
                continue
            parts.append((name, route.risk))
            unread.update(route.body_params)
            if route.when is None:
                break
        else:  # no plain twin: the body may also fit none of them
            parts.append((protocols.unknown_action("", self.namespace, view).name, "high"))
        # The riskiest names it; on a tie the later route, the plain twin the body would otherwise fall to.
        name, risk = max(reversed(parts), key=lambda part: protocols.RISK_ORDER[part[1]])
        params = self._with_query(view, candidates[0].route, found)
        params[protocols.OPERATIONS] = tuple(dict.fromkeys(n for n, _ in parts))
        return name, risk, params, frozenset(unread)

    @property
    def websocket_actions(self) -> frozenset[str]:
        """The actions of the routes marked as WebSocket endpoints."""
        return frozenset(f"{self.namespace}.{r.action}" for r in self.routes if r.websocket)


class Connector:
    """A configured connector: a name, the hosts it covers, and the parser that turns a view into an Action.

    ``parse`` is total: a request on a covered host that matches no route becomes
    ``<namespace>.unknown.<method>`` (denied by default like anything else not allowed). ``classify`` first
    applies the classifiers every connector shares (``protocols``: gRPC calls, WebSocket upgrades), then
    ``parse``.

    ``actions`` lists what ``parse`` can emit; ``all_actions`` adds what ``classify`` adds for every connector
    (``<namespace>.websocket.open``, ``grpc.invalid``). ``open_prefixes`` names the prefixes under which
    ``parse`` may emit names ``actions`` cannot list (GraphQL mutations, MCP tools: the server defines them);
    ``all_open_prefixes`` adds ``grpc.``. ``accepts_action`` and ``accepts_prefix`` answer, from both, whether a
    permission pattern can ever match.
    """

    type_name: str = ""
    namespace: str = ""
    default_hosts: tuple[str, ...] = ()  # the public API's hosts; empty: configured domains or URLs are needed
    # Hosts the type's credential is never bound to nor sent to (the service takes it in another form there).
    no_credential_hosts: frozenset[str] = frozenset()
    # Hosts where the credential goes as HTTP Basic credentials with this user name instead of the type's own
    # form (git over HTTPS sends a token only that way): host -> user name. Empty: the type's form everywhere.
    basic_auth_hosts: tuple[tuple[str, str], ...] = ()
    open_prefixes: frozenset[str] = frozenset()
    encoded_slash: bool = False
    """The upstream reads ``%2F`` inside a segment as part of a name, and ``parse`` reads it the same way (npm's
    ``/@scope%2fname``): the enforcer then lets it through instead of refusing it as ambiguous."""

    def __init__(self, name: str, hosts: tuple[str, ...]) -> None:
        self.name = name
        self.hosts = tuple(h.lower() for h in hosts)

    @property
    def actions(self) -> frozenset[str]:
        """Every action name this connector's ``parse`` can emit by exact name."""
        raise NotImplementedError

    def parse(self, view: RequestView) -> Action:
        """The Action for a view already normalised by ``classify``; subclasses implement this."""
        raise NotImplementedError

    @property
    def all_actions(self) -> frozenset[str]:
        """``actions`` plus the actions ``classify`` emits for every connector."""
        return self.actions | protocols.common_actions(self.namespace)

    @property
    def all_open_prefixes(self) -> frozenset[str]:
        """``open_prefixes`` plus the prefixes ``classify`` emits under for every connector (``grpc.``)."""
        return self.open_prefixes | protocols.COMMON_OPEN_PREFIXES

    @property
    def catalogue(self) -> Catalogue:
        """What ``classify`` can emit, as permission validation sees it."""
        return Catalogue(self.all_actions, self.all_open_prefixes)

    def accepts_action(self, name: str) -> bool:
        """Whether ``classify`` can emit ``name``: listed in ``all_actions`` or under an open prefix."""
        return self.catalogue.accepts_action(name)

    def accepts_prefix(self, prefix: str) -> bool:
        """Whether some action ``classify`` can emit starts with ``prefix`` (``github.pr.`` for ``github.pr.*``)."""
        return self.catalogue.accepts_prefix(prefix)

    @property
    def websocket_actions(self) -> frozenset[str]:
        """Actions of the routes this connector marks as WebSocket endpoints (``Route.websocket``): an upgrade
        there is that action alone. Routed connectors take them from their table; others mark none."""
        router = getattr(self, "router", None)
        return router.websocket_actions if isinstance(router, Router) else frozenset()

    def param_path(self, path: str) -> str:
        """The path as recorded in an Action's params; a connector whose paths may hold secrets redacts it."""
        return path

    def classify(self, view: RequestView) -> Action:
        """Normalise the view (method and host case, trailing dot, path encoding and segments), apply the shared
        protocol classifiers, then parse."""
        method, host, path = view.method.upper(), view.host.lower().rstrip("."), normalise_path(view.path)
        if method != view.method or host != view.host or path != view.path:
            view = RequestView(method, view.scheme, host, view.port, path, view.query, view.headers, view.body,
                               view.body_complete)
        shared = protocols.protocol_action(self, view)
        if shared is not None:
            return shared
        plain = self.parse(view)
        return protocols.websocket_action(self, view, plain) if protocols.is_websocket_upgrade(view) else plain
