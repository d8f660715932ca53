"""Redaction: credentials out of every header, query and text that is logged, before it is queued.

A redacted value is ``redacted:<12 hex>``, a keyed hash of the credential: two requests that carried the
same token show the same value, and nobody without the key can test a guess against it. With
``fingerprint_key(master_key)`` as the hash key, the value equals the vault entry's fingerprint, so
``redacted:9f86d081884c`` in a log can be matched to the entry whose fingerprint is ``9f86d081884c``. The
auth scheme (``Bearer``, ``Basic``, ``token``) is dropped before hashing for that reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from trustfence.vault.crypto import keyed_hash

__all__ = ["REDACTED_TEXT", "SENSITIVE_HEADERS", "StreamScrub", "redact_headers", "redact_query", "redact_value",
           "scrub"]

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
"""Always redacted, lower case; ``extra_names`` adds a connector's own credential header."""

REDACTED_TEXT = "[redacted]"
"""What ``scrub`` puts where a secret was."""

_SCHEME = re.compile(r"^(?:bearer|basic|token|bot|digest)\s+(\S.*)$", re.IGNORECASE)


def redact_value(value: str, hash_key: bytes) -> str:
    """``redacted:<keyed hash>`` of a credential header's value, the auth scheme left out of the hash."""
    m = _SCHEME.match(value.strip())
    return f"redacted:{keyed_hash(hash_key, m.group(1) if m else value.strip())}"


def redact_headers(headers: Iterable[tuple[str, str]], extra_names: Iterable[str],
                   hash_key: bytes) -> list[tuple[str, str]]:
    """The headers with every credential-bearing value replaced; names compare case-insensitively."""
    names = SENSITIVE_HEADERS | {n.lower() for n in extra_names}
    return [(k, redact_value(v, hash_key) if k.lower() in names else v) for k, v in headers]


def redact_query(query: Iterable[tuple[str, str]], names: Iterable[str],
                 hash_key: bytes) -> list[tuple[str, str]]:
    """Query pairs with the values of ``names`` (a credential sent as a query parameter) replaced."""
    wanted = set(names)
    return [(k, redact_value(v, hash_key) if k in wanted else v) for k, v in query]


def _text_forms(secrets: Iterable[str]) -> set[str]:
    """Each secret as sent and URL-encoded (a token sent as a query parameter appears encoded)."""
    return {form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s, safe=""))}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a known secret replaced by ``[redacted]``, for log lines and errors.

    Also catches a secret's URL-encoded forms (a token sent as a query parameter appears encoded in a
    logged URL). All forms are replaced in one pass, longest first, so a secret that contains another is
    replaced whole and a replacement is never itself rewritten.
    """
    forms = _text_forms(secrets)
    if not forms:
        return text
    pattern = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, REDACTED_TEXT, text)


def _forms(secrets: Iterable[str]) -> list[bytes]:
    """``_text_forms`` as bytes, longest first."""
    return sorted((f.encode() for f in _text_forms(secrets)), key=len, reverse=True)


class StreamScrub:
    """Replace secrets in a body that arrives in chunks, for a response streamed to the agent.

    Called with each chunk and, at the end, with ``b""`` (mitmproxy's contract for ``response.stream``). A
    secret split across two chunks is still caught: the end of a chunk is held back only while it could be
    the start of a secret, so an event stream whose events end in newlines is passed on without delay.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._forms = _forms(secrets)
        self._pattern = re.compile(b"|".join(re.escape(f) for f in self._forms)) if self._forms else None
        self._tail = b""

    def scrub(self, data: bytes) -> bytes:
        """``data`` with every secret replaced (a whole body, no holding back)."""
        return data if self._pattern is None else self._pattern.sub(REDACTED_TEXT.encode(), data)

    def _held(self, data: bytes) -> int:
        """How many bytes at the end of ``data`` could begin a secret."""
        for n in range(min(len(data), max((len(f) for f in self._forms), default=1) - 1), 0, -1):
            if any(f.startswith(data[-n:]) for f in self._forms):
                return n
        return 0

    def __call__(self, chunk: bytes) -> bytes:
        data = self.scrub(self._tail + chunk)
        if not chunk:
            self._tail = b""
            return data
        held = self._held(data)
        self._tail = data[len(data) - held:] if held else b""
        return data[:len(data) - held]
