"""GitHub's git and download hosts: git over HTTPS on ``github.com`` and the hosts that serve files.

Git's smart HTTP protocol, on ``github.com`` (and on a GitHub Enterprise Server host, at the same paths beside
its ``/api/v3``), with or without the ``.git`` suffix on the repository:

- ``GET /<owner>/<repo>/info/refs?service=git-upload-pack`` and ``POST .../git-upload-pack`` (clone, fetch,
  pull) are ``github.git.fetch`` (low); ``info/refs`` without a service (the old "dumb" listing) too.
- ``GET .../info/refs?service=git-receive-pack`` (a push's ref discovery) and ``POST .../git-receive-pack``
  (the push) are ``github.git.push`` (high). ``info/refs`` naming any other service is
  ``github.unknown.get``; naming both (a repeated ``service``) counts as the push.

A push's body is read (``gitproto``, ``gitpack``) into parameters a policy can test: ``refs`` (the full names
of the refs it updates, in request order: ``refs/heads/main``), ``branches`` and ``tags`` (the same refs under
``refs/heads/`` and ``refs/tags/``, short: ``main``, ``v1.0``), ``force`` (true when any update of an existing ref is not proven a fast-forward by
the commits the push carries: moving a branch back, onto rewritten history, onto a commit the pack does not
carry, or moving a tag), ``delete`` (true when any ref is deleted) and ``updates`` (per ref: ``ref``, ``old``,
``new``, and ``type`` ``create`` / ``delete`` / ``fast_forward`` / ``force``). A body that cannot be read as a
push (cut before its commands end, malformed pkt-lines, a signed push, an unknown content encoding) is the
most dangerous push: ``force`` and ``delete`` true, and every push field (``refs``, ``branches``, ``tags``,
``force``, ``delete``, ``updates``) unavailable, so every policy condition on them fails closed (a deny applies, an allow does not).

Git LFS's batch request (``POST .../info/lfs/objects/batch``) is ``github.lfs.download`` (low) when its body
says ``"operation": "download"``, else ``github.lfs.upload`` (medium); the transfers themselves go to storage
hosts this connector does not cover.

Downloads (all ``low``): ``github.archive.download`` (``codeload.github.com/<owner>/<repo>/<format>/<ref>``,
``github.com/<owner>/<repo>/archive/<ref>``), ``github.raw.read`` (``raw.githubusercontent.com``,
``github.com/<owner>/<repo>/raw/<ref>``), ``github.release.asset.download``
(``github.com/<owner>/<repo>/releases/download/<tag>/<name>`` and the storage hosts it redirects to).
On ``raw.githubusercontent.com`` the ref is the first segment after the repository; a ref with a slash in it
spills into ``path``. ``owner`` and ``repo`` are lower case (GitHub's are not case-sensitive, so
``WIDGETS.git`` must not slip past a policy on ``widgets``), without the ``.git`` suffix.
"""

from __future__ import annotations

from collections.abc import Mapping

from trustfence.connectors.base import Action, RequestView, Risk, Route, Router
from trustfence.connectors.gitpack import commit_parents, descends_from
from trustfence.connectors.gitproto import PushError, PushRequest, parse_push

__all__ = ["DOWNLOAD_HOSTS", "GIT_ROUTES", "GIT_SERVICES", "HOST_ROUTES", "git_action", "host_action"]

_NS = "github"
_REPO = "/{owner}/{repo}"


def _lfs_download(body: Mapping[str, object]) -> bool:
    return body.get("operation") == "download"


GIT_ROUTES: tuple[Route, ...] = (
    Route("GET", _REPO + "/info/refs", "git.fetch", "low"),  # the service query decides: see GIT_SERVICES
    Route("POST", _REPO + "/git-upload-pack", "git.fetch", "low"),
    Route("POST", _REPO + "/git-receive-pack", "git.push", "high"),
    # Git LFS asks where to move large files; anything but a readable download is an upload
    Route("POST", _REPO + "/info/lfs/objects/batch", "lfs.download", "low", when=_lfs_download,
          body_params=("operation",)),
    Route("POST", _REPO + "/info/lfs/objects/batch", "lfs.upload", "medium", body_params=("operation",)),
)
"""Git smart HTTP, wherever a GitHub host serves it (github.com, an Enterprise Server host)."""

_WEB_ROUTES: tuple[Route, ...] = (
    Route("GET", _REPO + "/archive/{ref+}", "archive.download", "low"),
    Route("GET", _REPO + "/raw/{path+}", "raw.read", "low"),
    Route("GET", _REPO + "/releases/download/{tag}/{name}", "release.asset.download", "low"),
)

_ASSET_ROUTES: tuple[Route, ...] = (Route("GET", "/{path+}", "release.asset.download", "low"),)

