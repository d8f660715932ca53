"""[enforcer] workers: one per core by default ("auto"), read and written back, refused with the line when out of
range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trustfence.agent.config import ConfigError, dump_config, parse_config, worker_count


def test_one_per_core_when_left_out(tmp_path: Path) -> None:
    cfg = parse_config("", tmp_path / "config.toml", {})
    assert cfg.workers == "auto"
    assert worker_count(cfg) == len(os.sched_getaffinity(0))
    assert "workers" not in dump_config(cfg)


@pytest.mark.parametrize("value", ["1", "4", "\"auto\""])
def test_workers_are_read_and_written_back(tmp_path: Path, value: str) -> None:
    cfg = parse_config(f"[enforcer]\nworkers = {value}\n", tmp_path / "config.toml", {})
    again = parse_config(dump_config(cfg), tmp_path / "config.toml", {})
    assert again.workers == cfg.workers == (value.strip('"') if value.startswith('"') else int(value))
    assert worker_count(again) == (int(value) if value.isdigit() else len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("value", ["0", "-1", "65", "\"2\"", "\"all\"", "true", "1.5"])
def test_bad_workers_are_refused_with_the_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match='workers must be "auto" or an integer from 1 to 64') as e:
        parse_config(f"# workers\n[enforcer]\nworkers = {value}\n", tmp_path / "config.toml", {})
    assert e.value.line == 2
