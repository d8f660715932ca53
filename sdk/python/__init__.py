"""The TrustFence advisory SDK: ask the daemon before acting, and let it act (mode A).

    from trustfence.sdk import Client

    tf = Client("http://127.0.0.1:3000", key)          # or Client.from_env(): TF_URL, TF_AGENT_KEY
    r = tf.request_action("github.pr.merge", parameters={"owner": "octo", "repo": "demo", "number": 7})
    if r.pending:
        r = tf.wait_for_approval(r, timeout=300)
    if r.allowed:
        answer = tf.execute(r)                          # the daemon sends it, with the real credential

Standard library only (urllib): it runs wherever the agent does. ``langchain`` and ``crewai`` wrap a
framework's tool so the check runs before the tool's function.

Errors (``TrustFenceError`` and its subclasses): ``AuthError`` (401), ``BadRequest`` (400), ``NotFound``
(404), ``Conflict`` (409), ``RateLimited`` (429 after the retries), ``Unavailable`` (503, or no answer).
A denied action is not an error: ``ActionResult.denied`` says so, with the reason.
"""

from __future__ import annotations

from trustfence.sdk.client import (
    ActionResult,
    AuthError,
    BadRequest,
    Client,
    Conflict,
    Decision,
    ExecuteResult,
    NotFound,
    RateLimited,
    TrustFenceError,
    Unavailable,
)

__all__ = ["ActionResult", "AuthError", "BadRequest", "Client", "Conflict", "Decision", "ExecuteResult",
           "NotFound", "RateLimited", "TrustFenceError", "Unavailable"]
