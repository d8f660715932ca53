"""The GitHub connector: route table, body-dependent verbs, params, unknowns and the Enterprise prefix."""

from __future__ import annotations

import json
import re

import pytest

from trustfence.connectors.base import RequestView, Route
from trustfence.connectors.github import GITHUB_MUTATIONS, GITHUB_ROUTES, GitHubConnector
from trustfence.connectors.githost import HOST_ROUTES
from trustfence.connectors.protocols import unknown_actions

GH = GitHubConnector("github", GitHubConnector.default_hosts)
R = "/repos/acme/widgets"


def view(method: str, path: str, body: object = None, host: str = "api.github.com") -> RequestView:
    raw = b"" if body is None else json.dumps(body).encode()
    return RequestView(method=method, scheme="https", host=host, port=443, path=path,
                       headers={"content-type": "application/json"}, body=raw)


REQUIRED: list[tuple[str, str, object, str, str]] = [
    # (method, path, body, expected action, expected risk)
    ("POST", R + "/pulls", {"title": "t", "head": "feat", "base": "main"}, "github.pr.create", "medium"),
    ("PATCH", R + "/pulls/7", {"title": "new"}, "github.pr.update", "medium"),
    ("PATCH", R + "/pulls/7", {"state": "closed"}, "github.pr.close", "medium"),
    ("PUT", R + "/pulls/7/merge", {"merge_method": "squash"}, "github.pr.merge", "high"),
    ("POST", R + "/pulls/7/reviews", {"event": "APPROVE"}, "github.pr.review", "medium"),
    ("GET", R + "/pulls", None, "github.pr.list", "low"),
    ("GET", R + "/pulls/7", None, "github.pr.read", "low"),
    ("GET", R + "/pulls/7/files", None, "github.pr.read", "low"),
    ("GET", R + "/pulls/7/commits", None, "github.pr.read", "low"),
    ("POST", R + "/issues", {"title": "bug"}, "github.issue.create", "medium"),
    ("PATCH", R + "/issues/3", {"labels": ["x"]}, "github.issue.update", "medium"),
    ("PATCH", R + "/issues/3", {"state": "closed"}, "github.issue.close", "medium"),
    ("GET", R + "/issues", None, "github.issue.list", "low"),
    ("GET", R + "/issues/3", None, "github.issue.read", "low"),
    ("POST", R + "/issues/3/comments", {"body": "hi"}, "github.issue.comment.create", "medium"),
    ("GET", R + "/issues/3/comments", None, "github.issue.comment.list", "low"),
    ("POST", R + "/git/refs", {"ref": "refs/heads/feat", "sha": "abc"}, "github.branch.create", "medium"),
    ("DELETE", R + "/git/refs/heads/feat", None, "github.branch.delete", "high"),
    ("GET", R + "/branches", None, "github.branch.list", "low"),
    ("GET", R + "/branches/main", None, "github.branch.read", "low"),
    ("POST", R + "/releases", {"tag_name": "v1.0"}, "github.release.create", "medium"),
    ("DELETE", R + "/releases/42", None, "github.release.delete", "high"),
    ("GET", R + "/releases", None, "github.release.list", "low"),
    ("GET", R + "/releases/42", None, "github.release.read", "low"),
    ("PUT", R + "/contents/docs/a.md", {"message": "m", "content": "eA=="}, "github.file.create", "medium"),
    ("PUT", R + "/contents/docs/a.md", {"message": "m", "content": "eA==", "sha": "s1"}, "github.file.update",
     "medium"),
    ("DELETE", R + "/contents/docs/a.md", {"message": "m", "sha": "s1"}, "github.file.delete", "high"),
    ("GET", R + "/contents/docs/a.md", None, "github.file.read", "low"),
    ("POST", "/user/repos", {"name": "new"}, "github.repo.create", "medium"),
    ("POST", "/orgs/acme/repos", {"name": "new"}, "github.repo.create", "medium"),
    ("PATCH", R, {"description": "d"}, "github.repo.update", "medium"),
    ("DELETE", R, None, "github.repo.delete", "critical"),
    ("GET", R, None, "github.repo.read", "low"),
    ("GET", "/user/repos", None, "github.repo.list", "low"),
    ("GET", "/orgs/acme/repos", None, "github.repo.list", "low"),
    ("GET", "/users/octocat/repos", None, "github.repo.list", "low"),
    ("PATCH", "/orgs/acme", {"billing_email": "a@b.c"}, "github.org.update", "high"),
    ("POST", "/orgs/acme/teams", {"name": "core"}, "github.team.create", "high"),
    ("GET", "/user", None, "github.user.read", "low"),
]

