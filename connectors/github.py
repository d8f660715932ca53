"""The GitHub connector: REST API requests to ``api.github.com`` become ``github.<resource>.<verb>`` actions.

The route table ``GITHUB_ROUTES`` is data: one ``Route`` per (method, path template), tried in order, first
match wins. Routes with a body predicate (``when``) come before their plain twin, so a PATCH with
``state=closed`` is ``pr.close`` rather than ``pr.update``. Literal segments that share a position with a
parameter (``/pulls/comments`` vs ``/pulls/{number}``) are listed before the parameter route.

Risk levels: reads are ``low``; creates and updates ``medium``; merges, deletes, and changes that grant
access, run code or weaken protections are ``high``; deleting or transferring a repository is ``critical``.

GraphQL (``POST /graphql``; ``/api/graphql`` on Enterprise Server) is read from the document, not the table:
``github.graphql.query``, ``github.graphql.subscription``, ``github.graphql.mutation.<field>`` for each
mutation field, ``github.graphql.invalid`` for a body that cannot be read (see ``connectors.graphql``). The
mutation catalogue is open-ended, so ``actions`` lists the well-known mutations of ``GITHUB_MUTATIONS`` and
``open_prefixes`` declares ``github.graphql.mutation.``: any other field is still emitted, at high risk.

Git over HTTPS (``github.git.fetch``, ``github.git.push`` with the pushed refs as parameters) and the download
hosts (``codeload.github.com``, ``raw.githubusercontent.com``, release asset storage) are read by
``connectors.githost``. On ``github.com`` and the download hosts only their own tables apply, never the REST
table. On any other host (the API's, an Enterprise Server's) a request the REST table and GraphQL do not name
is tried as git smart HTTP, which Enterprise Server serves on its own host beside the API
(``/<owner>/<repo>.git/info/refs``, outside ``/api/v3``).

GitHub Enterprise Server serves the REST API under ``/api/v3``: give that as ``base_path``. Requests outside
the base path that are not git, and anything not in the table, become ``github.unknown.<method>`` (high risk,
denied unless allowed).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import replace

from trustfence.connectors.base import (
    Action,
    BodyRule,
    Connector,
    RequestView,
    Risk,
    Route,
    Router,
    clean_base_path,
    under_base,
)
from trustfence.connectors.githost import DOWNLOAD_HOSTS, HOST_ROUTES, git_action, host_action
from trustfence.connectors.graphql import fixed_actions, graphql_action
from trustfence.connectors.protocols import unknown_action, unknown_actions

__all__ = ["GITHUB_MUTATIONS", "GITHUB_ROUTES", "GitHubConnector"]

_R = "/repos/{owner}/{repo}"


def _state_closed(body: Mapping[str, object]) -> bool:
    return body.get("state") == "closed"


def _has_sha(body: Mapping[str, object]) -> bool:
    sha = body.get("sha")
    return isinstance(sha, str) and sha != ""


def _forced(body: Mapping[str, object]) -> bool:
    return body.get("force") in (True, "true")


def _ref_starts(prefix: str) -> BodyRule:
    def rule(body: Mapping[str, object]) -> bool:
        ref = body.get("ref")
        return isinstance(ref, str) and ref.startswith(prefix)

    return rule


_PR_CREATE = ("title", "head", "base", "draft")
_PR_UPDATE = ("title", "state", "base")
_ISSUE_UPDATE = ("title", "state", "state_reason", "labels", "assignees", "milestone")
_FILE = ("message", "branch", "sha")
_REF = ("ref", "sha")
_REF_UPDATE = ("sha", "force")
_REPO_CREATE = ("name", "private", "visibility")
_REPO_UPDATE = ("name", "private", "visibility", "default_branch", "archived")
_RELEASE = ("tag_name", "name", "target_commitish", "draft", "prerelease")
_TEAM = ("name", "privacy", "permission", "repo_names")

GITHUB_ROUTES: tuple[Route, ...] = (
    # --- meta, users, search ---
    Route("GET", "/", "meta.read", "low"),
    Route("GET", "/meta", "meta.read", "low"),
    Route("GET", "/rate_limit", "meta.read", "low"),
    Route("GET", "/user", "user.read", "low"),
    Route("GET", "/users/{username}", "user.read", "low"),
    Route("GET", "/search/{kind}", "search.read", "low"),
    # --- repositories ---
    Route("GET", "/user/repos", "repo.list", "low"),
    Route("GET", "/orgs/{org}/repos", "repo.list", "low"),
    Route("GET", "/users/{username}/repos", "repo.list", "low"),
    Route("POST", "/user/repos", "repo.create", "medium", body_params=_REPO_CREATE),
    Route("POST", "/orgs/{org}/repos", "repo.create", "medium", body_params=_REPO_CREATE),
    Route("POST", "/repos/{template_owner}/{template_repo}/generate", "repo.create", "medium",
          body_params=("owner", *_REPO_CREATE)),
    Route("GET", _R, "repo.read", "low"),
    Route("PATCH", _R, "repo.update", "medium", body_params=_REPO_UPDATE),
    Route("DELETE", _R, "repo.delete", "critical"),
    Route("POST", _R + "/transfer", "repo.transfer", "critical", body_params=("new_owner", "new_name")),
    Route("GET", _R + "/forks", "repo.list", "low"),
    Route("POST", _R + "/forks", "repo.fork", "medium", body_params=("organization", "name")),
    Route("GET", _R + "/tarball", "repo.read", "low"),
    Route("GET", _R + "/tarball/{ref+}", "repo.read", "low"),
    Route("GET", _R + "/zipball", "repo.read", "low"),
    Route("GET", _R + "/zipball/{ref+}", "repo.read", "low"),
    # --- pull requests (literal /pulls/comments before /pulls/{number}) ---
    Route("GET", _R + "/pulls", "pr.list", "low"),
    Route("POST", _R + "/pulls", "pr.create", "medium", body_params=_PR_CREATE),
    Route("GET", _R + "/pulls/comments", "pr.comment.list", "low"),
    Route("PATCH", _R + "/pulls/comments/{comment_id}", "pr.comment.update", "medium"),
    Route("DELETE", _R + "/pulls/comments/{comment_id}", "pr.comment.delete", "high"),
    Route("GET", _R + "/pulls/{number}", "pr.read", "low"),
    Route("PATCH", _R + "/pulls/{number}", "pr.close", "medium", when=_state_closed, body_params=("state",)),
    Route("PATCH", _R + "/pulls/{number}", "pr.update", "medium", body_params=_PR_UPDATE),
    Route("GET", _R + "/pulls/{number}/files", "pr.read", "low"),
    Route("GET", _R + "/pulls/{number}/commits", "pr.read", "low"),
    Route("GET", _R + "/pulls/{number}/reviews", "pr.read", "low"),
    Route("GET", _R + "/pulls/{number}/requested_reviewers", "pr.read", "low"),
    Route("GET", _R + "/pulls/{number}/merge", "pr.read", "low"),
    Route("PUT", _R + "/pulls/{number}/merge", "pr.merge", "high",
          body_params=("merge_method", "sha", "commit_title")),
    Route("PUT", _R + "/pulls/{number}/update-branch", "pr.update", "medium",
          body_params=("expected_head_sha",)),
    Route("POST", _R + "/pulls/{number}/requested_reviewers", "pr.update", "medium",
          body_params=("reviewers", "team_reviewers")),
    Route("POST", _R + "/pulls/{number}/reviews", "pr.review", "medium", body_params=("event", "commit_id")),
    Route("POST", _R + "/pulls/{number}/reviews/{review_id}/events", "pr.review", "medium",
          body_params=("event",)),
    Route("PUT", _R + "/pulls/{number}/reviews/{review_id}/dismissals", "pr.review.dismiss", "high"),
    Route("GET", _R + "/pulls/{number}/comments", "pr.comment.list", "low"),
    Route("POST", _R + "/pulls/{number}/comments", "pr.comment.create", "medium",
          body_params=("path", "commit_id")),
    # --- issues (literal /issues/comments before /issues/{number}) ---
    Route("GET", "/issues", "issue.list", "low"),
    Route("GET", "/user/issues", "issue.list", "low"),
    Route("GET", "/orgs/{org}/issues", "issue.list", "low"),
    Route("GET", _R + "/issues", "issue.list", "low"),
    Route("POST", _R + "/issues", "issue.create", "medium",
          body_params=("title", "labels", "assignees", "milestone")),
    Route("GET", _R + "/issues/comments", "issue.comment.list", "low"),
    Route("GET", _R + "/issues/comments/{comment_id}", "issue.comment.list", "low"),
    Route("PATCH", _R + "/issues/comments/{comment_id}", "issue.comment.update", "medium"),
    Route("DELETE", _R + "/issues/comments/{comment_id}", "issue.comment.delete", "high"),
    Route("GET", _R + "/issues/{number}", "issue.read", "low"),
    Route("PATCH", _R + "/issues/{number}", "issue.close", "medium", when=_state_closed,
          body_params=("state", "state_reason")),
    Route("PATCH", _R + "/issues/{number}", "issue.update", "medium", body_params=_ISSUE_UPDATE),
    Route("GET", _R + "/issues/{number}/comments", "issue.comment.list", "low"),
    Route("POST", _R + "/issues/{number}/comments", "issue.comment.create", "medium"),
    Route("POST", _R + "/issues/{number}/labels", "issue.update", "medium", body_params=("labels",)),
    Route("PUT", _R + "/issues/{number}/labels", "issue.update", "medium", body_params=("labels",)),
    Route("DELETE", _R + "/issues/{number}/labels/{label}", "issue.update", "medium"),
    # --- branches and protection ({branch+}: branch names may contain slashes) ---
    Route("GET", _R + "/branches", "branch.list", "low"),
    Route("GET", _R + "/branches/{branch+}/protection", "branch.protection.read", "low"),
    Route("GET", _R + "/branches/{branch+}/protection/{setting+}", "branch.protection.read", "low"),
    Route("GET", _R + "/branches/{branch+}", "branch.read", "low"),
    Route("PUT", _R + "/branches/{branch+}/protection", "branch.protection.update", "high"),
    Route("PUT", _R + "/branches/{branch+}/protection/{setting+}", "branch.protection.update", "high"),
    Route("POST", _R + "/branches/{branch+}/protection/{setting+}", "branch.protection.update", "high"),
    Route("PATCH", _R + "/branches/{branch+}/protection/{setting+}", "branch.protection.update", "high"),
    Route("DELETE", _R + "/branches/{branch+}/protection", "branch.protection.delete", "high"),
    Route("DELETE", _R + "/branches/{branch+}/protection/{setting+}", "branch.protection.delete", "high"),
    Route("POST", _R + "/branches/{branch+}/rename", "branch.rename", "medium", body_params=("new_name",)),
    Route("POST", _R + "/merges", "branch.merge", "high", body_params=("base", "head")),
    # --- git references and objects ---
    Route("GET", _R + "/git/refs", "ref.read", "low"),
    Route("GET", _R + "/git/refs/{ref+}", "ref.read", "low"),
    Route("GET", _R + "/git/ref/{ref+}", "ref.read", "low"),
    Route("GET", _R + "/git/matching-refs/{ref+}", "ref.read", "low"),
    Route("POST", _R + "/git/refs", "branch.create", "medium", when=_ref_starts("refs/heads/"),
          body_params=_REF),
    Route("POST", _R + "/git/refs", "tag.create", "medium", when=_ref_starts("refs/tags/"), body_params=_REF),
    Route("POST", _R + "/git/refs", "ref.create", "medium", body_params=_REF),
    Route("PATCH", _R + "/git/refs/heads/{branch+}", "branch.force_update", "high", when=_forced,
          body_params=_REF_UPDATE),
    Route("PATCH", _R + "/git/refs/heads/{branch+}", "branch.update", "medium", body_params=_REF_UPDATE),
    Route("PATCH", _R + "/git/refs/{ref+}", "ref.update", "high", body_params=_REF_UPDATE),
    Route("DELETE", _R + "/git/refs/heads/{branch+}", "branch.delete", "high"),
    Route("DELETE", _R + "/git/refs/tags/{tag+}", "tag.delete", "high"),
    Route("DELETE", _R + "/git/refs/{ref+}", "ref.delete", "high"),
    Route("POST", _R + "/git/blobs", "git.object.create", "medium"),
    Route("POST", _R + "/git/trees", "git.object.create", "medium"),
    Route("POST", _R + "/git/commits", "git.object.create", "medium"),
    Route("POST", _R + "/git/tags", "git.object.create", "medium"),
    Route("GET", _R + "/git/blobs/{sha}", "git.object.read", "low"),
    Route("GET", _R + "/git/trees/{sha}", "git.object.read", "low"),
    Route("GET", _R + "/git/commits/{sha}", "git.object.read", "low"),
    Route("GET", _R + "/git/tags/{sha}", "git.object.read", "low"),
    Route("GET", _R + "/tags", "tag.list", "low"),
    # --- commits and statuses ---
    Route("GET", _R + "/commits", "commit.list", "low"),
    Route("GET", _R + "/commits/{ref+}", "commit.read", "low"),
    Route("GET", _R + "/compare/{basehead+}", "commit.read", "low"),
    Route("POST", _R + "/statuses/{sha}", "commit.status.create", "high", body_params=("state", "context")),
    # --- contents ---
    Route("GET", _R + "/readme", "file.read", "low"),
    Route("GET", _R + "/readme/{dir+}", "file.read", "low"),
    Route("GET", _R + "/contents", "file.read", "low"),
    Route("GET", _R + "/contents/{path+}", "file.read", "low"),
    Route("PUT", _R + "/contents/{path+}", "file.update", "medium", when=_has_sha, body_params=_FILE),
    Route("PUT", _R + "/contents/{path+}", "file.create", "medium", body_params=_FILE),
    Route("DELETE", _R + "/contents/{path+}", "file.delete", "high", body_params=_FILE),
    # --- releases (literal /releases/latest before /releases/{release_id}) ---
    Route("GET", _R + "/releases", "release.list", "low"),
    Route("GET", _R + "/releases/latest", "release.read", "low"),
    Route("GET", _R + "/releases/tags/{tag}", "release.read", "low"),
    Route("GET", _R + "/releases/{release_id}", "release.read", "low"),
    Route("GET", _R + "/releases/{release_id}/assets", "release.read", "low"),
    Route("POST", _R + "/releases", "release.create", "medium", body_params=_RELEASE),
    Route("PATCH", _R + "/releases/{release_id}", "release.update", "medium", body_params=_RELEASE),
    Route("DELETE", _R + "/releases/{release_id}", "release.delete", "high"),
    # --- collaborators, webhooks, deploy keys (grant access or open channels: high) ---
    Route("GET", _R + "/collaborators", "collaborator.list", "low"),
    Route("GET", _R + "/collaborators/{username}", "collaborator.list", "low"),
    Route("GET", _R + "/collaborators/{username}/permission", "collaborator.list", "low"),
    Route("PUT", _R + "/collaborators/{username}", "collaborator.add", "high", body_params=("permission",)),
    Route("DELETE", _R + "/collaborators/{username}", "collaborator.remove", "high"),
    Route("GET", _R + "/hooks", "hook.list", "low"),
    Route("GET", _R + "/hooks/{hook_id}", "hook.list", "low"),
    Route("POST", _R + "/hooks", "hook.create", "high", body_params=("name", "events", "active")),
    Route("PATCH", _R + "/hooks/{hook_id}", "hook.update", "high", body_params=("events", "active")),
    Route("DELETE", _R + "/hooks/{hook_id}", "hook.delete", "high"),
    Route("GET", _R + "/keys", "deploy_key.list", "low"),
    Route("POST", _R + "/keys", "deploy_key.create", "high", body_params=("title", "read_only")),
    Route("DELETE", _R + "/keys/{key_id}", "deploy_key.delete", "high"),
    # --- GitHub Actions ---
    Route("GET", _R + "/actions/workflows", "workflow.list", "low"),
    Route("GET", _R + "/actions/workflows/{workflow_id}", "workflow.list", "low"),
    Route("POST", _R + "/actions/workflows/{workflow_id}/dispatches", "workflow.dispatch", "high",
          body_params=("ref", "inputs")),
    Route("GET", _R + "/actions/runs", "workflow.run.list", "low"),
    Route("POST", _R + "/actions/runs/{run_id}/rerun", "workflow.run.rerun", "medium"),
    Route("POST", _R + "/actions/runs/{run_id}/rerun-failed-jobs", "workflow.run.rerun", "medium"),
    Route("POST", _R + "/actions/runs/{run_id}/cancel", "workflow.run.cancel", "medium"),
    Route("GET", _R + "/actions/runs/{run_id}", "workflow.run.read", "low"),
    Route("GET", _R + "/actions/runs/{run_id}/{rest+}", "workflow.run.read", "low"),
    Route("GET", _R + "/actions/secrets", "secret.list", "low"),
    Route("PUT", _R + "/actions/secrets/{secret_name}", "secret.update", "high"),
    Route("DELETE", _R + "/actions/secrets/{secret_name}", "secret.delete", "high"),
    # --- organizations and teams ---
    Route("GET", "/user/orgs", "org.list", "low"),
    Route("GET", "/users/{username}/orgs", "org.list", "low"),
    Route("GET", "/orgs/{org}", "org.read", "low"),
    Route("PATCH", "/orgs/{org}", "org.update", "high",
          body_params=("default_repository_permission", "members_can_create_repositories")),
    Route("GET", "/orgs/{org}/members", "org.member.list", "low"),
    Route("PUT", "/orgs/{org}/memberships/{username}", "org.member.add", "high", body_params=("role",)),
    Route("DELETE", "/orgs/{org}/memberships/{username}", "org.member.remove", "high"),
    Route("DELETE", "/orgs/{org}/members/{username}", "org.member.remove", "high"),
    Route("GET", "/orgs/{org}/teams", "team.list", "low"),
    Route("POST", "/orgs/{org}/teams", "team.create", "high", body_params=_TEAM),
    Route("GET", "/orgs/{org}/teams/{team_slug}", "team.read", "low"),
    Route("PATCH", "/orgs/{org}/teams/{team_slug}", "team.update", "high", body_params=_TEAM),
    Route("DELETE", "/orgs/{org}/teams/{team_slug}", "team.delete", "high"),
    Route("PUT", "/orgs/{org}/teams/{team_slug}/memberships/{username}", "team.member.add", "high",
          body_params=("role",)),
    Route("DELETE", "/orgs/{org}/teams/{team_slug}/memberships/{username}", "team.member.remove", "high"),
    # --- gists (a publishing channel: creating one is high) ---
    Route("GET", "/gists", "gist.list", "low"),
    Route("POST", "/gists", "gist.create", "high", body_params=("public", "description")),
    Route("GET", "/gists/{gist_id}", "gist.read", "low"),
    Route("PATCH", "/gists/{gist_id}", "gist.update", "medium", body_params=("description",)),
    Route("DELETE", "/gists/{gist_id}", "gist.delete", "high"),
)

_ROUTER = Router("github", GITHUB_ROUTES)
_HOST_ACTIONS = frozenset(f"github.{r.action}" for routes in HOST_ROUTES.values() for r in routes)

GITHUB_MUTATIONS: Mapping[str, Risk] = {
    # Well-known GraphQL mutations and their risk, graded like their REST twins. A mutation not listed here is
    # still classified (``github.graphql.mutation.<field>``) at high risk.
    # pull requests
    "createPullRequest": "medium",
    "updatePullRequest": "medium",
    "closePullRequest": "medium",
    "reopenPullRequest": "medium",
    "markPullRequestReadyForReview": "medium",
    "convertPullRequestToDraft": "medium",
    "updatePullRequestBranch": "medium",
    "requestReviews": "medium",
    "addPullRequestReview": "medium",
    "addPullRequestReviewThread": "medium",
    "submitPullRequestReview": "medium",
    "dismissPullRequestReview": "high",
    "mergePullRequest": "high",
    "enablePullRequestAutoMerge": "high",
    "disablePullRequestAutoMerge": "medium",
    "enqueuePullRequest": "high",
    # issues and comments
    "createIssue": "medium",
    "updateIssue": "medium",
    "closeIssue": "medium",
    "reopenIssue": "medium",
    "deleteIssue": "high",
    "transferIssue": "high",
    "addComment": "medium",
    "updateIssueComment": "medium",
    "deleteIssueComment": "high",
    "addLabelsToLabelable": "medium",
    "removeLabelsFromLabelable": "medium",
    "addAssigneesToAssignable": "medium",
    # refs and commits (updateRef can force-move a branch)
    "createRef": "medium",
    "updateRef": "high",
    "updateRefs": "high",
    "deleteRef": "high",
    "createCommitOnBranch": "medium",
    "mergeBranch": "high",
    # protections
    "createBranchProtectionRule": "high",
    "updateBranchProtectionRule": "high",
    "deleteBranchProtectionRule": "high",
    "createRepositoryRuleset": "high",
    "updateRepositoryRuleset": "high",
    "deleteRepositoryRuleset": "high",
    # repositories (GitHub deletes repositories through REST only; the name is listed so a rule can deny it)
    "createRepository": "medium",
    "cloneTemplateRepository": "medium",
    "updateRepository": "medium",
    "archiveRepository": "high",
    "unarchiveRepository": "medium",
    "updateTeamsRepository": "high",
    "deleteRepository": "critical",
    # discussions and stars
    "createDiscussion": "medium",
    "addDiscussionComment": "medium",
    "deleteDiscussion": "high",
    "addStar": "medium",
    "removeStar": "medium",
}

_MUTATION_PREFIX = "github.graphql.mutation."


class GitHubConnector(Connector):
    """``github.<resource>.<verb>`` for the GitHub REST API, ``github.graphql.*`` for its GraphQL endpoint,
    ``github.git.*`` for git over HTTPS and the download actions of ``githost`` on their hosts; unmatched
    requests are ``github.unknown.<method>``.

    ``base_path`` is the REST prefix on GitHub Enterprise Server (``/api/v3``); it is stripped before the
    route table is consulted, and a request outside it is only tried as git smart HTTP. The GraphQL endpoint
    sits beside it (``/api/graphql``).
    """

    type_name = "github"
    namespace = "github"
    default_hosts: tuple[str, ...] = ("api.github.com", *DOWNLOAD_HOSTS)
    open_prefixes = frozenset({_MUTATION_PREFIX})
    # git over HTTPS on github.com takes a token only as Basic credentials, user x-access-token (what GitHub
    # documents for installation and fine-grained tokens, and accepts for classic ones); the download hosts
    # take signed URLs and refuse a second form of authentication: requests there go without our credential.
    basic_auth_hosts = (("github.com", "x-access-token"),)
    no_credential_hosts = frozenset(HOST_ROUTES) - {"github.com"}

    def __init__(self, name: str, hosts: tuple[str, ...], base_path: str = "") -> None:
        super().__init__(name, hosts)
        base = clean_base_path(base_path)
        self.base_path = base
        self.graphql_path = posixpath.dirname(base).rstrip("/") + "/graphql" if base else "/graphql"

    @property
    def actions(self) -> frozenset[str]:
        return (_ROUTER.actions | _HOST_ACTIONS | fixed_actions("github") | {_MUTATION_PREFIX + m for m in GITHUB_MUTATIONS}
                | unknown_actions("github"))

    def parse(self, view: RequestView) -> Action:
        target = view if view.method.isupper() else replace(view, method=view.method.upper())
        if target.host in HOST_ROUTES:
            return host_action(self.name, target) or unknown_action(self.name, "github", view)
        if target.method == "POST" and (target.path.rstrip("/") or "/") == self.graphql_path:
            return graphql_action(self.name, "github", target, GITHUB_MUTATIONS)
        path = under_base(target.path, self.base_path)
        if path is not None:
            found = _ROUTER.match(self.name, target, path)
            if found is not None:
                return found
        return git_action(self.name, target) or unknown_action(self.name, "github", view)
