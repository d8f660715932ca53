"""Every setting a user can put in config.toml is documented in the README."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from trustfence.agent.config import Config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", [f.name for f in fields(Config) if f.name != "connectors"])
def test_config_setting_is_documented(name: str) -> None:
    assert f"\n{name} = " in README or f"\n{name} =" in README, f"README does not document the setting {name!r}"
