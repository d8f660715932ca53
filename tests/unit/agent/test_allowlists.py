"""Allow-list files: names normalised by the connector's rule, comments, errors with file and line, config."""

from __future__ import annotations

from pathlib import Path

import pytest
from trustfence.agent import allowlists
from trustfence.agent.config import ConfigError, ConnectorConfig, dump_config, load_config, parse_config
from trustfence.connectors import build_connector
from trustfence.connectors.packages import PackageConnector


def conn(type_name: str, name: str = "") -> PackageConnector:
    c = build_connector(name or type_name, type_name)
    assert isinstance(c, PackageConnector)
    return c


def test_names_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "# vetted by security, 2026-11\nrequests\n\nTyping_Extensions   # normalised as PyPI does\n  zope.interface\n"
    al = allowlists.parse(text, tmp_path / "pypi.txt", conn("pypi"))
    assert al.names == {"requests", "typing-extensions", "zope-interface"}
    assert al.connector == "pypi" and al.source == str(tmp_path / "pypi.txt")
    assert al.actions == {"pypi.package.download"}


@pytest.mark.parametrize(("type_name", "names"), [
    ("npm", ["lodash", "@babel/core", "JSONStream"]),
    ("crates", ["serde", "Serde_JSON"]),
    ("gomod", ["github.com/BurntSushi/toml", "golang.org/x/mod"]),
])
def test_each_registry_checks_its_own_names(tmp_path: Path, type_name: str, names: list[str]) -> None:
    al = allowlists.parse("\n".join(names), tmp_path / "l.txt", conn(type_name))
    c = conn(type_name)
    assert al.names == {c.normalise_name(n) for n in names}


@pytest.mark.parametrize(("type_name", "text", "line"), [
    ("pypi", "requests\n# fine\nnot a name\n", 3),
    ("pypi", "requests==2.31.0\n", 1),
    ("npm", "lodash\n@scope\n", 2),
    ("crates", "serde\n\n9lives\n", 3),
    ("gomod", "golang.org/x/mod\nnodot/x\n", 2),
])
def test_a_bad_name_is_refused_with_file_and_line(tmp_path: Path, type_name: str, text: str, line: int) -> None:
    path = tmp_path / "list.txt"
    with pytest.raises(ConfigError) as e:
        allowlists.parse(text, path, conn(type_name))
    assert e.value.line == line and str(e.value).startswith(f"{path}:{line}: ")


def config(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f'[connectors.pypi]\ntype = "pypi"\n{extra}\n')
    return p


def test_load_reads_every_configured_list(tmp_path: Path) -> None:
    (tmp_path / "pypi.txt").write_text("requests\n")
    cfg = load_config(config(tmp_path, f'allow_list = "{tmp_path}/pypi.txt"'), env={})
    lists = allowlists.load(cfg, cfg.connector_set())
    assert set(lists) == {"pypi"} and lists["pypi"].names == {"requests"}
    assert allowlists.describe(lists) == {"pypi": 1}


def test_load_refuses_a_missing_or_binary_file(tmp_path: Path) -> None:
    cfg = load_config(config(tmp_path, f'allow_list = "{tmp_path}/absent.txt"'), env={})
    with pytest.raises(ConfigError, match="absent.txt: allow list cannot be read"):
        allowlists.load(cfg, cfg.connector_set())
    (tmp_path / "absent.txt").write_bytes(b"requests\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"absent.txt:2: allow list is not UTF-8"):
        allowlists.load(cfg, cfg.connector_set())


def test_stamp_changes_with_an_edit_and_a_removal(tmp_path: Path) -> None:
    f = tmp_path / "pypi.txt"
    f.write_text("requests\n")
    cfg = load_config(config(tmp_path, f'allow_list = "{f}"'), env={})
    before = allowlists.stamp(cfg)
    f.write_text("requests\nflask\n")
    edited = allowlists.stamp(cfg)
    f.unlink()
    assert len({before, edited, allowlists.stamp(cfg)}) == 3


@pytest.mark.parametrize(("extra", "words"), [
    ('allow_list = "relative.txt"', "absolute path"),
    ("allow_list = 3", "absolute path"),
])
def test_config_refuses_a_bad_allow_list_setting(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as e:
        load_config(config(tmp_path, extra), env={})
    assert e.value.line == 1


def test_allow_list_is_for_package_registries_only(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text('[connectors.gh]\ntype = "github"\nallow_list = "/etc/x.txt"\n')
    with pytest.raises(ConfigError, match="package registries"):
        load_config(p, env={})


def test_mirror_and_allow_list_round_trip(tmp_path: Path) -> None:
    text = ('[connectors.corp]\ntype = "npm"\ndomains = ["npm.corp.example"]\n'
            'base_path = "/artifactory/api/npm/npm-remote"\nallow_list = "/etc/trustfence/npm-allow.txt"\n')
    cfg = parse_config(text, tmp_path / "config.toml", env={})
    assert cfg.connectors[0] == ConnectorConfig("corp", "npm", ("npm.corp.example",),
                                                base_path="/artifactory/api/npm/npm-remote",
                                                allow_list="/etc/trustfence/npm-allow.txt")
    assert parse_config(dump_config(cfg), tmp_path / "config.toml", env={}) == cfg
    built = cfg.connectors[0].build()
    assert isinstance(built, PackageConnector) and built.base_path == "/artifactory/api/npm/npm-remote"


def test_base_path_still_refused_for_types_without_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_path is for github"):
        parse_config('[connectors.s]\ntype = "stripe"\nbase_path = "/x"\n', tmp_path / "c.toml", env={})
