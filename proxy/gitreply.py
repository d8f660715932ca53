"""Refusals a git client can show: a denied git request is answered in the form git prints to its user.

git ignores the body of a failed push (``POST .../git-receive-pack`` answered 4xx: "RPC failed; HTTP 403"), so
a denied push is answered as a git server refuses one: HTTP 200 with a receive-pack result that rejects every
ref with the reason, plus the reason and the fix as ``remote:`` lines. git then prints
``! [remote rejected] main -> main (<reason>)`` and exits 1. Any other denied git request (ref discovery, a
fetch) keeps its 403, with a ``text/plain`` body: git prints such a body as ``remote:`` lines. The request is
denied either way: the X-TrustFence-Decision header and the traffic row say so, and nothing reaches upstream.
"""

from __future__ import annotations

from mitmproxy import http

from trustfence.connectors import Action
from trustfence.connectors.gitproto import first_capabilities, push_refusal

__all__ = ["git_refusal"]

_GIT_ACTIONS = ("github.git.",)


def git_refusal(flow: http.HTTPFlow, action: Action | None, status: int, lines: list[str]) -> http.Response | None:
    """The answer to a denied git request (see the module docstring), or None when it is not one."""
    if action is None or not action.name.startswith(_GIT_ACTIONS):
        return None
    req = flow.request
    if req.method == "POST" and req.path.split("?", 1)[0].endswith("/git-receive-pack") and status == 403:
        refs = action.params.get("refs")
        known = tuple(r for r in refs if isinstance(r, str)) if isinstance(refs, tuple) and "refs" not in \
            action.unavailable else None
        body = push_refusal(first_capabilities(req.get_content(strict=False) or b""), known, lines)
        return http.Response.make(200, body, {"Content-Type": "application/x-git-receive-pack-result",
                                              "Cache-Control": "no-cache"})
    return http.Response.make(status, "".join(f"{line}\n" for line in lines),
                              {"Content-Type": "text/plain; charset=utf-8"})
