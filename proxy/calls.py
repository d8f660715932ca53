"""Calls that do not arrive as HTTP (a tool call relayed on stdio by ``tf mcp wrap``), decided the way the
enforcer's addons decide a request: the same state, the same checks, in the same order.

Rate limit (the gateway's budget) -> kill switch (all, gateway) -> the action's budgets -> the connector's kill
switch -> permissions and policies (``decide_all``) -> the gateway's enforcement level -> a human, when the
decision is ``require_approval``. Each step reads the same ``EnforcerState`` the addons read, so a
``tf kill-switch``, a rate limit, a level or a permission applies to these calls exactly as to HTTP. A held call
waits in the same approval queue (``tf approvals approve ID``), bound to the digest of the exact call.

``decide_call`` never raises for a decision: anything unexpected is a deny with the reason (fail closed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from trustfence.connectors import Action
from trustfence.policy import Decision, Facts, decide_all, matched_policies
from trustfence.proxy.holding import approved_decision, hold
from trustfence.proxy.holds import Held, request_digest
from trustfence.proxy.state import EnforcerState, Gateway
from trustfence.store import StoreFull, TrafficRow

__all__ = ["Call", "Outcome", "changed_since", "decide_call", "policy_decision", "record_call"]

log = logging.getLogger("trustfence.enforcer")


@dataclass(frozen=True, slots=True)
class Call:
    """What is decided: the Action a connector named, and what binds an approval to this exact call.

    ``method``: the protocol's own verb (``tools/call``); ``target``: where it goes (``stdio://SANDBOX/tools``);
    ``body``: the call's canonical bytes (an approval releases only a call with the same digest)."""

    action: Action
    method: str
    target: str
    body: bytes


@dataclass(slots=True)
class Outcome:
    """How a call ended. ``outcome`` is the traffic row's decision: allowed | denied | would_deny |
    would_require_approval | rate_limited. ``forward``: whether the call may reach the server.
    ``allow_with``: what would allow it (a command or a hint); ``retry_after``: seconds, when rate limited."""

    outcome: str
    reason: str
    decision: Decision | None = None
    allow_with: str = ""
    retry_after: int = 0
    approval: str = ""
    level: str = ""  # the gateway's enforcement level when the call was decided ("" before a decision)
    policies: tuple[str, ...] | None = None  # every policy that applied (None: not decided by permissions)

    @property
    def forward(self) -> bool:
        return self.outcome == "allowed" or self.outcome.startswith("would_")


async def decide_call(state: EnforcerState, gw: Gateway, call: Call) -> Outcome:
    """The call's outcome (awaiting a human when a policy asks for one); never raises."""
    try:
        return await _decide(state, gw, call)
    except Exception as e:  # noqa: BLE001 - a failure while deciding must deny, never forward
        log.exception("deciding a %s call failed; denying", call.method)
        return Outcome("denied", f"internal error while deciding: {type(e).__name__}")


async def _decide(state: EnforcerState, gw: Gateway, call: Call) -> Outcome:
    action = call.action
    limited = state.limiter.admit_gateway(gw.name)
    if limited is None and (switch := state.switches.blocking(gw.name)) is not None:
        return Outcome("denied", switch.describe(), allow_with=f"tf kill-switch deactivate --scope {switch.scope} "
                                                                "--reason TEXT")
    limited = limited or state.limiter.admit_action(gw.name, action.name)
    if limited is not None:
        return Outcome("rate_limited", f"rate limit: {limited.limit}", retry_after=limited.retry_after,
                       allow_with="wait retry_after seconds, or raise per_minute under [rate_limit] in config.toml")
    if (switch := state.switches.blocking(gw.name, action.connector)) is not None:
        return Outcome("denied", switch.describe(), allow_with=f"tf kill-switch deactivate --scope {switch.scope} "
                                                                "--reason TEXT")
    decision, policies = policy_decision(state, gw, call)
    level = state.level_of(gw.name)
    outcome = await _enforced(state, gw, call, decision, level)
    outcome.level, outcome.policies = level, policies
    return outcome


