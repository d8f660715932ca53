"""Platform templates: every shipped one loads and plans; plans only add; bad input is refused with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from trustfence.agent.config import Config, ConfigError, ConnectorConfig, GatewayConfig
from trustfence.agent.platforms import TemplateError, known_platforms, load_template, parse_template, plan
from trustfence.policy import Permission

ROOT = Path(__file__).resolve().parents[3]
TF = [sys.executable, "-m", "trustfence.agent.entry"]


def test_the_documented_platforms_are_shipped() -> None:
    assert set(known_platforms()) >= {"langchain", "crewai", "n8n", "claude-code", "openai-agents", "mcp-server"}


@pytest.mark.parametrize("platform", known_platforms())
def test_every_template_loads_and_plans_each_part_on_an_empty_host(platform: str) -> None:
    t = load_template(platform)
    assert t.level == "monitor" and t.description and t.connectors and t.grants
    steps = plan(t, t.gateway, Config(), ()).steps
    ops = [s.op for s in steps]
    assert ops.count("connector.add") == len(t.connectors)
    assert ops.count("permissions.preset") == len(t.grants)
    assert ops.count("permissions.set") == sum(len(g.allow) for g in t.grants)
    assert steps[-1].args == {"name": t.gateway, "level": "monitor"}


def test_a_rollout_past_monitor_and_own_permissions_are_kept() -> None:
    t = load_template("openai-agents")
    cfg = Config(connectors=(ConnectorConfig("openai", "openai", env=("OPENAI_API_KEY",)),),
                 gateways={"Ops": GatewayConfig(level="full_enforce")})
    own = (Permission("Ops", "openai", "*", "deny"),)
    p = plan(t, "Ops", cfg, own)
    assert p.steps == ()
    assert any("keeps level full_enforce" in k for k in p.kept)
    assert any("keeps its own 1 permission(s)" in k for k in p.kept)


def test_an_existing_connector_gains_only_missing_variables() -> None:
    t = load_template("mcp-server")
    cfg = Config(connectors=(ConnectorConfig("github", "github", ports=(8443,), credential=True),))
    add = [s for s in plan(t, "M", cfg, ()).steps if s.op == "connector.add" and s.args["name"] == "github"]
    assert add[0].args["env"] == ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PERSONAL_ACCESS_TOKEN"]
    assert add[0].args["ports"] == [8443]


def test_a_connector_of_another_type_or_a_host_claimed_twice_is_refused() -> None:
    t = load_template("langchain")
    with pytest.raises(TemplateError, match="exists with type generic"):
        plan(t, "L", Config(connectors=(ConnectorConfig("openai", "generic", ("x.example",)),)), ())
    clash = Config(connectors=(ConnectorConfig("search", "generic", ("api.tavily.com",)),))
    with pytest.raises(TemplateError, match="api.tavily.com"):
        plan(t, "L", clash, ())


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda s: s.replace('level = "monitor"', 'level = "loud"'), "level must be one of"),
    (lambda s: s.replace('preset = "read-only"', 'preset = "everything"', 1), "preset must be one of"),
    (lambda s: s.replace('"openai.chat.create"', '"openai.nope"'), "openai.nope"),
    (lambda s: s.replace('type = "openai"', 'type = "openia"'), "type must be one of"),
])
def test_a_bad_template_names_file_and_reason(edit: object, reason: str) -> None:
    path = ROOT / "agent" / "templates" / "openai-agents.toml"
    text = edit(path.read_text())  # type: ignore[operator]
    with pytest.raises(ConfigError, match=reason) as e:
        parse_template(text, path, "openai-agents")
    assert str(e.value).startswith(str(path))


def test_templates_are_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "templates/*.toml" in data["trustfence.agent"]


def _tf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TF, *args], env={**os.environ, "TF_HOME": str(home)}, capture_output=True, text=True,
                          timeout=60)


def test_unknown_platform_lists_the_known_ones_exit_2_nothing_written(tmp_path: Path) -> None:
    home = tmp_path / "state"
    r = _tf(home, "init", "--platform", "autogpt")
    assert r.returncode == 2
    assert "unknown platform 'autogpt'; known: " + ", ".join(known_platforms()) in r.stderr
    assert not home.exists()


def test_dry_run_shows_the_changes_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "state"
    home.mkdir()
    config = '[connectors.openai]\ntype = "openai"\nenv = ["LLM_KEY"]\n'
    (home / "config.toml").write_text(config)
    before = sorted(p.name for p in home.iterdir())
    r = _tf(home, "init", "--platform", "crewai", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would: extend connector openai (openai: api.openai.com; placeholder in LLM_KEY, OPENAI_API_KEY)" in r.stdout and "would: add connector serper" in r.stdout
    assert "would: set gateway CrewAI to level monitor" in r.stdout and "nothing written" in r.stdout
    assert sorted(p.name for p in home.iterdir()) == before
    assert (home / "config.toml").read_text() == config


def test_version_is_pyprojects() -> None:
    want = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    r = subprocess.run([*TF, "--version"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, f"tf {want}\n")
