"""The agent's environment as ``tf run`` builds it: nothing of the caller's that routes around the sandbox or
carries a real credential, the daemon's settings and placeholders on top."""

from __future__ import annotations

from trustfence.agent.runner import AgentUser, agent_env
from trustfence.vault import STRIP_NAMES, dummy_env

USER = AgentUser(1000, 1000, "dev", "/home/dev")


def test_real_credentials_of_the_caller_are_dropped_and_placeholders_set() -> None:
    caller = {"PATH": "/usr/bin", "GITHUB_TOKEN": "ghp_real", "SLACK_BOT_TOKEN": "xoxb-real",
              "TF_VAULT_KEY": "00" * 32, "LANG": "C.UTF-8", "HTTPS_PROXY": "http://elsewhere:1"}
    daemon = {"HTTPS_PROXY": "http://10.0.0.1:8080", "TF_SANDBOX_HOME": "/x", **dummy_env(["github"])}
    env = agent_env(caller, daemon, USER, STRIP_NAMES)
    assert env["GITHUB_TOKEN"] == daemon["GITHUB_TOKEN"] != "ghp_real"
    assert "SLACK_BOT_TOKEN" not in env  # no slack connector: no placeholder, and never the real value
    assert "TF_VAULT_KEY" not in env and "TF_SANDBOX_HOME" not in env
    assert env["HTTPS_PROXY"] == "http://10.0.0.1:8080"
    assert env["PATH"] == "/usr/bin" and env["LANG"] == "C.UTF-8"
    assert env["HOME"] == "/home/dev" and env["USER"] == env["LOGNAME"] == "dev"


def test_no_real_value_survives_whatever_its_name() -> None:
    caller = {name: f"real-{name}" for name in STRIP_NAMES}
    env = agent_env(caller, {"TF_SANDBOX_HOME": "/x"}, USER, STRIP_NAMES)
    assert not any(v.startswith("real-") for v in env.values())


def test_agent_argv_covers_carried_ca_bundles_before_dropping_privileges() -> None:
    from trustfence.agent.runner import agent_argv

    plain = agent_argv("tf-1", USER, ["python3", "agent.py"])
    assert plain[:4] == ["ip", "netns", "exec", "tf-1"] and plain[4] == "setpriv"
    covered = agent_argv("tf-1", USER, ["python3", "agent.py"], ["/a/cacert.pem", "/b/ca.crt"], "/tf/bundle.pem")
    i = covered.index("setpriv")
    assert covered[4:7] == ["/bin/sh", "-c", covered[6]] and "mount --bind" in covered[6]
    assert covered[7:i] == ["sh", "/tf/bundle.pem", "/a/cacert.pem", "/b/ca.crt", "--"]
    assert covered[i:] == plain[4:]  # the same privilege drop, after the mounts
