"""RequestTarget: a request the upstream could read differently from the classifier gets 400 and a row.

The classifier decides on one reading of the request; an origin server, a framework or a proxy in front of
it may read the same bytes another way, and then the decision was about some other request. So anything
with more than one plausible reading is refused, never repaired:

- the request target: a fragment (``#``: parsers that drop it read a shorter path), encoded separators and
  dots (``%2F``, ``%5C``, ``%2e%2e``), double encoding (``%25``), ``.`` / ``..`` / empty segments, backslashes,
  ``;`` path parameters, control characters, whitespace or raw non-ASCII bytes, malformed ``%`` escapes,
  escapes that are not UTF-8 (overlong forms such as ``%c0%ae``);
- the headers: more than one ``Host`` (or a ``Host`` that differs from HTTP/2's ``:authority``), more than one
  ``Content-Length`` or ``Content-Type``, a value carrying a line break or NUL (folded headers), request
  trailers (some servers merge them into the headers);
- a method override (``X-HTTP-Method-Override``, ``X-HTTP-Method``, ``X-Method-Override`` and the gateway
  forms ``X-Original-Method``, ``X-Forwarded-Method``; or ``_method`` and those names as a query parameter or
  body field, wherever in the query a parser might split it): the origin may act on the overriding method,
  the classifier saw another. Send the method itself.

``target_problem`` and ``header_problem`` are pure; the addon runs after Bodies (the body's ``_method``
field needs the decoded body) and before Classify.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, unquote_to_bytes

from mitmproxy import http

from trustfence.connectors.base import RequestView, body_fields
from trustfence.proxy.bodies import Body
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.destination import split_host
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState

__all__ = ["METHOD_FIELDS", "OVERRIDE_HEADERS", "RequestTarget", "header_problem", "target_problem"]

OVERRIDE_HEADERS = frozenset({"x-http-method-override", "x-http-method", "x-method-override", "x-original-method",
                              "x-original-http-method", "x-forwarded-method"})
"""Headers some framework or gateway takes as the real method."""
METHOD_FIELDS = frozenset({"_method", "x-http-method-override", "x-http-method", "x-method-override"})
"""Query parameters / body fields (compared in lower case) Rails, Laravel, Symfony, ASP.NET and others take as
the real method."""

# What a path may hold as-is: RFC 3986 pchar and "/", minus ";" (path parameters some servers strip).
_PATH_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/%]*\Z")
# Anything in a query the origin could split or decode differently: controls, whitespace, non-ASCII.
_QUERY_BAD = re.compile(r"[\x00-\x20\x7f-\U0010ffff]")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Escapes of characters that are structure somewhere: / \ ? # % ; and control characters.
_PCT_STRUCTURAL = re.compile(r"%(2[fF]|5[cC]|3[fF]|23|25|3[bB]|[01][0-9A-Fa-f]|7[fF])")


def target_problem(target: str, encoded_slash: bool = False) -> str | None:
    """Why the request target (path and query, as received) could be read two ways; None when it cannot.
    ``encoded_slash``: the host's connector reads ``%2F`` as its upstream does (``Connector.encoded_slash``)."""
    if "#" in target:
        return "a request target with a fragment (#) is refused: servers disagree on where its path ends"
    path, _, query = target.partition("?")
    if not path.startswith("/"):
        return f"the request target {path[:40]!r} is not an absolute path"
    if not _PATH_OK.match(path):
        bad = next(c for c in path if not _PATH_OK.match(c))
        return f"the request path holds {bad!r}, which servers read differently (backslash, ';', space, control " \
               "or non-ASCII)"
    if _PCT.search(path):
        return "the request path has a malformed % escape"
    if m := _PCT_STRUCTURAL.search(re.sub("%2[fF]", "", path) if encoded_slash else path):
        return f"the request path encodes a separator or control character ({m.group(0)}): send it plainly"
    try:
        unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return "the request path has % escapes that are not UTF-8 (servers decode such bytes differently)"
    # where an encoded slash passes, the segments it makes must be as plain as any other
    segments = (unquote(path) if encoded_slash else path)[1:].split("/")
    for i, seg in enumerate(segments):
        if seg == "" and i != len(segments) - 1:
            return "the request path has an empty segment (//)"
        if unquote(seg) in (".", ".."):
            return "the request path has a '.' or '..' segment"
    if _QUERY_BAD.search(query) or _PCT.search(query):
        return "the query string holds whitespace, control or non-ASCII characters, or a malformed % escape"
    # Every parameter name, split as any parser might (';' too) and decoded twice (some decode names again).
    names = {unquote(unquote(pair.partition("=")[0].replace("+", " "))).strip().lower()
             for pair in re.split("[&;]", query)}
    if names & METHOD_FIELDS:
        return "a method override (_method or X-HTTP-Method in the query) is refused: send the method itself"
    return None


def header_problem(fields: Sequence[tuple[str, str]], authority: str, http2: bool) -> str | None:
    """Why the headers (name, value pairs as received) could be read two ways; None when they cannot."""
    hosts = [v for k, v in fields if k.lower() == "host"]
    if len(hosts) > 1:
        return "more than one Host header"
    if http2 and hosts and authority and hosts[0].strip().lower() != authority.strip().lower():
        return "the Host header and :authority differ"
    for single in ("content-length", "content-type"):
        if sum(1 for k, _ in fields if k.lower() == single) > 1:
            return f"more than one {single.title()} header"
    for k, v in fields:
        if any(c in v for c in "\r\n\0"):
            return f"the {k} header holds a line break or NUL (a folded header)"
        # CGI, WSGI and PHP read X_HTTP_METHOD_OVERRIDE and X-HTTP-Method-Override as the same variable
        if k.lower().replace("_", "-") in OVERRIDE_HEADERS:
            return f"a method override ({k}) is refused: send the method itself"
    return None


def _overrides_in_body(flow: http.HTTPFlow, body: Body) -> bool:
    if not body.mentions_method_field:
        return False
    req = flow.request
    headers = {"content-type": req.headers.get("content-type", "")}  # all body_fields reads
    fields = body_fields(RequestView(req.method, req.scheme, "", 0, "/", (), headers, body.head, body.complete))
    # named somewhere in a body that cannot be read: refuse
    return fields is None or any(str(name).lower() in METHOD_FIELDS for name in fields)


class RequestTarget:
    """Refuse (400) any request whose target or headers have more than one reading, or that overrides its
    method."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        fields = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in req.headers.fields]
        # The name the request gives: if it disagrees with SNI or CONNECT, Classify refuses it right after.
        connector = self.state.connectors.for_host(split_host(req.pretty_host))
        problem = (target_problem(req.path, connector is not None and connector.encoded_slash)
                   or header_problem(fields, req.authority, req.http_version == "HTTP/2.0"))
        if problem is None and req.trailers:
            problem = "request trailers are refused: some servers merge them into the headers"
        if problem is None and _overrides_in_body(flow, record_of(flow).decoded()):
            problem = "a method override (_method or X-HTTP-Method in the body) is refused: send the method itself"
        if problem is not None:
            deny(flow, problem, status=400)
