"""config.toml: enforcement levels and rate limits, validated at load with file:line, round-tripped by dump."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from trustfence.agent.config import (
    LEVELS,
    ActionLimit,
    Config,
    ConfigError,
    GatewayConfig,
    RateLimitConfig,
    dump_config,
    parse_config,
)
from trustfence.proxy.state import Level

PATH = Path("/etc/tf/config.toml")

FULL = """\
[enforcer]
level = "monitor"

[gateways.Bot]
level = "soft_enforce"

[gateways.Ci]
level = "full_enforce"

[rate_limit]
per_minute = 100

[rate_limit.gateways.Bot]
per_minute = 600

[[rate_limit.actions]]
gateway = "Bot"
action = "stripe.refund.*"
per_minute = 5

[[rate_limit.actions]]
action = "*"
per_minute = 50
"""


def test_defaults_full_enforce_and_120_per_minute() -> None:
    cfg = parse_config("", PATH, env={})
    assert cfg.level == "full_enforce" and cfg.levels() == {}
    assert cfg.rate_limit == RateLimitConfig(120, {}, ())
    assert "rate_limit" not in dump_config(cfg) and "level" not in dump_config(cfg)


def test_values_are_read_and_round_trip() -> None:
    cfg = parse_config(FULL, PATH, env={})
    assert cfg.level == "monitor"
    assert cfg.gateways == {"Bot": GatewayConfig("soft_enforce"), "Ci": GatewayConfig("full_enforce")}
    assert cfg.levels() == {"Bot": "soft_enforce", "Ci": "full_enforce"}
    assert cfg.rate_limit == RateLimitConfig(100, {"Bot": 600}, (ActionLimit("stripe.refund.*", 5, "Bot"),
                                                                 ActionLimit("*", 50)))
    assert parse_config(dump_config(cfg), PATH, env={}) == cfg


def test_a_gateway_table_without_level_takes_the_default() -> None:
    cfg = parse_config('[enforcer]\nlevel = "soft_enforce"\n\n[gateways.Bot]\n', PATH, env={})
    assert cfg.gateways == {"Bot": GatewayConfig(None)} and cfg.levels() == {}
    assert parse_config(dump_config(cfg), PATH, env={}) == cfg


def test_the_levels_are_the_enforcers() -> None:
    assert LEVELS == get_args(Level)


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[enforcer]\nproxy_port = 8080\nlevel = "strict"\n', 3,
     "[enforcer] level must be one of monitor, soft_enforce, full_enforce, got 'strict'"),
    ('[sandbox]\ntag = "tf"\n\n[gateways.Bot]\nlevel = "enforce"\n', 5, "[gateways.Bot] level must be one of"),
    ('[gateways.Bot]\nlevl = "monitor"\n', 2,
     "[gateways.Bot] unknown setting 'levl' (known: level, environment, writable, hidden, writable_cwd)"),
    ('[gateways." not valid"]\nlevel = "monitor"\n', 1, "gateway ' not valid' is not a valid name"),
    ("[rate_limit]\nper_minute = 0\n", 2, "[rate_limit] per_minute must be an integer from 1 to 1000000, got 0"),
    ("[rate_limit]\nper_minute = -5\n", 2, "got -5"),
    ('[rate_limit]\nper_minute = "120"\n', 2, "got '120'"),
    ("[rate_limit]\nper_minute = 1.5\n", 2, "got 1.5"),
    ("[rate_limit]\nper_minute = true\n", 2, "got True"),
    ("[rate_limit]\nper_minut = 10\n", 2, "[rate_limit] unknown setting 'per_minut'"),
    ("[rate_limit]\nper_minute = 10\n\n[rate_limit.gateways.Bot]\nper_minute = 0\n", 5,
     "[rate_limit.gateways.Bot] per_minute must be an integer from 1"),
    ("[rate_limit.gateways.Bot]\n", 1, "[rate_limit.gateways.Bot] per_minute is required"),
    ('[[rate_limit.actions]]\naction = "*"\nper_minute = 5\n\n[[rate_limit.actions]]\naction = "x.*"\n'
     "per_minute = 0\n", 7, "[rate_limit.actions] per_minute must be an integer from 1"),
    ('[[rate_limit.actions]]\naction = "github..pr"\nper_minute = 5\n', 2, "action pattern 'github..pr' is not valid"),
    ("[[rate_limit.actions]]\nper_minute = 5\n", 1, "[rate_limit.actions] action is required"),
    ('[[rate_limit.actions]]\naction = "*"\n', 1, "per_minute is required"),
    ('[[rate_limit.actions]]\ngateway = " a b"\naction = "*"\nper_minute = 1\n', 2, "gateway ' a b' is not a valid"),
    ('[[rate_limit.actions]]\ngateway = 7\naction = "*"\nper_minute = 1\n', 2, "gateway must be a name, got 7"),
    ("gateways = 5\n", None, "[gateways] must be a table of [NAME] tables, got 5"),
    ("[rate_limit]\ngateways = 5\n", 2, "[rate_limit] gateways must be a table of [NAME] tables, got 5"),
    ('[rate_limit]\nactions = "none"\n', 1, "[rate_limit.actions] actions must be an array of tables"),
    ('[[rate_limit.actions]]\naction = "*"\nper_minute = 1\nburst = 3\n', 4, "unknown setting 'burst'"),
    ('[[rate_limit.actions]]\naction = "*"\nper_minute = 1\n[[rate_limit.actions]]\naction = "*"\n'
     "per_minute = 2\n", 5, "a rule for * (every gateway) is already above"),
])
def test_bad_values_name_file_line_and_reason(text: str, line: int | None, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, PATH, env={})
    assert (e.value.file, e.value.line) == (PATH, line)
    assert message in e.value.reason
    assert str(e.value).startswith(f"{PATH}:{line}: " if line else f"{PATH}: ")


def test_config_dataclass_defaults_match_an_empty_file() -> None:
    assert parse_config("", PATH, env={}) == Config()
