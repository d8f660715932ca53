"""Checks on what goes into the vault: the token, the connector name, its hosts and gateways.

Everything is checked once, before sealing, so nothing malformed is ever stored and nothing stored can
turn into a malformed request later. Error messages describe a bad token (its length, the position of a bad
character) without ever quoting it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from trustfence.policy.model import NAME, gateway_name_problem
from trustfence.vault.dummy import is_dummy
from trustfence.vault.errors import InvalidEntry, InvalidSecret

__all__ = ["MAX_TOKEN", "NAME", "clean_token", "validate_gateways", "validate_hosts", "validate_name", "validate_token"]

MAX_TOKEN = 8192
"""Longer than any API token in use, short enough to fit in one request header."""

_HOST = re.compile(r"^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$")


def validate_token(token: str) -> str:
    """Return ``token`` unchanged if it can be a credential, else raise InvalidSecret saying why."""
    if not token:
        raise InvalidSecret("the token is empty")
    if not token.strip():
        raise InvalidSecret(f"the token is only whitespace ({len(token)} characters)")
    if len(token) > MAX_TOKEN:
        raise InvalidSecret(f"the token is {len(token)} characters; the limit is {MAX_TOKEN}")
    for i, c in enumerate(token):
        if c in "\r\n":
            raise InvalidSecret(f"the token contains a line break at position {i + 1}; "
                                "pass exactly one line (tf connector add --token-stdin strips the final one)")
        if not " " <= c <= "~":
            what = "a control character" if c.isascii() or not c.isprintable() else "a non-ASCII character"
            raise InvalidSecret(f"the token contains {what} at position {i + 1}")
    if token != token.strip():
        raise InvalidSecret("the token starts or ends with a space; remove it")
    if is_dummy(token):
        raise InvalidSecret("the token is a TrustFence placeholder from a sandbox, not a real credential")
    return token


def clean_token(text: str) -> str:
    """A token read from stdin, a file or an environment variable: one final line break removed, then checked."""
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return validate_token(text)


def validate_name(kind: str, value: str) -> str:
    """A connector name: letters, digits, '_', '-', '.'; 1-64 characters, starting alphanumeric. A gateway
    name: free-form (policy.model.gateway_name_problem)."""
    if kind == "gateway":
        if why := gateway_name_problem(value):
            raise InvalidEntry(f"gateway {value!r} is not a valid name: {why}")
        return value
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidEntry(f"{kind} {value!r} is not a valid name (letters, digits, '_', '-', '.'; 1-64 chars)")
    return value


def validate_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, de-duplicated, sorted host names or ``*.suffix`` wildcards; at least one."""
    out = set()
    for host in hosts:
        if not isinstance(host, str):
            raise InvalidEntry(f"host {host!r} is not a string")
        h = host.strip().lower().rstrip(".")
        if not _HOST.match(h) or len(h) > 253:
            raise InvalidEntry(f"host {host!r} is not a host name or *.domain wildcard")
        out.add(h)
    if not out:
        raise InvalidEntry("a credential needs at least one host it may be sent to")
    return tuple(sorted(out))


def validate_gateways(gateways: Iterable[str]) -> tuple[str, ...]:
    """De-duplicated, sorted gateway names; empty means every gateway may use the credential."""
    return tuple(sorted({validate_name("gateway", g) for g in gateways}))
