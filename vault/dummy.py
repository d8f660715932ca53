"""Placeholder credentials for the agent's environment.

An agent's SDK refuses to start without an API key, so the sandbox gives it one that is shaped right and
worth nothing: the enforcer strips it and injects the real credential after a request is allowed. Each
placeholder contains ``tfdummy`` (and ``TRUSTFENCE`` where the format allows) so a human who finds one in a
log or a core dump knows what it is, and ``is_dummy`` recognises one wherever it turns up.

Shapes, and why:

- GitHub (``GITHUB_TOKEN``, ``GH_TOKEN``): ``ghp_`` + 30 base62 characters + a 6-character base62 CRC32 of
  them, the classic personal-token format, so even tools that verify the checksum take it as well formed.
- OpenAI (``OPENAI_API_KEY``): ``sk-``; Anthropic (``ANTHROPIC_API_KEY``): ``sk-ant-api03-``. Both SDKs
  only require a non-empty string; the prefixes keep humans and scanners oriented.
- Stripe (``STRIPE_API_KEY``, ``STRIPE_SECRET_KEY``): ``sk_test_`` + letters and digits. Stripe's SDKs
  check only that a key is present, non-empty and free of whitespace, not its prefix; ``sk_test_`` marks
  it as a test-mode key to anyone reading it.
- Slack (``SLACK_BOT_TOKEN``): ``xoxb-<digits>-<digits>-<24 letters and digits>``, a bot token's layout.
- mcp, generic, webhook and the package registries (pypi, npm, crates, gomod) have no SDK convention: no
  variable is set; ``placeholder`` gives a value an operator can put in the agent's own configuration (an
  ``.npmrc`` ``_authToken``, a connector's ``env``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

from trustfence.vault.keys import KEY_ENV

__all__ = ["ENV_VARS", "MARKER", "STRIP_NAMES", "dummy_env", "is_dummy", "placeholder", "sandbox_env"]

MARKER = "tfdummy"
"""In every placeholder (compared case-insensitively by ``is_dummy``)."""

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _BASE62[r] + out
    return out.rjust(width, "0")


def _github() -> str:
    body = "tfdummyTRUSTFENCEDUMMYtoken000"  # 30 base62 characters
    return f"ghp_{body}{_base62(zlib.crc32(body.encode()), 6)}"


_VALUES: dict[str, str] = {
    "github": _github(),
    "openai": "sk-tfdummy-TRUSTFENCE-DUMMY-not-a-real-key-000000000000",
    "anthropic": "sk-ant-api03-tfdummy-TRUSTFENCE-DUMMY-not-a-real-key-000000000000-AA",
    "stripe": "sk_test_tfdummyTRUSTFENCEDUMMYnotarealkey0000000000",
    "slack": "xoxb-000000000000-0000000000000-tfdummyTRUSTFENCEDUMMY00",
    "mcp": "tfdummy-TRUSTFENCE-DUMMY-not-a-real-token",
    "generic": "tfdummy-TRUSTFENCE-DUMMY-not-a-real-token",
    "webhook": "tfdummy-TRUSTFENCE-DUMMY-not-a-real-token",
    **dict.fromkeys(("pypi", "npm", "crates", "gomod"), "tfdummy-TRUSTFENCE-DUMMY-not-a-real-token"),
}

ENV_VARS: Mapping[str, tuple[str, ...]] = {
    "github": ("GITHUB_TOKEN", "GH_TOKEN"),
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "stripe": ("STRIPE_API_KEY", "STRIPE_SECRET_KEY"),
    "slack": ("SLACK_BOT_TOKEN",),
    "mcp": (),
    "generic": (),
    "webhook": (),
    **dict.fromkeys(("pypi", "npm", "crates", "gomod"), ()),
}
"""The variables each connector type's SDKs read their credential from."""

STRIP_NAMES: frozenset[str] = frozenset(
    {name for names in ENV_VARS.values() for name in names}
    | {"GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "ANTHROPIC_AUTH_TOKEN", "SLACK_USER_TOKEN",
       "SLACK_APP_TOKEN", "OPENAI_ADMIN_KEY"}
    | {KEY_ENV, "CREDENTIALS_DIRECTORY"}
)
"""Variables never inherited by an agent, configured or not: a real token exported in the operator's shell
(or the vault key itself) must not reach the sandbox. Where a connector is configured, a placeholder is set
in their place by ``dummy_env``."""

def placeholder(type_name: str) -> str:
    """The placeholder credential for a connector type."""
    try:
        return _VALUES[type_name]
    except KeyError:
        raise ValueError(f"unknown connector type {type_name!r}; known: {', '.join(sorted(_VALUES))}") from None


def dummy_env(types: Iterable[str]) -> dict[str, str]:
    """Variable -> placeholder for the configured connector types (unknown types are a ValueError)."""
    env: dict[str, str] = {}
    for type_name in sorted(set(types)):
        value = placeholder(type_name)
        env.update((name, value) for name in ENV_VARS[type_name])
    return env


def sandbox_env(inherited: Mapping[str, str], types: Iterable[str]) -> dict[str, str]:
    """The agent's environment: ``inherited`` without ``STRIP_NAMES``, plus the placeholders for ``types``."""
    env = {k: v for k, v in inherited.items() if k not in STRIP_NAMES}
    env.update(dummy_env(types))
    return env


def is_dummy(value: str) -> bool:
    """True for a TrustFence placeholder (for refusing to store one, and for spotting one in traffic)."""
    return MARKER in value.lower()
