"""Conditional policies: a scope, a condition over the request, and the decision when it holds.

A policy is checked when it is built; the engine compiles it once. How policies combine with permissions is
stated once, in ``engine``: deny wins over everything, then require_approval, then allow; a policy only
tightens what permissions allow unless it sets ``grants``.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustfence.policy.conditions import MAX_DEPTH, AllOf, AnyOf, Condition, Not, Rule, condition_depth
from trustfence.policy.model import NAME, VERDICTS, PolicyError, Verdict, validate_name, validate_pattern

__all__ = ["APPROVAL_TIMEOUT", "MAX_TIMEOUT", "ApprovalSettings", "Policy"]

APPROVAL_TIMEOUT = 300
"""Seconds a held request waits for a human when the policy does not say."""
MAX_TIMEOUT = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    """How a request held for approval is handled.

    ``timeout``: seconds to wait for a human before the request is denied; 1 to a week. Left out: 300.
    Example: ``600``.
    ``approver_role``: who may approve, by role name; left out (empty): anyone allowed to approve.
    Example: ``"finance"``.
    """

    timeout: int = APPROVAL_TIMEOUT
    approver_role: str = ""

    def __post_init__(self) -> None:
        t = self.timeout
        if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= MAX_TIMEOUT:
            raise PolicyError(f"approval timeout must be whole seconds from 1 to {MAX_TIMEOUT}, got {t!r}")
        if not isinstance(self.approver_role, str):
            raise PolicyError(f"approver_role must be a string, got {self.approver_role!r}")
        if self.approver_role:
            validate_name("approver_role", self.approver_role)


@dataclass(frozen=True, slots=True)
class Policy:
    """One conditional policy. Applies to a request inside its scope for which ``when`` holds.

    ``id``: unique among the policies, a name (letters, digits, ``_ - .``); decisions cite it as
    ``policy:<id>``. Required. Example: ``"big-refunds"``.
    ``decision``: ``deny``, ``require_approval`` or ``allow``. Required.
    ``reason``: shown to the agent and in the log next to the decision. Left out: the policy id alone.
    Example: ``"refunds over 100 EUR need a human"``.
    ``gateways``: gateway names the policy applies to; left out (empty): every gateway. Example: ``("Bot",)``.
    ``connectors``: configured connector names; left out: every connector. Example: ``("stripe",)``.
    ``actions``: action patterns, as in permissions (``stripe.refund.create``, ``stripe.refund.*``, ``*``);
    left out: every action.
    ``environments``: gateway environments; left out: every environment, including none.
    Example: ``("prod",)``.
    ``when``: the condition; left out: always (the scope alone decides). Example:
    ``AllOf((Rule("params.amount", "gt", 10000), Not(Rule("params.currency", "equals", "usd"))))``.
    ``risk_score``: 0-100, carried on the decision for triage and approvals; left out: none.
    ``approval``: timeout and approver role, for ``require_approval`` only; left out: the enforcer's defaults
    (its configured approval timeout, any approver). Example: ``ApprovalSettings(600, "finance")``.
    ``grants``: for ``allow`` only. Left out (false), an allow policy never changes a verdict: policies only
    tighten. True: it allows a matching request that no permission covers (the default deny); it never
    overrides a permission that denies or requires approval.
    """

    id: str
    decision: Verdict
    reason: str = ""
    gateways: tuple[str, ...] = ()
    connectors: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    when: Condition | None = None
    risk_score: int | None = None
    approval: ApprovalSettings | None = None
    grants: bool = False

    @property
    def rule_id(self) -> str:
        return f"policy:{self.id}"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not NAME.match(self.id):
            raise PolicyError(f"policy id {self.id!r} is not a valid name (letters, digits, '_', '-', '.'; "
                              "1-64 chars)")
        if self.decision not in VERDICTS:
            raise PolicyError(f"decision must be one of {', '.join(VERDICTS)}, got {self.decision!r}")
        if not isinstance(self.reason, str):
            raise PolicyError(f"reason must be a string, got {self.reason!r}")
        for key in ("gateways", "connectors", "actions", "environments"):
            if isinstance(getattr(self, key), list):  # from code: stored as a tuple so the policy is hashable
                object.__setattr__(self, key, tuple(getattr(self, key)))
        names = (("gateways", "gateway"), ("connectors", "connector"), ("environments", "environment"))
        for key, kind in names:
            for name in _names(key, getattr(self, key)):
                validate_name(kind, name)
        for pattern in _names("actions", self.actions):
            validate_pattern(pattern)
        if self.when is not None:
            if not isinstance(self.when, (Rule, AllOf, AnyOf, Not)):
                raise PolicyError(f"when must be a condition, got {self.when!r}")
            if condition_depth(self.when) > MAX_DEPTH:
                raise PolicyError(f"when nests all/any/not deeper than {MAX_DEPTH} levels")
        r = self.risk_score
        if r is not None and (not isinstance(r, int) or isinstance(r, bool) or not 0 <= r <= 100):
            raise PolicyError(f"risk_score must be a whole number from 0 to 100, got {r!r}")
        if self.approval is not None:
            if not isinstance(self.approval, ApprovalSettings):
                raise PolicyError(f"approval must be approval settings, got {self.approval!r}")
            if self.decision != "require_approval":
                raise PolicyError(f"approval applies to decision require_approval only, not {self.decision}")
        if not isinstance(self.grants, bool):
            raise PolicyError(f"grants must be true or false, got {self.grants!r}")
        if self.grants and self.decision != "allow":
            raise PolicyError(f"grants applies to decision allow only, not {self.decision}")


def _names(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{key} must be a list of strings, got {value!r}")
    return value
