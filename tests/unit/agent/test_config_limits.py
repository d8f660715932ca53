"""[enforcer] per-sandbox limits: defaults, read and written back, and refused with the line when out of range."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.agent.config import ConfigError, dump_config, parse_config
from trustfence.proxy.limits import SandboxLimits


def test_defaults_when_left_out(tmp_path: Path) -> None:
    assert parse_config("", tmp_path / "config.toml", {}).limits == SandboxLimits(256, 32, 60.0, 20.0)
    assert "max_connections_per_sandbox" not in dump_config(parse_config("", tmp_path / "config.toml", {}))


def test_limits_are_read_and_written_back(tmp_path: Path) -> None:
    text = ("[enforcer]\nmax_connections_per_sandbox = 8\nmax_held_per_sandbox = 2\nidle_timeout = 1.5\n"
            "header_timeout = 3\nbody_timeout = 30\nmax_request_body = 1048576\n")
    cfg = parse_config(text, tmp_path / "config.toml", {})
    assert cfg.limits == SandboxLimits(8, 2, 1.5, 3.0, 30.0, 1048576)
    assert parse_config(dump_config(cfg), tmp_path / "config.toml", {}).limits == cfg.limits


@pytest.mark.parametrize(("line", "why"), [
    ("max_connections_per_sandbox = 0", "max_connections_per_sandbox must be an integer from 1"),
    ("max_held_per_sandbox = \"many\"", "max_held_per_sandbox must be an integer"),
    ("idle_timeout = 0", "idle_timeout must be a number of seconds from 0.5"),
    ("header_timeout = true", "header_timeout must be a number of seconds"),
    ("body_timeout = 0.1", "body_timeout must be a number of seconds from 0.5"),
    ("max_request_body = 10", "max_request_body must be an integer from 1024"),
    ("max_request_body = \"32M\"", "max_request_body must be an integer"),
])
def test_bad_limits_are_refused_with_the_line(tmp_path: Path, line: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as e:
        parse_config(f"# limits\n[enforcer]\n{line}\n", tmp_path / "config.toml", {})
    assert e.value.line == 2
