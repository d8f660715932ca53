"""Every setting a user can put in config.toml is documented in the README."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from trustfence.agent.config import (LIMIT_KEYS, ActionLimit, ApprovalsConfig, Config, GatewayConfig,
                                     RateLimitConfig)
from trustfence.agent.sandbox.fspolicy import FsPolicy

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()

TABLES = {"connectors", "gateways", "rate_limit", "approvals", "dashboard"}  # settings that are tables of their own: [name...]
GROUPED = {"fs", "limits"}  # fields whose settings are keys of the table they sit in (FsPolicy's, LIMIT_KEYS)


def _documented(name: str, table: str = "") -> bool:
    return (f"\n{name} = " in README or f"\n{name} =" in README
            or f"\n[{table}{name}" in README or f"\n[[{table}{name}" in README)


@pytest.mark.parametrize("name", [*(f.name for f in fields(Config) if f.name not in TABLES | GROUPED),
                                  *(f.name for f in fields(FsPolicy)), *LIMIT_KEYS])
def test_config_setting_is_documented(name: str) -> None:
    assert _documented(name), f"README does not document the setting {name!r}"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_config_table_is_documented(name: str) -> None:
    assert f"\n[{name}" in README, f"README does not document the table [{name}]"


@pytest.mark.parametrize(("table", "name"), [
    *(("rate_limit.", f.name) for f in fields(RateLimitConfig)),
    *(("rate_limit.actions.", f.name) for f in fields(ActionLimit)),
    *(("gateways.", f.name) for f in fields(GatewayConfig) if f.name not in GROUPED),
    *(("approvals.", f.name) for f in fields(ApprovalsConfig)),
    ("dashboard.", "enabled"), ("dashboard.", "listen"),  # DashboardConfig's host and port come from listen
])
def test_table_setting_is_documented(table: str, name: str) -> None:
    assert _documented(name, table), f"README does not document the setting {name!r} of [{table.rstrip('.')}]"


def test_systemd_unit_runs_the_daemon_and_names_the_vault_credential() -> None:
    from trustfence.vault.keys import CREDENTIAL_NAME

    unit = (Path(__file__).resolve().parents[2] / "systemd" / "trustfence.service").read_text()
    assert "\nExecStart=/usr/bin/tf daemon\n" in unit
    assert f"LoadCredentialEncrypted={CREDENTIAL_NAME}:" in unit
    assert f"credential named `{CREDENTIAL_NAME}`" in README