REQUIRED_NAMES = {
    "github.pr.create", "github.pr.update", "github.pr.close", "github.pr.merge", "github.pr.review",
    "github.pr.read", "github.pr.list", "github.issue.create", "github.issue.update", "github.issue.close",
    "github.issue.read", "github.issue.list", "github.issue.comment.create", "github.issue.comment.list",
    "github.branch.create", "github.branch.delete", "github.branch.read", "github.branch.list",
    "github.release.create", "github.release.delete", "github.release.list", "github.release.read",
    "github.file.create", "github.file.update", "github.file.delete", "github.file.read",
    "github.repo.create", "github.repo.update", "github.repo.delete", "github.repo.read", "github.repo.list",
    "github.org.update", "github.team.create", "github.user.read", "github.unknown.get",
    "github.unknown.post", "github.unknown.other", "github.graphql.query",
    "github.graphql.mutation.mergePullRequest",
}


@pytest.mark.parametrize(("method", "path", "body", "action", "risk"), REQUIRED,
                         ids=[f"{m} {p} -> {a}" for m, p, _, a, _ in REQUIRED])
def test_required_actions_are_reached(method: str, path: str, body: object, action: str, risk: str) -> None:
    got = GH.parse(view(method, path, body))
    assert got.name == action
    assert got.risk == risk
    assert got.connector == "github"


def test_required_table_covers_every_required_name() -> None:
    assert {a for _, _, _, a, _ in REQUIRED} == {n for n in REQUIRED_NAMES if ".unknown." not in n
                                                 and ".graphql." not in n}


def test_actions_lists_at_least_thirty_including_required() -> None:
    assert len(GH.actions) >= 30
    assert REQUIRED_NAMES <= GH.actions
    assert all(a.startswith("github.") for a in GH.actions)


@pytest.mark.parametrize(("method", "path", "body", "action"), [
    # close vs update: only state == "closed" closes
    ("PATCH", R + "/pulls/1", {"state": "closed"}, "github.pr.close"),
    ("PATCH", R + "/pulls/1", {"state": "open"}, "github.pr.update"),
    ("PATCH", R + "/pulls/1", None, "github.pr.update"),
    ("PATCH", R + "/issues/1", {"state": "closed", "state_reason": "completed"}, "github.issue.close"),
    ("PATCH", R + "/issues/1", {"state": "open"}, "github.issue.update"),
    ("PATCH", R + "/issues/1", {"title": "closed"}, "github.issue.update"),
    # file create vs update: a sha (the blob being replaced) makes it an update
    ("PUT", R + "/contents/README.md", {"message": "m", "content": "eA=="}, "github.file.create"),
    ("PUT", R + "/contents/README.md", {"message": "m", "sha": ""}, "github.file.create"),
    ("PUT", R + "/contents/README.md", {"message": "m", "sha": "abc"}, "github.file.update"),
    # branch.create only for refs/heads/
    ("POST", R + "/git/refs", {"ref": "refs/heads/x", "sha": "abc"}, "github.branch.create"),
    ("POST", R + "/git/refs", {"ref": "refs/tags/v1", "sha": "abc"}, "github.tag.create"),
    ("POST", R + "/git/refs", {"ref": "refs/notes/x", "sha": "abc"}, "github.ref.create"),
    ("POST", R + "/git/refs", {"ref": "heads/refs/heads/x", "sha": "abc"}, "github.ref.create"),
    ("POST", R + "/git/refs", {"sha": "abc"}, "github.ref.create"),
    # moving a branch: forced is its own, higher-risk action
    ("PATCH", R + "/git/refs/heads/main", {"sha": "abc", "force": True}, "github.branch.force_update"),
    ("PATCH", R + "/git/refs/heads/main", {"sha": "abc", "force": False}, "github.branch.update"),
    ("PATCH", R + "/git/refs/heads/main", {"sha": "abc"}, "github.branch.update"),
    ("PATCH", R + "/git/refs/tags/v1", {"sha": "abc", "force": True}, "github.ref.update"),
    ("DELETE", R + "/git/refs/tags/v1", None, "github.tag.delete"),
    ("DELETE", R + "/git/refs/pull/1/head", None, "github.ref.delete"),
])
def test_body_and_ref_dependent_verbs(method: str, path: str, body: object, action: str) -> None:
    assert GH.parse(view(method, path, body)).name == action


