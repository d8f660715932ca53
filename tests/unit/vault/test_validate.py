"""Token checks: what cannot be a credential is refused with a reason, and the reason never quotes it."""

from __future__ import annotations

import pytest
from trustfence.vault import InvalidSecret, clean_token, placeholder, validate_token
from trustfence.vault.validate import MAX_TOKEN, validate_hosts


@pytest.mark.parametrize(
    ("token", "match"),
    [
        ("", "empty"),
        ("   ", "only whitespace"),
        ("\t\n", "only whitespace"),
        ("abc\ndef", "line break at position 4"),
        ("abc\rdef", "line break"),
        ("abc\x00def", "control character at position 4"),
        ("abc\x7fdef", "control character"),
        ("abc\tdef", "control character"),
        ("abc\x85def", "control character"),
        ("abcédef", "non-ASCII character at position 4"),
        (" abcdef", "starts or ends with a space"),
        ("abcdef ", "starts or ends with a space"),
        ("x" * (MAX_TOKEN + 1), "limit"),
        (placeholder("openai"), "placeholder"),
    ],
)
def test_refused(token: str, match: str) -> None:
    with pytest.raises(InvalidSecret, match=match) as e:
        validate_token(token)
    if token.strip():
        assert token.strip() not in str(e.value)


@pytest.mark.parametrize("token", ["ghp_" + "a" * 36, "sk-ant-api03-xyz", "user:pass with space", "a"])
def test_accepted(token: str) -> None:
    assert validate_token(token) == token


def test_clean_token_drops_one_final_line_break() -> None:
    assert clean_token("ghp_abc\n") == "ghp_abc"
    assert clean_token("ghp_abc\r\n") == "ghp_abc"
    with pytest.raises(InvalidSecret, match="line break"):
        clean_token("ghp_abc\n\n")
    with pytest.raises(InvalidSecret, match="empty"):
        clean_token("\n")


def test_hosts() -> None:
    assert validate_hosts(["API.example.com.", "*.Corp.example"]) == ("*.corp.example", "api.example.com")
