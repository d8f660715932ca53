"""Placeholders: shaped like the real thing, recognisable, and real tokens never inherited by the agent."""

from __future__ import annotations

import re
import zlib

import pytest
from trustfence.vault import KEY_ENV, STRIP_NAMES, TYPES, dummy_env, is_dummy, placeholder, sandbox_env
from trustfence.vault.dummy import ENV_VARS

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SHAPES = {
    "github": r"ghp_[A-Za-z0-9]{36}",
    "openai": r"sk-[A-Za-z0-9-]{20,}",
    "anthropic": r"sk-ant-api03-[A-Za-z0-9_-]{20,}",
    "stripe": r"sk_test_[A-Za-z0-9]{24,}",
    "slack": r"xoxb-\d{10,13}-\d{10,13}-[A-Za-z0-9]{24}",
}


@pytest.mark.parametrize("type_name", sorted(SHAPES))
def test_shapes(type_name: str) -> None:
    value = placeholder(type_name)
    assert re.fullmatch(SHAPES[type_name], value), value
    assert "tfdummy" in value and "TRUSTFENCE" in value
    assert is_dummy(value)
    assert not any(c.isspace() for c in value)  # Stripe's SDKs (and header syntax) refuse whitespace


def test_github_placeholder_has_a_valid_checksum() -> None:
    token = placeholder("github")
    body, check = token[4:-6], token[-6:]
    value = 0
    for c in check:
        value = value * 62 + BASE62.index(c)
    assert value == zlib.crc32(body.encode())


def test_env_for_configured_types() -> None:
    env = dummy_env({"github", "anthropic", "generic"})
    assert env == {
        "GITHUB_TOKEN": placeholder("github"),
        "GH_TOKEN": placeholder("github"),
        "ANTHROPIC_API_KEY": placeholder("anthropic"),
    }
    assert dummy_env([]) == {}
    assert set(dummy_env(TYPES)) == {n for names in ENV_VARS.values() for n in names}
    assert dummy_env(["stripe"]) == {"STRIPE_API_KEY": placeholder("stripe"),
                                     "STRIPE_SECRET_KEY": placeholder("stripe")}
    assert dummy_env(["openai"]) == {"OPENAI_API_KEY": placeholder("openai")}
    assert dummy_env(["slack"]) == {"SLACK_BOT_TOKEN": placeholder("slack")}


def test_every_type_has_a_placeholder() -> None:
    for type_name in TYPES:
        assert is_dummy(placeholder(type_name))


def test_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown connector type 'gitlab'"):
        dummy_env(["gitlab"])


def test_sandbox_env_strips_real_credentials_and_the_vault_key() -> None:
    inherited = {
        "PATH": "/usr/bin",
        "HOME": "/home/dev",
        "GITHUB_TOKEN": "ghp_real",
        "OPENAI_API_KEY": "sk-real",
        "ANTHROPIC_AUTH_TOKEN": "real",
        KEY_ENV: "00" * 32,
        "CREDENTIALS_DIRECTORY": "/run/credentials/trustfence.service",
    }
    env = sandbox_env(inherited, ["github"])
    assert env == {"PATH": "/usr/bin", "HOME": "/home/dev", "GITHUB_TOKEN": placeholder("github"),
                   "GH_TOKEN": placeholder("github")}
    assert {KEY_ENV, "CREDENTIALS_DIRECTORY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN"} <= STRIP_NAMES


def test_is_dummy_ignores_real_looking_tokens() -> None:
    assert not is_dummy("ghp_" + "a" * 36)
    assert is_dummy("Bearer " + placeholder("openai"))