@pytest.mark.parametrize(("method", "path", "action"), [
    # literal segments listed before the parameter that shares their position
    ("GET", R + "/pulls/comments", "github.pr.comment.list"),
    ("GET", R + "/issues/comments", "github.issue.comment.list"),
    ("PATCH", R + "/issues/comments/99", "github.issue.comment.update"),
    ("GET", R + "/releases/latest", "github.release.read"),
    ("GET", R + "/releases/tags/v1.0", "github.release.read"),
    # branch names with slashes, and protection below them
    ("GET", R + "/branches/feature/login", "github.branch.read"),
    ("GET", R + "/branches/feature/login/protection", "github.branch.protection.read"),
    ("PUT", R + "/branches/main/protection", "github.branch.protection.update"),
    ("DELETE", R + "/branches/main/protection", "github.branch.protection.delete"),
    ("DELETE", R + "/branches/main/protection/required_status_checks", "github.branch.protection.delete"),
    # trailing slash is tolerated; lower-case method is normalised
    ("GET", R + "/pulls/", "github.pr.list"),
    ("get", R + "/pulls", "github.pr.list"),
    # high-risk side channels have their own names
    ("POST", R + "/actions/workflows/ci.yml/dispatches", "github.workflow.dispatch"),
    ("PUT", R + "/collaborators/mallory", "github.collaborator.add"),
    ("POST", R + "/hooks", "github.hook.create"),
    ("POST", "/gists", "github.gist.create"),
])
def test_ordering_and_special_paths(method: str, path: str, action: str) -> None:
    assert GH.parse(view(method, path)).name == action


@pytest.mark.parametrize(("method", "path", "body", "params"), [
    ("POST", R + "/pulls", {"title": "Add x", "head": "feat", "base": "main", "draft": True, "body": "long"},
     {"owner": "acme", "repo": "widgets", "title": "Add x", "head": "feat", "base": "main", "draft": True}),
    ("PUT", R + "/pulls/12/merge", {"merge_method": "squash", "sha": "deadbeef"},
     {"owner": "acme", "repo": "widgets", "number": "12", "merge_method": "squash", "sha": "deadbeef"}),
    ("PATCH", R + "/pulls/12", {"state": "closed"},
     {"owner": "acme", "repo": "widgets", "number": "12", "state": "closed"}),
    ("POST", R + "/pulls/12/reviews", {"event": "APPROVE", "body": "lgtm"},
     {"owner": "acme", "repo": "widgets", "number": "12", "event": "APPROVE"}),
    ("POST", R + "/issues/5/comments", {"body": "hello"},
     {"owner": "acme", "repo": "widgets", "number": "5"}),
    ("PUT", R + "/contents/src/app/main.py",
     {"message": "edit", "branch": "dev", "sha": "s1", "content": "eA=="},
     {"owner": "acme", "repo": "widgets", "path": "src/app/main.py", "message": "edit", "branch": "dev",
      "sha": "s1"}),
    ("PUT", R + "/contents/new.txt", {"message": "add", "content": "eA=="},
     {"owner": "acme", "repo": "widgets", "path": "new.txt", "message": "add"}),
    ("DELETE", R + "/contents/old.txt", {"message": "rm", "sha": "s2"},
     {"owner": "acme", "repo": "widgets", "path": "old.txt", "message": "rm", "sha": "s2"}),
    ("POST", R + "/releases", {"tag_name": "v2.0", "draft": False},
     {"owner": "acme", "repo": "widgets", "tag_name": "v2.0", "draft": False}),
    ("DELETE", R + "/releases/77", None, {"owner": "acme", "repo": "widgets", "release_id": "77"}),
    ("POST", "/user/repos", {"name": "secret-stuff", "private": False},
     {"name": "secret-stuff", "private": False}),
    ("POST", "/orgs/acme/repos", {"name": "svc", "private": True},
     {"org": "acme", "name": "svc", "private": True}),
    ("POST", R + "/git/refs", {"ref": "refs/heads/feat", "sha": "abc"},
     {"owner": "acme", "repo": "widgets", "ref": "refs/heads/feat", "sha": "abc"}),
    ("DELETE", R + "/git/refs/heads/feature/login", None,
     {"owner": "acme", "repo": "widgets", "branch": "feature/login"}),
    ("GET", R + "/branches/feature/login", None,
     {"owner": "acme", "repo": "widgets", "branch": "feature/login"}),
    ("PATCH", "/orgs/acme", {"default_repository_permission": "admin"},
     {"org": "acme", "default_repository_permission": "admin"}),
    ("GET", "/users/octocat/repos", None, {"username": "octocat"}),
    ("GET", "/user", None, {}),
])
def test_params_extracted(method: str, path: str, body: object, params: dict[str, object]) -> None:
    assert dict(GH.parse(view(method, path, body)).params) == params


