"""Real SDKs, unmodified, inside ``tf run``: the catalogue must name what real agents send.

Each official SDK (openai, anthropic, stripe, slack_sdk, PyGithub, mcp) runs in a sandbox as the
unprivileged agent, on Debian's python3, holding only placeholder keys, against fake upstreams (real HTTPS with
a test CA; MCP is the SDK's own server) in the test's outside namespace. Every call must succeed and the
traffic log must show, in order, the action each request was classified as.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
SDKS = ROOT / "build" / "agent-sdks"
AGENT = Path(__file__).with_name("sdk_agent.py")
MCP_SERVER = Path(__file__).with_name("mcp_server.py")
MCP_HOST = "mcp.tools.example"
API_HOSTS = ("api.github.com", "api.openai.com", "api.anthropic.com", "api.stripe.com", "slack.com")
TYPES = ("github", "openai", "anthropic", "stripe", "slack")
CONNECTORS = "".join(f'[connectors.{t}]\ntype = "{t}"\n\n' for t in TYPES) + (
    f'[connectors.tools]\ntype = "mcp"\nurls = ["https://{MCP_HOST}/mcp"]\n')
PERMISSIONS = "".join(f'[[permission]]\ngateway = "Sdk"\nconnector = "{c}"\naction = "*"\ndecision = "allow"\n\n'
                      for c in (*TYPES, "tools"))

EXPECTED: dict[str, list[str]] = {
    "openai": ["openai.model.list", "openai.chat.create", "openai.file.upload", "openai.file.delete",
               "openai.model.read", "openai.batch.cancel"],
    "anthropic": ["anthropic.message.create", "anthropic.message.count_tokens", "anthropic.model.list",
                  "anthropic.model.read", "anthropic.message_batch.read", "anthropic.message_batch.delete"],
    "stripe": ["stripe.customer.create", "stripe.customer.read", "stripe.refund.create",
               "stripe.payment_intent.create", "stripe.customer.delete", "stripe.balance.read"],
    "slack": ["slack.message.send", "slack.conversation.list", "slack.reaction.add", "slack.user.read",
              "slack.message.delete"],
    "github": ["github.user.read", "github.repo.read", "github.issue.create", "github.pr.read", "github.pr.read",
               "github.pr.merge", "github.repo.delete"],
}
# one MCP session per call: initialize, initialized, the call itself, then the session's DELETE
_SESSION = ["mcp.rpc.initialize", "mcp.rpc.notifications.initialized"]
EXPECTED["mcp"] = [a for call in ("mcp.rpc.tools.list", "mcp.tools.search", "mcp.tools.delete_file",
                                  "mcp.rpc.resources.list", "mcp.rpc.prompts.list")
                   for a in (*_SESSION, call, "mcp.session.delete")]


REAL = {t: f"real-{t}-{secrets.token_hex(12)}" for t in TYPES}
"""The credentials in the vault; the agent only ever holds the placeholders ``tf run`` gives it."""
CREDENTIAL_HEADER = {"anthropic": ("x-api-key", "{}")}


@pytest.fixture(scope="module")
def sdk_host() -> Iterator[Host]:
    assert (SDKS / "openai").is_dir(), f"the agent SDKs are missing from {SDKS}: run make bootstrap"

    def serve_mcp(h: Host) -> None:
        pki = h.outside.workdir / "pki"
        h.outside.spawn(["/usr/bin/python3", str(MCP_SERVER), h.outside.addr, "8443", str(pki / "server.pem"),
                         str(pki / "server.key"), str(h.outside.workdir / "mcp.jsonl")],
                        env={"PYTHONPATH": str(SDKS), "PATH": "/usr/bin:/bin"})
        h.outside.wait_tcp(h.outside.addr, 8443, timeout=30)
        h.env["TF_UPSTREAM_RESOLVE"] = ",".join(
            [*(f"{n}={h.outside.addr}:443" for n in API_HOSTS), f"{MCP_HOST}={h.outside.addr}:8443"])

    overlays = f'ca_overlays = ["{SDKS}/stripe/data/ca-certificates.crt"]'  # the bundle stripe-python carries
    with running_host(overlays, before_start=serve_mcp, hosts=(*API_HOSTS, MCP_HOST), connectors=CONNECTORS,
                      permissions=PERMISSIONS) as h:
        for t in TYPES:
            r = h.tf("connector", "add", t, "--token-stdin", input=REAL[t] + "\n")
            assert r.returncode == 0, r.stderr
        yield h


def _rows_since(h: Host, seen: set[int]) -> list[dict[str, Any]]:
    """HTTP rows not in ``seen``, oldest first."""
    return sorted((r for r in h.logs() if r["seq"] not in seen and r["scheme"] != "dns"), key=lambda r: r["seq"])


@pytest.mark.parametrize("sdk", sorted(EXPECTED))
def test_real_sdk_calls_are_classified(sdk_host: Host, sdk: str) -> None:
    seen = {r["seq"] for r in sdk_host.logs()}
    before = len(sdk_host.outside.received())
    env = {"PYTHONPATH": str(SDKS), "TF_TEST_MCP_URL": f"https://{MCP_HOST}/mcp"}  # keys: only tf run's placeholders
    r = sdk_host.tf("run", "--name", "Sdk", "--", "env", *(f"{k}={v}" for k, v in env.items()),
                    "/usr/bin/python3", str(AGENT), sdk, timeout=180)
    calls = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert calls and all(c["ok"] for c in calls), r.stdout + r.stderr
    if sdk != "mcp":  # the fake API saw the real credential on every request, the agent never did
        header, form = CREDENTIAL_HEADER.get(sdk, ("authorization", "Bearer {}"))
        got = sdk_host.outside.received()[before:]
        assert got and all(g["headers"].get(header) == form.format(REAL[sdk]) for g in got), got
        assert not any(real in r.stdout + r.stderr for real in REAL.values())
    time.sleep(0.3)
    rows = _rows_since(sdk_host, seen)
    got = [row["action"] for row in rows]
    if sdk == "mcp":  # the SDK opens its GET stream and re-lists tools concurrently: compare what was done
        assert set(got) == set(EXPECTED[sdk]) | {"mcp.stream.open"}, got
        assert got.count("mcp.tools.search") == got.count("mcp.tools.delete_file") == 1, got
        assert [a for a in got if a.startswith("mcp.tools.")] == ["mcp.tools.search", "mcp.tools.delete_file"]
    else:
        assert got == EXPECTED[sdk], f"{sdk}: {got}"
    # MCP's client reads its answer off a server-sent event stream and hangs up before the server ends it: that
    # row is an allowed request whose upstream leg ends as "Client disconnected"; anything else is a failure
    odd = [(r["action"], r["decision"], r["reason"]) for r in rows if r["decision"] != "allowed"
           and not (sdk == "mcp" and r["decision"] == "error" and "Client disconnected" in r["reason"])]
    assert odd == [], odd
