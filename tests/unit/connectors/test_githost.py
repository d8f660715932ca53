"""Git over HTTPS and GitHub's download hosts as actions, and a push's refs, force and delete as params."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.unit.connectors.gitbytes import FLUSH, ZERO, commands, commit, oid, pack, pkt
from trustfence.connectors.base import INSPECT_BYTES, RequestView
from trustfence.connectors.githost import DOWNLOAD_HOSTS, HOST_ROUTES
from trustfence.connectors.github import GitHubConnector
from trustfence.policy.conditions import Rule
from trustfence.policy.evaluate import Facts, compile_condition

GH = GitHubConnector("github", GitHubConnector.default_hosts)
GHE = GitHubConnector("ghe", ("github.example.com",), "/api/v3")
UNREAD = {"refs", "branches", "tags", "force", "delete", "updates"}

ROOT = commit(message="root")
C1 = commit((oid(ROOT),), "one")
C2 = commit((oid(C1),), "two")
REWRITTEN = commit((oid(ROOT),), "rewritten")


def view(method: str, path: str, query: tuple[tuple[str, str], ...] = (), body: bytes = b"",
         host: str = "github.com", headers: dict[str, str] | None = None, complete: bool = True) -> RequestView:
    return RequestView(method, "https", host, 443, path, query, headers or {}, body, complete)


def push(body: bytes, **kw: object) -> RequestView:
    return view("POST", "/acme/widgets.git/git-receive-pack", body=body,
                headers={"content-type": "application/x-git-receive-pack-request"}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path", "query", "action", "risk"), [
    ("GET", "/acme/widgets.git/info/refs", (("service", "git-upload-pack"),), "github.git.fetch", "low"),
    ("GET", "/acme/widgets/info/refs", (("service", "git-upload-pack"),), "github.git.fetch", "low"),
    ("GET", "/acme/widgets/info/refs", (), "github.git.fetch", "low"),
    ("POST", "/acme/widgets.git/git-upload-pack", (), "github.git.fetch", "low"),
    ("GET", "/acme/widgets.git/info/refs", (("service", "git-receive-pack"),), "github.git.push", "high"),
    ("GET", "/acme/widgets.git/info/refs",
     (("service", "git-upload-pack"), ("service", "git-receive-pack")), "github.git.push", "high"),
    ("GET", "/acme/widgets.git/info/refs", (("service", "git-archive"),), "github.unknown.get", "high"),
    ("GET", "/acme/widgets/archive/refs/heads/main.tar.gz", (), "github.archive.download", "low"),
    ("GET", "/acme/widgets/raw/main/README.md", (), "github.raw.read", "low"),
    ("GET", "/acme/widgets/releases/download/v1/tool.tgz", (), "github.release.asset.download", "low"),
    ("GET", "/acme/widgets", (), "github.unknown.get", "high"),  # a web page: not an API route here
    ("GET", "/repos/acme/widgets", (), "github.unknown.get", "high"),  # REST paths only on the API host
    ("POST", "/graphql", (), "github.unknown.post", "high"),
])
def test_github_com(method: str, path: str, query: tuple[tuple[str, str], ...], action: str, risk: str) -> None:
    got = GH.classify(view(method, path, query))
    assert (got.name, got.risk) == (action, risk)


@pytest.mark.parametrize(("body", "action"), [(b'{"operation": "download", "objects": []}', "github.lfs.download"),
                                             (b'{"operation": "upload", "objects": []}', "github.lfs.upload"),
                                             (b"not json", "github.lfs.upload")])
def test_lfs_batch(body: bytes, action: str) -> None:
    got = GH.classify(view("POST", "/acme/widgets.git/info/lfs/objects/batch", body=body,
                           headers={"content-type": "application/vnd.git-lfs+json"}))
    assert got.name == action


def test_owner_and_repo_in_lower_case_without_the_git_suffix() -> None:
    got = GH.classify(view("GET", "/Acme/WIDGETS.GIT/info/refs", (("service", "git-upload-pack"),)))
    assert dict(got.params) == {"owner": "acme", "repo": "widgets", "service": "git-upload-pack"}
    assert GH.classify(view("POST", "/ACME/Widgets/git-receive-pack")).params["repo"] == "widgets"


@pytest.mark.parametrize(("host", "path", "action", "params"), [
    ("codeload.github.com", "/acme/widgets/tar.gz/refs/heads/main", "github.archive.download",
     {"owner": "acme", "repo": "widgets", "ref": "refs/heads/main"}),
    ("codeload.github.com", "/acme/widgets/zip/v1.0", "github.archive.download",
     {"owner": "acme", "repo": "widgets", "ref": "v1.0"}),
    ("codeload.github.com", "/acme/widgets/legacy.tar.gz/main", "github.archive.download",
     {"owner": "acme", "repo": "widgets", "ref": "main"}),
    ("raw.githubusercontent.com", "/acme/widgets/main/src/app.py", "github.raw.read",
     {"owner": "acme", "repo": "widgets", "ref": "main", "path": "src/app.py"}),
    ("objects.githubusercontent.com", "/github-production-release-asset-2e65be/1/abc", "github.release.asset.download",
     {"path": "github-production-release-asset-2e65be/1/abc"}),
    ("codeload.github.com", "/acme/widgets/rar/main", "github.unknown.get", {"method": "GET", "path": "/acme/widgets/rar/main"}),
])
def test_download_hosts(host: str, path: str, action: str, params: dict[str, str]) -> None:
    got = GH.classify(view("GET", path, host=host))
    assert (got.name, dict(got.params)) == (action, params)


def test_downloads_are_reads_and_every_host_is_a_default_host() -> None:
    assert set(DOWNLOAD_HOSTS) == set(HOST_ROUTES) and set(DOWNLOAD_HOSTS) < set(GH.hosts)
    assert GH.classify(view("POST", "/acme/widgets/main/x", host="raw.githubusercontent.com")).name == \
        "github.unknown.post"
    for action in ("github.git.fetch", "github.git.push", "github.archive.download", "github.raw.read",
                   "github.release.asset.download"):
        assert GH.accepts_action(action)


def test_api_host_keeps_its_rest_table() -> None:
    assert GH.classify(view("GET", "/repos/acme/widgets", host="api.github.com")).name == "github.repo.read"


def test_enterprise_serves_git_beside_the_api() -> None:
    got = GHE.classify(view("POST", "/acme/widgets.git/git-upload-pack", host="github.example.com"))
    assert got.name == "github.git.fetch"
    assert GHE.classify(view("GET", "/api/v3/repos/acme/widgets", host="github.example.com")).name == \
        "github.repo.read"
    assert GHE.classify(view("GET", "/acme/widgets", host="github.example.com")).name == "github.unknown.get"


def test_fast_forward_push() -> None:
    body = commands(f"{oid(C1)} {oid(C2)} refs/heads/feature") + pack(("commit", C2, None))
    got = GH.classify(push(body))
    assert (got.name, got.risk, got.unavailable) == ("github.git.push", "high", frozenset())
    assert got.params["refs"] == ("refs/heads/feature",)
    assert got.params["force"] is False and got.params["delete"] is False
    assert got.params["updates"] == ({"ref": "refs/heads/feature", "old": oid(C1), "new": oid(C2),
                                      "type": "fast_forward"},)
    assert got.params["owner"] == "acme" and got.params["repo"] == "widgets"


def test_rewritten_history_is_a_force_push() -> None:
    body = commands(f"{oid(C2)} {oid(REWRITTEN)} refs/heads/main") + pack(("commit", REWRITTEN, None))
    got = GH.classify(push(body))
    assert got.params["force"] is True and got.params["refs"] == ("refs/heads/main",)
    assert got.params["updates"][0]["type"] == "force"  # type: ignore[index]


def test_moving_a_ref_back_or_to_a_commit_not_carried_is_a_force_push() -> None:
    back = GH.classify(push(commands(f"{oid(C2)} {oid(C1)} refs/heads/main") + pack()))
    assert back.params["force"] is True
    no_pack = GH.classify(push(commands(f"{oid(C1)} {oid(C2)} refs/heads/main")))
    assert no_pack.params["force"] is True


def test_creation_and_deletion() -> None:
    body = commands(f"{ZERO} {oid(C1)} refs/heads/new", f"{oid(C1)} {ZERO} refs/heads/old",
                    f"{ZERO} {oid(C1)} refs/tags/v1.0") + pack(("commit", C1, None))
    got = GH.classify(push(body))
    assert got.params["refs"] == ("refs/heads/new", "refs/heads/old", "refs/tags/v1.0")
    assert got.params["branches"] == ("new", "old") and got.params["tags"] == ("v1.0",)
    assert got.params["force"] is False and got.params["delete"] is True
    assert [u["type"] for u in got.params["updates"]] == ["create", "delete", "create"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", [
    b"",
    b"garbage",
    pkt(f"{oid(C1)} {oid(C2)} refs/heads/main"),  # no flush
    b"0001" + FLUSH,
    pkt("push-cert\0report-status\n") + FLUSH,
])
def test_an_unreadable_push_is_the_most_dangerous_one(body: bytes) -> None:
    got = GH.classify(push(body))
    assert got.name == "github.git.push"
    assert got.params["force"] is True and got.params["delete"] is True
    assert got.unavailable == UNREAD and "refs" not in got.params and got.params["error"]


def test_a_body_cut_inside_the_commands_is_unreadable() -> None:
    lines = [f"{oid(C1)} {oid(C2)} refs/heads/b{i:05d}" for i in range(3000)]
    body = commands(*lines)
    assert len(body) > INSPECT_BYTES
    got = GH.classify(push(body[:INSPECT_BYTES], complete=False))
    assert got.unavailable == UNREAD and "inspection bound" in str(got.params["error"])


def test_a_pack_cut_at_the_bound_keeps_the_refs_and_counts_updates_as_force() -> None:
    body = commands(f"{oid(C1)} {oid(C2)} refs/heads/feature", f"{ZERO} {oid(C2)} refs/heads/new")
    got = GH.classify(push(body + b"PACK\0\0\0\2\0\0\0\5", complete=False))
    assert got.unavailable == frozenset() and got.params["refs"] == ("refs/heads/feature", "refs/heads/new")
    assert got.params["force"] is True and "inspection bound" in str(got.params["note"])


def test_a_push_over_the_bound_is_judged_on_the_commits_before_the_cut() -> None:
    big = os.urandom(INSPECT_BYTES)  # incompressible: the pack runs past the bound
    body = commands(f"{oid(C1)} {oid(C2)} refs/heads/feature") + pack(("commit", C2, None), ("blob", big, None))
    got = GH.classify(push(body[:INSPECT_BYTES], complete=False))
    assert got.params["force"] is False and got.params["updates"][0]["type"] == "fast_forward"  # type: ignore[index]


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, gzip"])
def test_an_encoding_git_would_not_decode_like_us_is_unreadable(encoding: str) -> None:
    sent = push(commands(f"{ZERO} {oid(C1)} refs/heads/new"))
    got = GH.classify(replace(sent, headers={"content-encoding": encoding}))
    assert got.unavailable == UNREAD


def test_gzip_bodies_are_read_as_the_enforcer_hands_them_over_decoded() -> None:
    sent = push(commands(f"{ZERO} {oid(C1)} refs/heads/new"))
    assert GH.classify(replace(sent, headers={"content-encoding": "gzip"})).params["refs"] == ("refs/heads/new",)


NEVER_MAIN = Rule("params.refs", "contains", "refs/heads/main")
NEVER_FORCE = Rule("params.force", "equals", True)


def facts(body: bytes) -> Facts:
    a = GH.classify(push(body))
    return Facts("Bot", a.connector, a.name, a.risk, params=a.params, unavailable=a.unavailable)


def test_policy_conditions_read_the_push() -> None:
    main, force = compile_condition(NEVER_MAIN), compile_condition(NEVER_FORCE)
    to_main = facts(commands(f"{oid(C1)} {oid(C2)} refs/heads/main") + pack(("commit", C2, None)))
    assert main(to_main) is True and force(to_main) is False
    forced = facts(commands(f"{oid(C2)} {oid(REWRITTEN)} refs/heads/feature") + pack(("commit", REWRITTEN, None)))
    assert main(forced) is False and force(forced) is True
    unreadable = facts(b"garbage")  # unknown: a deny applies, an allow does not
    assert main(unreadable) is None and force(unreadable) is None
