"""[store] retention_days: parsed, written back, and refused with its line when it is not a day count."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.agent.config import ConfigError, dump_config, parse_config


def test_retention_is_read_and_written_back(tmp_path: Path) -> None:
    cfg = parse_config("[store]\nretention_days = 30\n", tmp_path / "config.toml", {})
    assert cfg.retention_days == 30
    assert parse_config(dump_config(cfg), tmp_path / "config.toml", {}).retention_days == 30
    assert parse_config("", tmp_path / "config.toml", {}).retention_days == 0


@pytest.mark.parametrize(("text", "why"), [("[store]\nretention_days = -1\n", "from 0 to 36500"),
                                           ("[store]\nretention_days = \"7d\"\n", "integer"),
                                           ("[store]\nkeep = 7\n", r"\[store\] unknown setting\(s\) keep")])
def test_bad_retention_is_refused(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_config(text, tmp_path / "config.toml", {})
