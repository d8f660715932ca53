"""[enforcer] workers: 1 by default, read and written back, refused with the line when out of range."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.agent.config import ConfigError, dump_config, parse_config


def test_one_worker_when_left_out(tmp_path: Path) -> None:
    cfg = parse_config("", tmp_path / "config.toml", {})
    assert cfg.workers == 1
    assert "workers" not in dump_config(cfg)


def test_workers_are_read_and_written_back(tmp_path: Path) -> None:
    cfg = parse_config("[enforcer]\nworkers = 4\n", tmp_path / "config.toml", {})
    assert cfg.workers == 4
    assert parse_config(dump_config(cfg), tmp_path / "config.toml", {}).workers == 4


@pytest.mark.parametrize("value", ["0", "-1", "65", "\"2\"", "true", "1.5"])
def test_bad_workers_are_refused_with_the_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="workers must be an integer from 1 to 64") as e:
        parse_config(f"# workers\n[enforcer]\nworkers = {value}\n", tmp_path / "config.toml", {})
    assert e.value.line == 2