def test_params_from_form_body_and_garbage_body() -> None:
    form = RequestView(method="PUT", scheme="https", host="api.github.com", port=443,
                       path=R + "/pulls/3/merge",
                       headers={"content-type": "application/x-www-form-urlencoded"},
                       body=b"merge_method=rebase")
    assert GH.parse(form).params == {"owner": "acme", "repo": "widgets", "number": "3",
                                     "merge_method": "rebase"}
    junk = RequestView(method="PATCH", scheme="https", host="api.github.com", port=443, path=R + "/pulls/3",
                       headers={"content-type": "application/json"}, body=b"{not json")
    got = GH.parse(junk)  # unreadable: it may be a close or an update, so it is decided as both
    assert (got.name, got.params["operations"]) == ("github.pr.update", ("github.pr.close", "github.pr.update"))


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/totally/unknown"),
    ("GET", R + "/pulls/1/unknown"),
    ("POST", R),                       # no POST on the repo itself
    ("DELETE", R + "/pulls/1"),        # PRs cannot be deleted
    ("PUT", R + "/contents"),          # contents needs a path
    ("TRACE", R),
    ("GET", ""),
    ("GET", "/api/v3" + R),            # Enterprise prefix is not accepted without base_path
])
def test_unknown_paths(method: str, path: str) -> None:
    got = GH.parse(view(method, path))
    assert got.name == ("github.unknown.other" if method == "TRACE" else f"github.unknown.{method.lower()}")
    assert got.risk == "high"
    assert got.connector == "github"
    assert dict(got.params) == {"method": method, "path": path}
    assert got.name in GH.actions


@pytest.mark.parametrize("base_path", ["/api/v3", "/api/v3/", "api/v3"])
def test_enterprise_base_path(base_path: str) -> None:
    ghe = GitHubConnector("ghe", ("github.example.com",), base_path=base_path)
    assert ghe.hosts == ("github.example.com",)
    merged = ghe.parse(view("PUT", "/api/v3" + R + "/pulls/9/merge", {"merge_method": "merge"},
                            host="github.example.com"))
    assert merged.name == "github.pr.merge"
    assert merged.connector == "ghe"
    assert dict(merged.params) == {"owner": "acme", "repo": "widgets", "number": "9", "merge_method": "merge"}
    assert ghe.parse(view("GET", "/api/v3", host="github.example.com")).name == "github.meta.read"
    assert ghe.parse(view("GET", "/api/v3/user", host="github.example.com")).name == "github.user.read"
    for outside in ("/repos/acme/widgets", "/api/v3x/user", "/api/v4/user"):
        got = ghe.parse(view("GET", outside, host="github.example.com"))
        assert got.name == "github.unknown.get"
        assert dict(got.params) == {"method": "GET", "path": outside}


def test_class_attributes() -> None:
    assert GitHubConnector.type_name == "github"
    assert GitHubConnector.namespace == "github"
    assert GitHubConnector.default_hosts == ("api.github.com", "github.com", "codeload.github.com",
                                             "raw.githubusercontent.com", "objects.githubusercontent.com",
                                             "release-assets.githubusercontent.com")
    assert GitHubConnector("gh", ("API.GitHub.com",)).hosts == ("api.github.com",)


def _sample_path(template: str) -> str:
    path = re.sub(r"\{[^}]+\+\}", "a1/b2", template)
    return re.sub(r"\{[^}]+\}", "x9", path)


@pytest.mark.parametrize("route", [r for r in GITHUB_ROUTES if r.when is None],
                         ids=[f"{r.method} {r.template}" for r in GITHUB_ROUTES if r.when is None])
def test_every_plain_route_is_reachable(route: Route) -> None:
    """No route is shadowed by an earlier one: a request built from its template yields its own action."""
    got = GH.parse(view(route.method, _sample_path(route.template)))
    assert (got.name, got.risk) == (f"github.{route.action}", route.risk)


def test_route_table_is_consistent() -> None:
    actions = {f"github.{r.action}" for r in GITHUB_ROUTES}
    graphql = {"github.graphql.query", "github.graphql.subscription", "github.graphql.invalid"}
    mutations = {f"github.graphql.mutation.{m}" for m in GITHUB_MUTATIONS}
    hosts = {f"github.{r.action}" for routes in HOST_ROUTES.values() for r in routes}
    assert GH.actions == actions | graphql | mutations | hosts | unknown_actions("github")
    for r in GITHUB_ROUTES:
        assert r.method == r.method.upper()
        assert r.risk in ("low", "medium", "high", "critical")
        if r.method == "GET":
            assert r.risk == "low", r
        if r.action.endswith((".delete", ".remove", ".merge")):
            assert r.risk in ("high", "critical"), r


