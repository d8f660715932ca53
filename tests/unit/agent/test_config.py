"""config.toml and permissions.toml: defaults, errors naming file:line, env overrides, round trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trustfence.agent.config import (
    Config,
    ConfigError,
    ConnectorConfig,
    atomic_write,
    dump_config,
    dump_permissions,
    load_config,
    load_permissions,
    parse_resolve,
)
from trustfence.connectors import ConnectorSet, build_connector
from trustfence.policy import Permission


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- config.toml


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "absent.toml", env={})
    assert cfg == Config()
    assert (cfg.tag, cfg.proxy_port, cfg.transparent_port, cfg.dns_port) == ("tf", 8080, 8081, 53)
    assert cfg.connectors == ()
    assert dict(cfg.resolve) == {}
    assert cfg.extra_ca is None


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}) == Config()


def test_values_are_read(tmp_path: Path) -> None:
    text = """\
[sandbox]
tag = "ab1"
subnet_pool = "10.9.0.0/24"
ipv6 = true
default_user = "agent"

[enforcer]
proxy_port = 9000
transparent_port = 9001
dns_port = 5353
queue_max = 500

[connectors.gh]
type = "github"

[connectors.internal]
type = "generic"
domains = ["API.Internal.Example", "*.svc.example"]
ports = [9443, 8443, 9443]
"""
    cfg = load_config(write(tmp_path, text), env={})
    assert (cfg.tag, cfg.subnet_pool, cfg.default_user, cfg.ipv6) == ("ab1", "10.9.0.0/24", "agent", True)
    assert (cfg.proxy_port, cfg.transparent_port, cfg.dns_port, cfg.queue_max) == (9000, 9001, 5353, 500)
    assert cfg.connectors == (
        ConnectorConfig("gh", "github", ()),
        ConnectorConfig("internal", "generic", ("api.internal.example", "*.svc.example"), (8443, 9443)),
    )
    assert cfg.open_ports() == {"internal": frozenset({8443, 9443})}
    cs = cfg.connector_set()
    assert cs.for_host("api.github.com").name == "gh"
    assert cs.for_host("x.svc.example").name == "internal"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "[sandbox]\ntag = \n")
    with pytest.raises(ConfigError) as ei:
        load_config(p, env={})
    msg = str(ei.value)
    assert msg.startswith(str(p))
    assert "not valid TOML" in msg
    assert ":2: " in msg


def test_toml_syntax_error_is_file_colon_line(tmp_path: Path) -> None:
    p = write(tmp_path, "[sandbox]\ntag = \n")
    with pytest.raises(ConfigError) as ei:
        load_config(p, env={})
    assert ei.value.line == 2
    assert str(ei.value).startswith(f"{p}:2: ")


BAD_CONFIG: list[tuple[str, str, int, tuple[str, ...]]] = [
    # (id, file text, line of the offending section, words in the message)
    ("tag upper case", '# c\n[sandbox]\ntag = "TF"\n', 2, ("[sandbox]", "tag")),
    ("tag too long", '[enforcer]\nproxy_port = 1\n\n[sandbox]\ntag = "abcdef"\n', 4, ("[sandbox]", "tag")),
    ("tag starts with digit", '[sandbox]\ntag = "1a"\n', 1, ("[sandbox]", "tag")),
    ("tag not a string", '[sandbox]\ntag = 5\n', 1, ("[sandbox]", "tag")),
    ("public subnet", '\n[sandbox]\nsubnet_pool = "8.8.0.0/16"\n', 2, ("[sandbox]", "subnet_pool")),
    ("subnet too small", '[sandbox]\nsubnet_pool = "10.0.0.0/30"\n', 1, ("[sandbox]", "subnet_pool")),
    ("subnet garbage", '[sandbox]\nsubnet_pool = "nope"\n', 1, ("[sandbox]",)),
    ("port zero", '[sandbox]\ntag = "tf"\n\n[enforcer]\nproxy_port = 0\n', 4, ("[enforcer]", "proxy_port")),
    ("port too large", '[enforcer]\ndns_port = 70000\n', 1, ("[enforcer]", "dns_port", "70000")),
    ("port a string", '[enforcer]\ntransparent_port = "8081"\n', 1, ("[enforcer]", "transparent_port")),
    ("port a bool", '[enforcer]\nproxy_port = true\n', 1, ("[enforcer]", "proxy_port")),
    ("ports collide", '[enforcer]\nproxy_port = 9000\ntransparent_port = 9000\n', 1, ("[enforcer]", "differ")),
    ("queue too small", '[enforcer]\nqueue_max = 1\n', 1, ("[enforcer]", "queue_max")),
    ("resolve not an ip", '[upstream.resolve]\n"a.example" = "not-an-ip"\n\n[upstream]\n', 4, ("[upstream]",)),
    ("unknown connector type", '[sandbox]\ntag = "tf"\n\n[connectors.foo]\ntype = "gitlab"\n', 4,
     ("[connectors.foo]", "gitlab", "generic", "github")),
    ("connector type missing", '[connectors.foo]\ndomains = ["a.example"]\n', 1, ("[connectors.foo]", "type")),
    ("generic without domains", '[connectors.gh]\ntype = "github"\n\n[connectors.api]\ntype = "generic"\n', 4,
     ("[connectors.api]", "at least one domain")),
    ("bad domain", '[connectors.api]\ntype = "generic"\ndomains = ["not a host"]\n', 1,
     ("[connectors.api]", "not a host")),
    ("ipv6 not a bool", '[sandbox]\nipv6 = "yes"\n', 1, ("[sandbox]", "ipv6")),
    ("port list of strings", '[connectors.api]\ntype = "generic"\ndomains = ["a.example"]\nports = ["22"]\n', 1,
     ("[connectors.api]", "ports")),
    ("port out of range", '[connectors.gh]\ntype = "github"\nports = [0]\n', 1, ("[connectors.gh]", "ports")),
    ("wildcard in the middle of a domain", '[connectors.api]\ntype = "generic"\ndomains = ["a.*.example"]\n', 1,
     ("[connectors.api]", "a.*.example")),
    ("credential not a bool", '[connectors.gh]\ntype = "github"\ncredential = "yes"\n', 1,
     ("[connectors.gh]", "credential")),
    ("env not names", '[connectors.gh]\ntype = "github"\nenv = ["GH TOKEN"]\n', 1, ("[connectors.gh]", "env")),
    ("env takes a sandbox variable", '[connectors.gh]\ntype = "github"\nenv = ["HTTPS_PROXY", "LD_X"]\n', 1,
     ("[connectors.gh]", "HTTPS_PROXY", "LD_X", "sandbox's own")),
]


@pytest.mark.parametrize(("text", "line", "words"), [b[1:] for b in BAD_CONFIG], ids=[b[0] for b in BAD_CONFIG])
def test_bad_config_names_section_and_line(tmp_path: Path, text: str, line: int, words: tuple[str, ...]) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as ei:
        load_config(p, env={})
    assert ei.value.line == line
    assert ei.value.file == p
    msg = str(ei.value)
    assert msg.startswith(f"{p}:{line}: ")
    for w in words:
        assert w in msg


def test_host_claimed_by_two_connectors(tmp_path: Path) -> None:
    text = ('[connectors.a]\ntype = "generic"\ndomains = ["api.example"]\n\n'
            '[connectors.b]\ntype = "generic"\ndomains = ["api.example"]\n')
    with pytest.raises(ConfigError, match=r"api\.example.*claimed by both a and b"):
        load_config(write(tmp_path, text), env={})


def test_env_overrides_file(tmp_path: Path) -> None:
    ca_file = tmp_path / "file-ca.pem"
    ca_env = tmp_path / "env-ca.pem"
    ca_file.write_text("x")
    ca_env.write_text("y")
    text = f'[upstream]\nextra_ca = "{ca_file}"\n\n[upstream.resolve]\n"a.example" = "10.0.0.1"\n"b.example" = "10.0.0.2:443"\n'
    p = write(tmp_path, text)

    plain = load_config(p, env={})
    assert dict(plain.resolve) == {"a.example": ("10.0.0.1", None), "b.example": ("10.0.0.2", 443)}
    assert plain.extra_ca == str(ca_file)

    env = {"TF_UPSTREAM_RESOLVE": "B.example=10.9.9.9:8443,c.example=10.0.0.3", "TF_UPSTREAM_CA": str(ca_env)}
    cfg = load_config(p, env=env)
    assert dict(cfg.resolve) == {
        "a.example": ("10.0.0.1", None),
        "b.example": ("10.9.9.9", 8443),
        "c.example": ("10.0.0.3", None),
    }
    assert cfg.extra_ca == str(ca_env)


def test_env_applies_without_a_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "absent.toml", env={"TF_UPSTREAM_RESOLVE": "x.example=1.2.3.4:443"})
    assert dict(cfg.resolve) == {"x.example": ("1.2.3.4", 443)}


def test_empty_env_values_are_ignored(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "absent.toml", env={"TF_UPSTREAM_RESOLVE": "", "TF_UPSTREAM_CA": ""})
    assert cfg == Config()


def test_env_ca_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="extra_ca .* is not a readable file"):
        load_config(tmp_path / "absent.toml", env={"TF_UPSTREAM_CA": str(tmp_path / "nope.pem")})


def test_bad_env_resolve_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[TF_UPSTREAM_RESOLVE\]"):
        load_config(tmp_path / "absent.toml", env={"TF_UPSTREAM_RESOLVE": "x.example"})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("a=1.2.3.4:443,b=5.6.7.8", {"a": ("1.2.3.4", 443), "b": ("5.6.7.8", None)}),
        (" A.Example = 1.2.3.4 , ", {"a.example": ("1.2.3.4", None)}),
        ("v6=::1", {"v6": ("::1", None)}),
        ("", {}),
        ("a=1.1.1.1,a=2.2.2.2", {"a": ("2.2.2.2", None)}),
    ],
)
def test_parse_resolve(spec: str, expected: dict[str, tuple[str, int | None]]) -> None:
    assert parse_resolve(spec) == expected


@pytest.mark.parametrize("spec", ["a", "a=example.com", "a=1.2.3.4:http", "a=999.1.1.1"])
def test_parse_resolve_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_resolve(spec)


def test_dump_config_round_trips(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    cfg = Config(
        tag="t2", subnet_pool="10.50.0.0/20", ipv6=True, proxy_port=18080, transparent_port=18081, dns_port=1053,
        default_user="agent", resolve={"ghe.corp": ("10.1.2.3", 8443), "api.example": ("10.1.2.4", None)},
        extra_ca=str(ca), queue_max=2000,
        connectors=(ConnectorConfig("gh", "github"),
                    ConnectorConfig("api", "generic", ("api.example", "*.svc.example"), (8443,),
                                    credential=True, env=("API_TOKEN",))),
    )
    p = tmp_path / "config.toml"
    atomic_write(p, dump_config(cfg))
    assert load_config(p, env={}) == cfg


def test_dump_default_config_round_trips(tmp_path: Path) -> None:
    p = write(tmp_path, dump_config(Config()))
    assert load_config(p, env={}) == Config()


# ---------------------------------------------------------------- permissions.toml

CONNECTORS = ConnectorSet([build_connector("github", "github"), build_connector("api", "generic", ("api.example",))])

GOOD_ROW = '[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.*"\ndecision = "allow"\n'


def perm_file(tmp_path: Path, second: str) -> Path:
    # line 1: comment, line 2: blank, lines 3-7: first table, line 8: blank, line 9: second table
    return write(tmp_path, "# permissions\n\n" + GOOD_ROW + "\n" + second, "permissions.toml")


def row(gateway: str = "Bot", connector: str = "github", action: str = "github.pr.merge",
        decision: str = "deny") -> str:
    return (f'[[permission]]\ngateway = "{gateway}"\nconnector = "{connector}"\n'
            f'action = "{action}"\ndecision = "{decision}"\n')


def test_load_permissions(tmp_path: Path) -> None:
    p = perm_file(tmp_path, row(connector="api", action="http.get", decision="allow"))
    assert load_permissions(p, CONNECTORS) == (
        Permission("Bot", "github", "github.pr.*", "allow"),
        Permission("Bot", "api", "http.get", "allow"),
    )


def test_missing_permissions_file_is_empty(tmp_path: Path) -> None:
    assert load_permissions(tmp_path / "absent.toml", CONNECTORS) == ()


BAD_PERMS: list[tuple[str, str, tuple[str, ...]]] = [
    ("unknown connector", row(connector="gitlab"), ("unknown connector 'gitlab'", "known: api, github")),
    ("unknown action", row(action="github.pr.mrege"), ("unknown action 'github.pr.mrege'", "github.pr.merge")),
    ("action from another connector", row(connector="api", action="github.pr.merge"), ("unknown action",)),
    ("prefix matching nothing", row(action="github.wiki.*"), ("matches no known action",)),
    ("bad pattern", row(action="github.*.merge"), ("not valid",)),
    ("bad decision", row(decision="maybe"), ("decision must be one of allow, deny", "'maybe'")),
    ("bad gateway name", row(gateway=" padded"), ("gateway ' padded'", "space")),
    ("missing field", '[[permission]]\ngateway = "Bot"\nconnector = "github"\n', ("missing action, decision",)),
]


@pytest.mark.parametrize(("second", "words"), [b[1:] for b in BAD_PERMS], ids=[b[0] for b in BAD_PERMS])
def test_bad_permission_names_its_table_line(tmp_path: Path, second: str, words: tuple[str, ...]) -> None:
    p = perm_file(tmp_path, second)
    with pytest.raises(ConfigError) as ei:
        load_permissions(p, CONNECTORS)
    assert ei.value.line == 9
    msg = str(ei.value)
    assert msg.startswith(f"{p}:9: ")
    for w in words:
        assert w in msg


def test_bad_first_permission_names_first_line(tmp_path: Path) -> None:
    p = write(tmp_path, "\n" + row(decision="nope") + "\n" + GOOD_ROW, "permissions.toml")
    with pytest.raises(ConfigError) as ei:
        load_permissions(p, CONNECTORS)
    assert ei.value.line == 2


def test_unknown_connector_with_none_configured(tmp_path: Path) -> None:
    p = write(tmp_path, row(), "permissions.toml")
    with pytest.raises(ConfigError, match="none configured"):
        load_permissions(p, ConnectorSet())


def test_permission_not_an_array(tmp_path: Path) -> None:
    p = write(tmp_path, '# x\npermission = "all"\n', "permissions.toml")
    with pytest.raises(ConfigError) as ei:
        load_permissions(p, CONNECTORS)
    assert ei.value.line == 2
    assert "array of tables" in str(ei.value)


@pytest.mark.parametrize(
    "perms",
    [
        (),
        (Permission("Bot", "github", "*", "deny"),),
        (Permission("Bot", "github", "github.pr.*", "allow"),
         Permission("Bot", "github", "github.pr.merge", "deny"),
         Permission("Other-1", "api", "http.delete", "deny")),
    ],
)
def test_dump_permissions_round_trips(tmp_path: Path, perms: tuple[Permission, ...]) -> None:
    p = tmp_path / "permissions.toml"
    atomic_write(p, dump_permissions(perms))
    assert load_permissions(p, CONNECTORS) == perms


# ---------------------------------------------------------------- atomic_write


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("old content that is longer than the new one\n")
    atomic_write(p, "new\n")
    assert p.read_text() == "new\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["config.toml"]


def test_atomic_write_creates_with_mode(tmp_path: Path) -> None:
    p = tmp_path / "perms.toml"
    atomic_write(p, "x", mode=0o600)
    assert p.read_text() == "x"
    assert p.stat().st_mode & 0o777 == 0o600
    assert [x.name for x in tmp_path.iterdir()] == ["perms.toml"]


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(p, "bad \udcff surrogate")
    assert p.read_text() == "old\n"
    assert not [x for x in tmp_path.iterdir() if re.search(r"\.tmp$", x.name)]


def test_ipv6_resolve_target_round_trips_with_port(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "missing.toml", env={"TF_UPSTREAM_RESOLVE": "api.github.com=[::1]:8443"})
    assert cfg.resolve["api.github.com"] == ("::1", 8443)
    p = tmp_path / "c.toml"
    p.write_text(dump_config(cfg))
    assert load_config(p, env={}).resolve["api.github.com"] == ("::1", 8443)


def test_resolve_port_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="1-65535"):
        parse_resolve("a=1.2.3.4:99999")


def test_dashboard_listen_is_read_and_written_back(tmp_path: Path) -> None:
    from trustfence.agent.config import DashboardConfig, dump_config, parse_config

    cfg = parse_config('[dashboard]\nlisten = "127.0.0.1:3999"\n', tmp_path / "config.toml")
    assert cfg.dashboard == DashboardConfig(True, "127.0.0.1", 3999)
    assert parse_config(dump_config(cfg), tmp_path / "config.toml").dashboard == cfg.dashboard
    assert parse_config("", tmp_path / "config.toml").dashboard == DashboardConfig(True, "127.0.0.1", 3000)


@pytest.mark.parametrize(("body", "why"), [
    ('listen = "0.0.0.0:3000"', "loopback"), ('listen = "127.0.0.1"', "ADDRESS:PORT"),
    ('listen = "127.0.0.1:70000"', "ADDRESS:PORT"), ('enabled = "yes"', "true or false"), ("port = 1", "unknown"),
    ('org_name = "a\\nb"', "one line"), ("org_name = 3", "org_name"),
])
def test_a_bad_dashboard_setting_names_the_line(tmp_path: Path, body: str, why: str) -> None:
    from trustfence.agent.config import parse_config

    with pytest.raises(ConfigError) as ei:
        parse_config(f'[sandbox]\ntag = "tf"\n\n[dashboard]\n{body}\n', tmp_path / "config.toml")
    assert f"config.toml:4: [dashboard]" in str(ei.value) and why in str(ei.value)


def test_org_name_and_the_slack_signing_secret_are_read_and_written_back(tmp_path: Path) -> None:
    from trustfence.agent.config import dump_config, parse_config

    text = ('[approvals]\nnotify_url = "https://hooks.slack.com/services/T/B/x"\n'
            'slack_signing_secret = "8f742231b10e8888abcd99aa"\n\n[dashboard]\norg_name = "Acme payments"\n')
    cfg = parse_config(text, tmp_path / "config.toml")
    assert cfg.dashboard.org_name == "Acme payments" and cfg.approvals.slack_signing_secret == "8f742231b10e8888abcd99aa"
    again = parse_config(dump_config(cfg), tmp_path / "config.toml")
    assert (again.dashboard, again.approvals) == (cfg.dashboard, cfg.approvals)


def test_a_malformed_signing_secret_is_refused_without_repeating_it(tmp_path: Path) -> None:
    from trustfence.agent.config import parse_config

    with pytest.raises(ConfigError) as ei:
        parse_config('[approvals]\nslack_signing_secret = "short-and-$ecret"\n', tmp_path / "config.toml")
    assert "config.toml:1: [approvals] slack_signing_secret" in str(ei.value)
    assert "short-and-$ecret" not in str(ei.value)


def test_a_malformed_notify_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    from trustfence.agent.config import parse_config

    url = "http://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"  # http: refused, and its path is a secret
    with pytest.raises(ConfigError) as ei:
        parse_config(f'[approvals]\nnotify_url = "{url}"\n', tmp_path / "config.toml")
    assert "notify_url must be an https:// URL" in str(ei.value) and "XXXXsecretXXXX" not in str(ei.value)
