"""How each connector type sends its credential upstream, as plain data, and the pure function that does it.

An ``InjectionSpec`` says where the secret goes (one header with a prefix, or one query parameter) and which
agent-supplied headers are removed first. The agent only ever holds a placeholder, but whatever it sends in a
credential header is dropped before the real one goes in: the upstream sees exactly one credential, ours.

======================  ============================  =====================
type                    header                        prefix
======================  ============================  =====================
github, openai,         ``Authorization``             ``Bearer ``
stripe, slack, mcp
anthropic               ``x-api-key``                 (none)
generic, webhook        configurable (default         configurable (default
                        ``Authorization``), or a      ``Bearer ``)
                        query parameter instead
======================  ============================  =====================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from trustfence.vault.errors import InvalidEntry, InvalidSecret

__all__ = ["ALWAYS_STRIP", "CONFIGURABLE", "SPECS", "TYPES", "InjectionSpec", "Pairs", "apply", "spec_for"]

Pairs = list[tuple[str, str]]
"""Headers or query parameters in order, repeats kept: ``[("Accept", "*/*"), ...]``."""

ALWAYS_STRIP = ("authorization", "proxy-authorization", "x-api-key")
"""Credential headers removed from every request that gets a credential, whatever the type."""

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # RFC 9110 field-name token
_PARAM = re.compile(r"^[A-Za-z0-9_.~-]{1,64}$")
# Headers that frame or route the request: a credential there would corrupt it or reach the wrong place.
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                       "keep-alive", "trailer", "cookie", "content-type", "content-encoding", "expect"})


@dataclass(frozen=True, slots=True)
class InjectionSpec:
    """Where a credential goes.

    ``header``: the header that carries it (``Authorization``), or None when ``query_param`` is used.
    ``prefix``: text before the secret in that header (``Bearer ``); empty for none. Unused for a query.
    ``query_param``: the query parameter that carries it (``api_key``), or None when ``header`` is used.
    ``strip``: lower-case header names removed before injecting; computed, not given.
    """

    header: str | None = "Authorization"
    prefix: str = "Bearer "
    query_param: str | None = None
    strip: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if (self.header is None) == (self.query_param is None):
            raise InvalidEntry("an injection spec needs exactly one of a header or a query parameter")
        if self.header is not None:
            if not _TOKEN.match(self.header):
                raise InvalidEntry(f"injection header {self.header!r} is not a valid header name")
            if self.header.lower() in _RESERVED:
                raise InvalidEntry(f"injection header {self.header!r} is reserved; choose another header")
        if self.query_param is not None and not _PARAM.match(self.query_param):
            raise InvalidEntry(f"injection query parameter {self.query_param!r} is not a valid name "
                               "(letters, digits, '_', '.', '~', '-')")
        if any(not " " <= c <= "~" for c in self.prefix) or (self.query_param and self.prefix):
            raise InvalidEntry("injection prefix must be printable ASCII, and is only used with a header")
        extra = () if self.header is None else (self.header.lower(),)
        object.__setattr__(self, "strip", tuple(sorted(set(ALWAYS_STRIP + extra))))

    def as_dict(self) -> dict[str, str]:
        """The stored form: ``{"header": ..., "prefix": ...}`` or ``{"query": ...}``."""
        if self.header is not None:
            return {"header": self.header, "prefix": self.prefix}
        assert self.query_param is not None
        return {"query": self.query_param}


SPECS: dict[str, InjectionSpec] = {
    "github": InjectionSpec("Authorization", "Bearer "),
    "openai": InjectionSpec("Authorization", "Bearer "),
    "stripe": InjectionSpec("Authorization", "Bearer "),
    "slack": InjectionSpec("Authorization", "Bearer "),
    "mcp": InjectionSpec("Authorization", "Bearer "),
    "anthropic": InjectionSpec("x-api-key", ""),
    "generic": InjectionSpec("Authorization", "Bearer "),
    "webhook": InjectionSpec("Authorization", "Bearer "),
    # A private registry's token: npm and Go proxies (Artifactory, Nexus, Athens) take a bearer token, cargo
    # sends its token bare; PyPI mirrors that take a bearer token (Artifactory's identity tokens) work too.
    "npm": InjectionSpec("Authorization", "Bearer "),
    "gomod": InjectionSpec("Authorization", "Bearer "),
    "pypi": InjectionSpec("Authorization", "Bearer "),
    "crates": InjectionSpec("Authorization", ""),
}
"""The spec of each connector type; for a configurable type, its default."""

TYPES: tuple[str, ...] = tuple(sorted(SPECS))
CONFIGURABLE = frozenset({"generic", "webhook"})
"""Types whose header, prefix or query parameter the operator chooses (``tf connector add --header``)."""


def spec_for(type_name: str, *, header: str | None = None, prefix: str | None = None,
             query_param: str | None = None) -> InjectionSpec:
    """The spec for a connector type, with the operator's choices for a configurable type.

    A custom header without a prefix gets none; ``Authorization`` without one gets ``Bearer ``.
    Choices given for a fixed type are refused rather than ignored: an operator who asks for a header must
    not be left believing it is used.
    """
    base = SPECS.get(type_name)
    if base is None:
        raise InvalidEntry(f"unknown connector type {type_name!r}; known: {', '.join(TYPES)}")
    if header is None and prefix is None and query_param is None:
        return base
    if type_name not in CONFIGURABLE:
        raise InvalidEntry(f"connector type {type_name} always sends its credential as "
                           f"{base.header}: {base.prefix}<token>; header, prefix and query cannot be changed")
    if query_param is not None:
        if header is not None or prefix is not None:
            raise InvalidEntry("give either a query parameter or a header with its prefix, not both")
        return InjectionSpec(None, "", query_param)
    header = header or base.header or "Authorization"
    if prefix is None:
        # "Bearer " belongs to Authorization; a custom header (X-Api-Token) usually carries the bare token.
        prefix = base.prefix if header.lower() == "authorization" else ""
    return InjectionSpec(header, prefix)


def apply(spec: InjectionSpec, headers: Pairs, query: Pairs, secret: str) -> tuple[Pairs, Pairs]:
    """New header and query lists with the agent's credential headers removed and the secret added.

    Pure: the inputs are not modified. Header names compare case-insensitively; a query parameter of the
    injected name that the agent sent is removed too, so the upstream never sees two.
    """
    if not secret or any(not " " <= c <= "~" for c in secret):
        # Defence in depth: a CR/LF here would split the header; put() already refuses such tokens.
        raise InvalidSecret("refusing to inject a credential that is empty or has control characters")
    out_headers = [(k, v) for k, v in headers if k.lower() not in spec.strip]
    out_query = list(query)
    if spec.header is not None:
        out_headers.append((spec.header, spec.prefix + secret))
    else:
        out_query = [(k, v) for k, v in query if k != spec.query_param]
        out_query.append((spec.query_param or "", secret))
    return out_headers, out_query
