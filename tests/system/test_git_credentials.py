"""git over HTTPS gets the github connector's token the way git sends one, whatever the agent's git sent.

The fake github.com (a real ``git http-backend``) serves its repository only to a client that sends the real
token as ``Authorization: Basic base64("x-access-token:TOKEN")``, and 401 to any other, as GitHub does for a
private repository. The agent's git holds no token, or a dummy in the URL: it works only because the enforcer
put the real one in.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.system.conftest import Host, running_host
from tests.system.test_git import CONNECTORS, PERMISSIONS, serve_git

pytestmark = pytest.mark.system

TOKEN = f"ghs_{secrets.token_hex(16)}"
URL = "github.com/acme/widgets.git"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.github.com", "github.com"), connectors=CONNECTORS, permissions=PERMISSIONS,
                      before_start=lambda h: serve_git(h, TOKEN)) as h:
        r = h.tf("connector", "add", "github", "--token-stdin", input=TOKEN + "\n")
        assert r.returncode == 0, r.stderr
        yield h


def _auth_seen(h: Host, before: int) -> list[str]:
    log = h.outside.workdir / "git.jsonl"
    return [json.loads(line)["headers"].get("authorization", "") for line in log.read_text().splitlines()[before:]]


@pytest.mark.parametrize("url", [f"https://{URL}", f"https://x-access-token:dummy@{URL}"], ids=["bare", "dummy"])
def test_the_real_token_reaches_github_com_as_basic_credentials(host: Host, url: str) -> None:
    before = len((host.outside.workdir / "git.jsonl").read_text().splitlines())
    seen = {r["seq"] for r in host.logs()}
    r = host.run("sh", "-c", f"HOME=/tmp GIT_TERMINAL_PROMPT=0 git ls-remote {url}")
    assert r.returncode == 0 and "refs/heads/main" in r.stdout, r.stderr
    want = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    got = _auth_seen(host, before)
    assert got and all(a == want for a in got), got
    assert TOKEN not in r.stdout + r.stderr
    time.sleep(0.5)
    rows = [row for row in host.logs() if row["seq"] not in seen and row["host"] == "github.com"]
    assert rows and {(row["action"], row["decision"]) for row in rows} == {("github.git.fetch", "allowed")}, rows
    assert TOKEN not in json.dumps(rows)
