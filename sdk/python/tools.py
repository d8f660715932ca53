"""The check a wrapped tool runs before its function: ask, wait for a human if asked to, go on only if allowed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trustfence.sdk.client import ActionResult, Client, TrustFenceError

__all__ = ["ActionDenied", "Check", "check"]

Parameters = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""From the tool's input to the action's parameters (default: the input as it is)."""


class ActionDenied(TrustFenceError):
    """The action was denied (or its approval was refused or never came): ``result`` says why."""

    def __init__(self, result: ActionResult) -> None:
        reason = f"TrustFence denied {result.decision.action or 'the action'}: {result.decision.reason}"
        if result.decision.allow_with:
            reason += f" (allow with: {result.decision.allow_with})"
        super().__init__(403, reason)
        self.result = result


class Check:
    """What a wrapped tool asks before it runs: ``action_type`` with the parameters ``parameters`` makes from
    the tool's input, on ``resource``; a held action waits up to ``approval_timeout`` seconds."""

    def __init__(self, client: Client, action_type: str, *, parameters: Parameters | None = None,
                 resource: Mapping[str, str] | None = None, approval_timeout: float = 300.0) -> None:
        self.client, self.action_type = client, action_type
        self.parameters, self.resource, self.approval_timeout = parameters, resource, approval_timeout

    def __call__(self, tool_input: Mapping[str, Any]) -> ActionResult:
        return check(self.client, self.action_type,
                     self.parameters(tool_input) if self.parameters else dict(tool_input),
                     self.resource, self.approval_timeout)


def check(client: Client, action_type: str, parameters: Mapping[str, Any],
          resource: Mapping[str, str] | None = None, approval_timeout: float = 300.0) -> ActionResult:
    """The allowed result, or ActionDenied."""
    result = client.request_action(action_type, parameters=parameters, resource=resource)
    if result.pending:
        result = client.wait_for_approval(result, approval_timeout)
    if not result.allowed:
        raise ActionDenied(result)
    return result