# --- GraphQL: the endpoint is read from the document (details in test_graphql.py) ---

def gql(query: str, **extra: object) -> dict[str, object]:
    return {"query": query, **extra}


@pytest.mark.parametrize(("body", "action", "risk", "operations"), [
    (gql("query { viewer { login } }"), "github.graphql.query", "low", ("github.graphql.query",)),
    (gql("{ repository(owner: \"a\", name: \"b\") { id } }"), "github.graphql.query", "low",
     ("github.graphql.query",)),
    (gql("mutation { mergePullRequest(input: {pullRequestId: \"x\"}) { clientMutationId } }"),
     "github.graphql.mutation.mergePullRequest", "high", ("github.graphql.mutation.mergePullRequest",)),
    (gql("mutation { createIssue(input: {}) { issue { id } } }"), "github.graphql.mutation.createIssue",
     "medium", ("github.graphql.mutation.createIssue",)),
    (gql("mutation { deleteRepository(input: {}) { clientMutationId } }"),
     "github.graphql.mutation.deleteRepository", "critical", ("github.graphql.mutation.deleteRepository",)),
    # not in the catalogue: still named, at high risk
    (gql("mutation { someNewMutation(input: {}) { clientMutationId } }"),
     "github.graphql.mutation.someNewMutation", "high", ("github.graphql.mutation.someNewMutation",)),
    # several mutations: the first of the highest risk names the Action, all are listed
    (gql("mutation { addComment(input: {}) { clientMutationId }"
         " closePullRequest(input: {}) { clientMutationId } deleteRef(input: {}) { clientMutationId } }"),
     "github.graphql.mutation.deleteRef", "high",
     ("github.graphql.mutation.addComment", "github.graphql.mutation.closePullRequest",
      "github.graphql.mutation.deleteRef")),
    (gql("subscription { x }"), "github.graphql.subscription", "low", ("github.graphql.subscription",)),
    ("not a request", "github.graphql.invalid", "high", ("github.graphql.invalid",)),
])
def test_graphql_endpoint(body: object, action: str, risk: str, operations: tuple[str, ...]) -> None:
    got = GH.classify(view("POST", "/graphql", body))
    assert (got.name, got.risk, got.connector) == (action, risk, "github")
    assert got.params["operations"] == operations
    assert all(GH.accepts_action(name) for name in operations)


def test_graphql_keeps_operation_name_and_only_post_is_graphql() -> None:
    got = GH.classify(view("POST", "/graphql/", gql("query Me { viewer { login } }", operationName="Me")))
    assert dict(got.params) == {"operationName": "Me", "operations": ("github.graphql.query",)}
    assert GH.classify(view("GET", "/graphql")).name == "github.unknown.get"


def test_graphql_on_enterprise_server_sits_beside_the_rest_prefix() -> None:
    ghe = GitHubConnector("ghe", ("github.example.com",), base_path="/api/v3")
    body = gql("mutation { deleteRef(input: {}) { clientMutationId } }")
    assert ghe.classify(view("POST", "/api/graphql", body, host="github.example.com")).name == \
        "github.graphql.mutation.deleteRef"
    assert ghe.classify(view("POST", "/api/v3/graphql", body, host="github.example.com")).name == \
        "github.unknown.post"
    assert GH.classify(view("POST", "/api/graphql", body)).name == "github.unknown.post"


def test_graphql_catalogue_and_open_prefix() -> None:
    for name in ("mergePullRequest", "createPullRequest", "closePullRequest", "deleteRef", "updateRef",
                 "createRef", "addComment", "deleteRepository", "updateBranchProtectionRule",
                 "deleteBranchProtectionRule", "createIssue", "closeIssue", "addPullRequestReview"):
        assert f"github.graphql.mutation.{name}" in GH.actions
    assert GH.open_prefixes == frozenset({"github.graphql.mutation."})
    assert GH.accepts_action("github.graphql.mutation.anythingAtAll")
    assert GH.accepts_prefix("github.graphql.mutation.")
    assert not GH.accepts_action("github.graphql.other")
    assert all(risk in ("medium", "high", "critical") for risk in GITHUB_MUTATIONS.values())
    assert all(name.startswith(("delete", "merge")) <= (risk in ("high", "critical"))
               for name, risk in GITHUB_MUTATIONS.items())
