"""The filesystem policy in config.toml: [sandbox] defaults, [gateways.NAME] overrides, refused at load with
file:line and the reason, round-tripped by dump_config."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.agent.config import ConfigError, dump_config, parse_config
from trustfence.agent.sandbox.fspolicy import DEFAULT_HIDDEN


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for d in ("state", "srv/out", "srv/secret", "srv/out/keys"):
        (tmp_path / d).mkdir(parents=True)
    return tmp_path


def parse(tree: Path, text: str) -> object:
    return parse_config(text.replace("@", str(tree)), tree / "state" / "config.toml", env={})


def test_defaults_hide_the_usual_credentials_and_let_the_working_directory_be_written(tree: Path) -> None:
    cfg = parse(tree, "")
    assert cfg.fs_policy("Bot") == {"writable": [], "hidden": list(DEFAULT_HIDDEN), "writable_cwd": True,  # type: ignore[attr-defined]
                                    "where": "[sandbox]"}
    assert {"~/.ssh", "~/.aws", "~/.config/gcloud", "~/.docker", "~/.kube", "~/.netrc"} <= set(DEFAULT_HIDDEN)


def test_a_gateway_replaces_writable_and_can_only_hide_more(tree: Path) -> None:
    cfg = parse(tree, '[sandbox]\nwritable = ["@/srv/out"]\nhidden = ["~/.ssh"]\n\n'
                      '[gateways.Low]\nwritable = []\nhidden = ["@/srv/secret"]\nwritable_cwd = false\n')
    low = cfg.fs_policy("Low")  # type: ignore[attr-defined]
    assert low == {"writable": [], "hidden": ["~/.ssh", f"{tree}/srv/secret"], "writable_cwd": False,
                   "where": "[gateways.Low]"}
    assert cfg.fs_policy("Other")["writable"] == [f"{tree}/srv/out"]  # type: ignore[attr-defined]
    again = parse_config(dump_config(cfg), tree / "state" / "config.toml", env={})  # type: ignore[arg-type]
    assert again == cfg


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[sandbox]\ntag = "tf"\nhidden = ["secrets"]\n', 3, "[sandbox] hidden: 'secrets' is a relative path"),
    ('[sandbox]\nwritable = ["./out"]\n', 2, "[sandbox] writable: './out' is a relative path"),
    ('[sandbox]\nhidden = ["@/nowhere"]\n', 2, "/nowhere does not exist"),
    ('[sandbox]\nhidden = ["/usr"]\n', 2, "would hide the agent's own command (/usr/local/sbin is under it)"),
    ('[sandbox]\nhidden = ["/usr/bin"]\n', 2, "would hide the agent's own command (/usr/bin is under it)"),
    ('[sandbox]\nhidden = ["/"]\n', 2, "would hide the agent's own command"),
    ('[sandbox]\nhidden = ["/tmp"]\n', 2, "would cover the sandbox's own /tmp"),
    ('[sandbox]\nwritable = ["/"]\n', 2, "would make everything writable"),
    ('[sandbox]\nwritable = ["@/state"]\n', 2, "holds TrustFence's state directory"),
    ('[sandbox]\nwritable = ["@"]\n', 2, "holds TrustFence's state directory"),
    ('[sandbox]\nhidden = ["@/srv"]\nwritable = ["@/srv/out"]\n', 3, "is under hidden path"),
    ('[sandbox]\nwritable_cwd = "yes"\n', 2, "writable_cwd must be true or false"),
    ('[sandbox]\nhidden = "~/.ssh"\n', 2, "hidden must be a list of paths"),
    ('[gateways.Bot]\nlevel = "monitor"\nhidden = ["/etc"]\n', 3, "[gateways.Bot] hidden: /etc would hide"),
    ('[sandbox]\nhidden = ["@/srv/secret"]\n\n[gateways.Bot]\nwritable = ["@/srv/secret"]\n', 5,
     "[gateways.Bot] writable: {tree}/srv/secret is under hidden path"),
])
def test_bad_paths_are_refused_with_file_line_and_reason(tree: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(tree, text)
    assert e.value.line == line and str(e.value.file).endswith("state/config.toml")
    assert message.replace("{tree}", str(tree)) in e.value.reason, e.value.reason