HOST_ROUTES: Mapping[str, tuple[Route, ...]] = {
    "github.com": GIT_ROUTES + _WEB_ROUTES,
    "codeload.github.com": tuple(Route("GET", f"{_REPO}/{fmt}/{{ref+}}", "archive.download", "low")
                                 for fmt in ("tar.gz", "zip", "legacy.tar.gz", "legacy.zip")),
    "raw.githubusercontent.com": (Route("GET", _REPO + "/{ref}/{path+}", "raw.read", "low"),),
    "objects.githubusercontent.com": _ASSET_ROUTES,
    "release-assets.githubusercontent.com": _ASSET_ROUTES,
}
"""The route table of each public host other than the REST API's: on these hosts nothing else applies."""

DOWNLOAD_HOSTS: tuple[str, ...] = tuple(HOST_ROUTES)

GIT_SERVICES: Mapping[str, tuple[str, Risk]] = {"git-upload-pack": ("git.fetch", "low"),
                                                "git-receive-pack": ("git.push", "high")}
"""``info/refs?service=NAME``: the action and risk the discovery of each service is."""

_ROUTERS = {host: Router(_NS, routes) for host, routes in HOST_ROUTES.items()}
_GIT_ROUTER = Router(_NS, GIT_ROUTES)
_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})  # the ones git http-backend reads the way we do
_PUSH_FIELDS = frozenset({"refs", "branches", "tags", "force", "delete", "updates"})


def host_action(connector: str, view: RequestView) -> Action | None:
    """The Action for a request on one of ``HOST_ROUTES``' hosts; None when the host is not one of them (a
    request on one of them that matches no route is left to the caller's unknown action: None too)."""
    router = _ROUTERS.get(view.host)
    return None if router is None else _finish(connector, view, router)


def git_action(connector: str, view: RequestView, path: str | None = None) -> Action | None:
    """The Action for a git smart HTTP request at ``path`` (default: the view's), or None."""
    return _finish(connector, view, _GIT_ROUTER, path)


def _finish(connector: str, view: RequestView, router: Router, path: str | None = None) -> Action | None:
    found = router.find(view, path)
    if found is None:
        return None
    params = found.params
    for key in ("owner", "repo"):  # GitHub's names are case-insensitive: a policy compares lower case
        value = params.get(key)
        if isinstance(value, str):
            params[key] = value.lower()
    repo = params.get("repo")
    if isinstance(repo, str) and repo.endswith(".git") and len(repo) > 4:  # after lower(): .GIT too
        params["repo"] = repo[:-4]
    name, risk = found.name, found.risk
    if name == f"{_NS}.git.fetch" and view.method == "GET":  # info/refs: the service names the operation
        services = [v for k, v in view.query if k == "service"]
        if any(s not in GIT_SERVICES for s in services):
            return None
        if services:  # a repeated service naming both is the push
            picked = [GIT_SERVICES[s] for s in services]
            verb, risk = next((p for p in picked if p[1] == "high"), picked[0])
            name = f"{_NS}.{verb}"
        params["service"] = services[-1] if services else ""
    elif name == f"{_NS}.git.push":
        params, unavailable = _push_params(view, params)
        return Action(name, connector, risk, params, unavailable)
    return Action(name, connector, risk, params)


def _push_params(view: RequestView, params: dict[str, object]) -> tuple[dict[str, object], frozenset[str]]:
    """The push's parameters, or its most dangerous reading and the fields that could not be read."""
    encoding = view.headers.get("content-encoding", "").strip()
    try:
        if encoding not in _ENCODINGS:
            raise PushError(f"content encoding {encoding[:40]!r} is not read")
        push = parse_push(view.body)
    except PushError as e:
        if view.body_complete:
            reason = str(e)
        else:
            reason = f"the body is over the inspection bound ({e})"
        return {**params, "force": True, "delete": True, "error": reason}, _PUSH_FIELDS
    return {**params, **_describe(push, view.body_complete)}, frozenset()


def _describe(push: PushRequest, pack_complete: bool) -> dict[str, object]:
    parents = None
    updates: list[dict[str, str]] = []
    for u in push.updates:
        kind: str = u.kind
        if kind == "update":
            if parents is None:  # read the pack once, and only when an existing ref moves
                parents = commit_parents(push.pack, len(u.old)) if push.pack else {}
            kind = "fast_forward" if descends_from(parents, u.new, u.old) else "force"
        updates.append({"ref": u.ref, "old": u.old, "new": u.new, "type": kind})
    force = any(u["type"] == "force" for u in updates)
    refs = tuple(dict.fromkeys(u.ref for u in push.updates))
    out: dict[str, object] = {
        "refs": refs,
        "branches": tuple(r.removeprefix("refs/heads/") for r in refs if r.startswith("refs/heads/")),
        "tags": tuple(r.removeprefix("refs/tags/") for r in refs if r.startswith("refs/tags/")),
        "force": force,
        "delete": any(u["type"] == "delete" for u in updates),
        "updates": tuple(updates),
    }
    if force and not pack_complete:
        out["note"] = "the pack is over the inspection bound: only the commits before the cut were read"
    return out