def policy_decision(state: EnforcerState, gw: Gateway, call: Call) -> tuple[Decision, tuple[str, ...] | None]:
    """What the permissions and policies in force now say of ``call`` (no brakes, no level), and every policy
    that applied (None when the policy files are rejected)."""
    if state.policy_error:
        return Decision("deny", f"the policy files are rejected, so every request is denied until they "
                                f"validate: {state.policy_error}"), None
    action, now = call.action, time.localtime()
    facts = Facts(gw.name, action.connector, action.name, action.risk, call.method, "", "", action.params,
                  action.unavailable, state.environments.get(gw.name, ""), now.tm_hour * 60 + now.tm_min)
    policy = state.policy
    return decide_all(policy, facts), matched_policies(policy, facts)


def changed_since(state: EnforcerState, gw: Gateway, call: Call, outcome: Outcome) -> str:
    """Why a call decided as ``outcome`` may no longer go ahead under the permissions, policies and level in
    force now (empty: it may). An explicit allow (what earns the credential) must still be an allow, or an
    approval a human gave; a call forwarded by monitor or soft enforcement must still be one the level forwards."""
    decision, _ = policy_decision(state, gw, call)
    verdict, level = decision.verdict, state.level_of(gw.name)
    if verdict == "allow" or (verdict == "require_approval" and outcome.approval):
        return ""
    forwarded = level == "monitor" or (level == "soft_enforce" and verdict == "deny")
    if outcome.outcome != "allowed" and forwarded:
        return ""
    return f"now {verdict.replace('_', ' ')}: {decision.reason}"


async def _enforced(state: EnforcerState, gw: Gateway, call: Call, decision: Decision, level: str) -> Outcome:
    """What the decision does at the gateway's level: forwarded, held for a human, or denied."""
    action = call.action
    if decision.verdict == "allow":
        return Outcome("allowed", decision.reason, decision)
    if level == "monitor" or (level == "soft_enforce" and decision.verdict == "deny"):
        return Outcome(f"would_{decision.verdict}", f"{decision.reason} ({level}: forwarded)", decision)
    if decision.verdict == "require_approval":
        return await _hold(state, gw, call, decision)
    return Outcome("denied", decision.reason, decision, allow_with=_permission_line(gw, action))


def _permission_line(gw: Gateway, action: Action) -> str:
    return (f"tf permissions set --gateway {gw.name} --connector {action.connector} --action '{action.name}' "
            "--decision allow")


async def _hold(state: EnforcerState, gw: Gateway, call: Call, decision: Decision) -> Outcome:
    """Wait for a human, as the Approvals addon does for HTTP (``proxy.holding``): the same queue, the gateway's
    cap, timeouts and answers. No cap per sandbox: a call waiting holds no connection of the enforcer's."""
    what = Held.of(state, gw, call.action, decision, method=call.method, url=call.target,
                   digest=request_digest(call.method, call.target, call.body))
    answer = await hold(state, None, what)
    a = answer.approval
    if answer.kind == "release" and a is not None:
        approved = approved_decision(decision, a)
        return Outcome("allowed", approved.reason, approved, approval=a.id)
    # a call has no status: refused for a full queue (429), it is rate limited and told when to try again
    return Outcome("rate_limited" if answer.status == 429 else answer.outcome, answer.reason, decision,
                   allow_with=answer.allow_with or "", retry_after=answer.retry_after,
                   approval=a.id if a is not None else "")


def record_call(state: EnforcerState, row: TrafficRow, outcome: Outcome) -> Outcome:
    """Journal the call's row; a call that would be forwarded but cannot be recorded is refused instead (the
    row then says so). Every path that decides a call without HTTP records it here."""
    store = state.store
    why = "no store" if store is None else store.unavailable() if outcome.forward else ""
    if why:
        outcome = _unrecorded(row, outcome, f"traffic log unavailable: {why}")
    if store is None:
        return outcome
    try:
        store.submit(row, strict=outcome.forward)
    except StoreFull as e:
        log.error("traffic row %s of a %s call: %s", row.seq, row.scheme, e)
        if outcome.forward:  # the row object is what was queued, if anything was: it says the same
            outcome = _unrecorded(row, outcome, str(e))
    if not outcome.forward and why:
        store.refused += 1
    return outcome


def _unrecorded(row: TrafficRow, outcome: Outcome, why: str) -> Outcome:
    refused = Outcome("denied", f"{why}; refused rather than forwarded unrecorded", outcome.decision)
    row.decision, row.reason, row.status = refused.outcome, refused.reason, 503
    return refused
