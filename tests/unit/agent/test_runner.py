"""The agent's environment as ``tf run`` builds it: nothing of the caller's that routes around the sandbox or
carries a real credential, the daemon's settings and placeholders on top."""

from __future__ import annotations

import pytest

from trustfence.agent.runner import AgentUser, RunError, agent_env, launch
from trustfence.agent.sandbox.view import PRIVATE_HOME, PRIVATE_TMP
from trustfence.vault import STRIP_NAMES, dummy_env

USER = AgentUser(1000, 1000, "dev", "/home/dev")


def test_real_credentials_of_the_caller_are_dropped_and_placeholders_set() -> None:
    caller = {"PATH": "/usr/bin", "GITHUB_TOKEN": "ghp_real", "SLACK_BOT_TOKEN": "xoxb-real",
              "TF_VAULT_KEY": "00" * 32, "LANG": "C.UTF-8", "HTTPS_PROXY": "http://elsewhere:1"}
    daemon = {"HTTPS_PROXY": "http://10.0.0.1:8080", **dummy_env(["github"])}
    env = agent_env(caller, daemon, USER, STRIP_NAMES)
    assert env["GITHUB_TOKEN"] == daemon["GITHUB_TOKEN"] != "ghp_real"
    assert "SLACK_BOT_TOKEN" not in env  # no slack connector: no placeholder, and never the real value
    assert "TF_VAULT_KEY" not in env
    assert env["HTTPS_PROXY"] == "http://10.0.0.1:8080"
    assert env["PATH"] == "/usr/bin" and env["LANG"] == "C.UTF-8"
    assert env["HOME"] == "/home/dev" and env["USER"] == env["LOGNAME"] == "dev"


def test_no_real_value_survives_whatever_its_name() -> None:
    caller = {name: f"real-{name}" for name in STRIP_NAMES}
    env = agent_env(caller, {}, USER, STRIP_NAMES)
    assert not any(v.startswith("real-") for v in env.values())


def test_an_agent_without_an_account_gets_the_private_home() -> None:
    env = agent_env({"HOME": "/root"}, {}, AgentUser(61200, 61200, "tf-61200", None), STRIP_NAMES)
    assert env["HOME"] == PRIVATE_HOME and env["USER"] == "tf-61200"


def reply(**fs: object) -> dict[str, object]:
    policy = {"writable": [], "hidden": ["~/.ssh", "/srv/secret"], "writable_cwd": True, "where": "[sandbox]"}
    return {"netns": "tf-1", "ca_bundle": "/state/public/ca-bundle.pem", "ca_cert": "/state/public/ca.pem",
            "state": "/state", "ca_overlays": ["/etc/ssl/certs/ca-certificates.crt"], "fs": {**policy, **fs}}


def test_launch_hides_the_state_directory_and_each_home_s_credentials() -> None:
    sandbox, note = launch(reply(), USER, ["sh"], "/work/project", {"PATH": "/usr/bin:/bin"}, "/root")
    assert sandbox["hide"] == ["/state", "/home/dev/.ssh", "/root/.ssh", "/srv/secret"]
    assert sandbox["writable"] == [*PRIVATE_TMP, "/work/project"] and note == ""
    assert sandbox["home"] is None and (sandbox["uid"], sandbox["gid"]) == (1000, 1000)
    assert sandbox["etc"] == "/etc/netns/tf-1" and sandbox["cwd"] == "/work/project"


def test_launch_keeps_a_working_directory_that_holds_a_home_read_only() -> None:
    for cwd in ("/home/dev", "/home", "/"):
        sandbox, note = launch(reply(), USER, ["sh"], cwd, {"PATH": "/usr/bin"}, "/root")
        assert cwd not in sandbox["writable"] and "stays read-only" in note
    sandbox, _ = launch(reply(writable_cwd=False, writable=["~/out", "/srv/data"]), USER, ["sh"], "/work",
                        {"PATH": "/usr/bin"}, "/root")
    assert sandbox["writable"] == [*PRIVATE_TMP, "/home/dev/out", "/srv/data"]


@pytest.mark.parametrize(("cmd", "cwd", "cover"), [
    (["/srv/secret/agent"], "/work", "/srv/secret"),
    (["./agent"], "/srv/secret/bin", "/srv/secret"),
    (["python3", "x.py"], "/state/public", "/state"),
    (["~/.ssh/run"], "/work", None),  # not expanded by a shell: a plain relative name, not hidden
])
def test_launch_refuses_a_command_or_working_directory_the_policy_hides(cmd: list[str], cwd: str,
                                                                         cover: str | None) -> None:
    if cover is None:
        launch(reply(), USER, cmd, cwd, {"PATH": "/usr/bin"}, "/root")
        return
    with pytest.raises(RunError, match=f"under {cover}"):
        launch(reply(), USER, cmd, cwd, {"PATH": "/usr/bin"}, "/root")
