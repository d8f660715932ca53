"""``tf init --platform``: each template, applied through a running daemon, lets an agent of that platform's
shape work at once: its variables hold placeholders, its calls reach the (fake) upstream, and the traffic log
names each call with the template's decision, at the monitor level (forwarded, ``would_deny`` recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.system.conftest import running_host
from trustfence.vault.dummy import placeholder

pytestmark = pytest.mark.system

AGENT = ["/usr/bin/python3", str(Path(__file__).with_name("platform_agent.py"))]

# platform -> [(method, url, header, value, connector type, expected action, expected decision)]
SHAPES: dict[str, list[tuple[str, str, str, str, str, str, str]]] = {
    "langchain": [
        ("POST", "https://api.openai.com/v1/chat/completions", "Authorization", "Bearer {OPENAI_API_KEY}",
         "openai", "openai.chat.create", "allowed"),
        ("POST", "https://api.tavily.com/search", "Authorization", "Bearer {TAVILY_API_KEY}",
         "generic", "http.post", "allowed"),
        ("DELETE", "https://api.openai.com/v1/files/file-1", "Authorization", "Bearer {OPENAI_API_KEY}",
         "openai", "openai.file.delete", "would_deny"),
    ],
    "crewai": [
        ("POST", "https://api.openai.com/v1/chat/completions", "Authorization", "Bearer {OPENAI_API_KEY}",
         "openai", "openai.chat.create", "allowed"),
        ("POST", "https://google.serper.dev/search", "X-API-KEY", "{SERPER_API_KEY}",
         "generic", "http.post", "allowed"),
        ("POST", "https://api.anthropic.com/v1/messages", "x-api-key", "{ANTHROPIC_API_KEY}",
         "anthropic", "anthropic.message.create", "allowed"),
    ],
    "n8n": [
        ("POST", "https://slack.com/api/chat.postMessage", "Authorization", "Bearer {SLACK_BOT_TOKEN}",
         "slack", "slack.message.send", "allowed"),
        ("POST", "https://api.github.com/repos/acme/widgets/issues", "Authorization", "token {GITHUB_TOKEN}",
         "github", "github.issue.create", "allowed"),
        ("DELETE", "https://api.github.com/repos/acme/widgets", "Authorization", "token {GITHUB_TOKEN}",
         "github", "github.repo.delete", "would_deny"),
    ],
    "claude-code": [
        ("POST", "https://api.anthropic.com/v1/messages", "x-api-key", "{ANTHROPIC_API_KEY}",
         "anthropic", "anthropic.message.create", "allowed"),
        ("GET", "https://api.github.com/repos/acme/widgets", "Authorization", "Bearer {GH_TOKEN}",
         "github", "github.repo.read", "allowed"),
        ("GET", "https://github.com/acme/widgets.git/info/refs?service=git-upload-pack", "Git-Protocol",
         "version=2", "", "github.git.fetch", "allowed"),
        ("POST", "https://github.com/acme/widgets.git/git-upload-pack", "Git-Protocol", "version=2",
         "", "github.git.fetch", "allowed"),
        ("GET", "https://registry.npmjs.org/left-pad", "Accept", "application/json", "", "npm.package.metadata",
         "allowed"),
        ("GET", "https://pypi.org/simple/requests/", "Accept", "text/html", "", "pypi.package.metadata", "allowed"),
        ("PUT", "https://registry.npmjs.org/left-pad", "Accept", "application/json", "", "npm.package.publish",
         "would_deny"),
    ],
    "openai-agents": [
        ("POST", "https://api.openai.com/v1/responses", "Authorization", "Bearer {OPENAI_API_KEY}",
         "openai", "openai.response.create", "allowed"),
        ("POST", "https://api.openai.com/v1/traces/ingest", "Authorization", "Bearer {OPENAI_API_KEY}",
         "openai", "openai.unknown.post", "would_deny"),
    ],
    "mcp-server": [
        ("GET", "https://api.github.com/repos/acme/widgets/issues", "Authorization",
         "Bearer {GITHUB_PERSONAL_ACCESS_TOKEN}", "github", "github.issue.list", "allowed"),
        ("POST", "https://slack.com/api/chat.postMessage", "Authorization", "Bearer {SLACK_BOT_TOKEN}",
         "slack", "slack.message.send", "would_deny"),
        ("GET", "https://registry.npmjs.org/mcp-server-kubernetes", "Accept", "application/json",
         "", "http.get", "allowed"),
    ],
}
GATEWAYS = {"langchain": "LangChain", "crewai": "CrewAI", "n8n": "n8n", "claude-code": "ClaudeCode",
            "openai-agents": "OpenAIAgents", "mcp-server": "MCPServer"}


def _host(url: str) -> str:
    return url.split("/")[2]


@pytest.mark.parametrize("platform", sorted(SHAPES))
def test_template_lets_an_agent_of_its_shape_work_in_monitor(platform: str) -> None:
    calls = SHAPES[platform]
    hosts = tuple(sorted({_host(c[1]) for c in calls}))
    with running_host(hosts=hosts, connectors="", permissions="") as h:
        first = h.tf("init", "--platform", platform)
        assert first.returncode == 0, first.stderr
        assert "done: add connector" in first.stdout and "level monitor" in first.stdout, first.stdout
        config, perms = (h.home / "config.toml").read_bytes(), (h.home / "permissions.toml").read_bytes()
        again = h.tf("init", "--platform", platform)
        assert again.returncode == 0 and again.stdout.strip().endswith("nothing to change"), again.stdout
        assert (h.home / "config.toml").read_bytes() == config
        assert (h.home / "permissions.toml").read_bytes() == perms

        gateway = GATEWAYS[platform]
        spec = json.dumps([c[:4] for c in calls])
        r = h.run(*AGENT, spec, name=gateway)
        assert r.returncode == 0, r.stderr + r.stdout

        received = h.outside.received()
        assert [(e["method"], e["host"], e["path"]) for e in received] == [
            (m, _host(u), "/" + u.split("/", 3)[3]) for m, u, *_ in calls]
        for (method, url, header, value, ctype, _, _), e in zip(calls, received, strict=True):
            if ctype:  # the placeholder the template's variable holds, as the agent read it
                assert e["headers"][header.lower()] == value.format_map(_Placeholder(placeholder(ctype)))
        rows = [r for r in h.logs() if r["gateway"] == gateway and r["method"] != "CONNECT"]
        assert [(r["action"], r["decision"]) for r in rows] == [(c[5], c[6]) for c in calls]

        audit = h.tf("audit", "--json", "--limit", "200")
        assert audit.returncode == 0, audit.stderr
        assert any("permissions preset read-only" in line for line in audit.stdout.splitlines())


class _Placeholder(dict[str, str]):
    """Every variable of a value template stands for the same placeholder."""

    def __init__(self, value: str) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, key: str) -> str:
        return self.value
