"""Redaction: credential headers hashed under a key, known secrets scrubbed from any text."""

from __future__ import annotations

import re

import pytest
from urllib.parse import quote

from trustfence.vault import MasterKey, Vault, fingerprint_key, redact_headers, redact_query, scrub
from trustfence.vault.redact import REDACTED_TEXT, StreamScrub

HASH_KEY = b"k" * 32
REDACTED = re.compile(r"^redacted:[0-9a-f]{12}$")


def test_sensitive_headers_are_redacted() -> None:
    headers = [
        ("Authorization", "Bearer s3cret"),
        ("proxy-authorization", "Basic dXNlcjpwYXNz"),
        ("Cookie", "session=abc"),
        ("SET-COOKIE", "session=abc; HttpOnly"),
        ("X-Api-Key", "s3cret"),
        ("X-Custom-Token", "custom"),
        ("Accept", "application/json"),
    ]
    out = redact_headers(headers, ["x-custom-token"], HASH_KEY)
    assert [k for k, _ in out] == [k for k, _ in headers]
    assert all(REDACTED.match(v) for _, v in out[:6])
    assert out[6] == ("Accept", "application/json")
    assert "s3cret" not in repr(out) and "abc" not in repr(out)


def test_same_token_same_hash_whatever_the_scheme() -> None:
    a = redact_headers([("Authorization", "Bearer s3cret")], [], HASH_KEY)[0][1]
    b = redact_headers([("x-api-key", "s3cret")], [], HASH_KEY)[0][1]
    c = redact_headers([("Authorization", "Bearer other")], [], HASH_KEY)[0][1]
    d = redact_headers([("Authorization", "Bearer s3cret")], [], b"j" * 32)[0][1]
    assert a == b and a != c and a != d


def test_redacted_value_matches_the_vault_fingerprint(filled: Vault, key: MasterKey, canary: str) -> None:
    out = redact_headers([("Authorization", f"Bearer {canary}")], [], fingerprint_key(key))
    assert out[0][1] == f"redacted:{filled.get('github').fingerprint}"


def test_redact_query() -> None:
    out = redact_query([("api_key", "s3cret"), ("q", "cats")], ["api_key"], HASH_KEY)
    assert REDACTED.match(out[0][1]) and out[1] == ("q", "cats")


def test_scrub() -> None:
    text = "GET /x?key=s3%2Fcret failed: token s3/cret rejected; also ab/c+d as ab%2Fc%2Bd and ab%2Fc%2Bd"
    out = scrub(text, ["s3/cret", "ab/c+d"])
    assert "s3/cret" not in out and quote("s3/cret", safe="") not in out and "ab%2Fc%2Bd" not in out
    assert out.count(REDACTED_TEXT) == 5


def test_scrub_replaces_the_longest_secret_whole() -> None:
    assert scrub("token abcdef here", ["abc", "abcdef"]) == f"token {REDACTED_TEXT} here"
    assert scrub("red", ["red"]) == REDACTED_TEXT  # the replacement itself is never rewritten


def test_scrub_without_secrets() -> None:
    assert scrub("nothing to hide", []) == "nothing to hide"
    assert scrub("nothing to hide", [""]) == "nothing to hide"


@pytest.mark.parametrize("cut", range(1, 40))
def test_stream_scrub_catches_a_secret_split_anywhere(cut: int) -> None:
    secret = "sk_live_" + "Q" * 20
    body = f"data: {{\"echo\": \"Bearer {secret}\"}}\n\n".encode()
    scrub = StreamScrub([secret])
    out = scrub(body[:cut]) + scrub(body[cut:]) + scrub(b"")
    assert out == body.replace(secret.encode(), b"[redacted]")


def test_stream_scrub_holds_back_only_what_could_start_a_secret() -> None:
    scrub = StreamScrub(["sk_live_ABC"])
    assert scrub(b"data: one\n\n") == b"data: one\n\n"  # an event is passed on whole, at once
    assert scrub(b"data: sk_li") == b"data: "
    assert scrub(b"ve_ABC!\n") == b"[redacted]!\n"
    assert scrub(b"tail sk") == b"tail "
    assert scrub(b"") == b"sk"  # the end of the stream releases what was held


def test_stream_scrub_url_encoded_forms() -> None:
    secret = "a/b+c="
    out = StreamScrub([secret]).scrub(b"x=a%2Fb%2Bc%3D&y=a/b+c=")
    assert out == b"x=[redacted]&y=[redacted]"
