"""The permissions and policies builder: a form (scope, rules with field / operator / value, decision, reason)
turned into a ``[[policy]]`` table, checked and written by the same operations ``tf permissions import`` and
``tf permissions simulate`` call.

The form becomes TOML first (``tomli_w``), then the whole document (every permission, every other policy,
the new one) goes to ``permissions.import``, which validates it whole before anything is written: a policy
that does not validate is never written, and its error names the line of the document shown beside the form.
"Simulate" sends the same document to ``permissions.simulate`` over the last seven days of traffic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import tomli_w
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field
from trustfence.agent.config import ConfigError, dump_permissions
from trustfence.agent.ops import OpError
from trustfence.agent.ops import analytics as analytics_ops
from trustfence.agent.ops import policy as policy_ops
from trustfence.dashboard.guard import Principal, Refused
from trustfence.policy import OPERATORS, VERDICTS, AllOf, AnyOf, Policy, PolicyError, Rule, dump_policies

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["DECISIONS", "DOCUMENT", "MAX_RULES", "OPERATOR_NAMES", "SCOPES", "Draft", "Invalid", "PolicyBody", "PolicyBuilder", "Rejected", "api", "numbered"]

DOCUMENT = "dashboard-policy.toml"
"""The name the candidate document goes by in error messages and in the audit event."""
MAX_RULES = 20
SCOPES = ("gateways", "connectors", "actions", "environments")


class Invalid(ValueError):
    """The form itself cannot become a policy (a field left empty, a rule without an operator)."""


@dataclass
class Rejected:
    """A document the operation refused: the reason and the 1-based line of ``document`` it names (0: none)."""

    reason: str
    line: int
    document: str


@dataclass
class Draft:
    """What the form says, as typed: scope lists are comma separated; a rule's value is JSON when it reads as
    JSON (``10000``, ``true``, ``["a", "b"]``) and text otherwise."""

    id: str = ""
    decision: str = "deny"
    reason: str = ""
    combine: str = "all"  # all | any: how the rules join
    scope: dict[str, str] = field(default_factory=dict)
    rules: list[tuple[str, str, str]] = field(default_factory=list)  # (field, operator, value)
    approval_timeout: str = ""  # require_approval: seconds to wait ("": the default)
    approver_role: str = ""  # require_approval: the Unix group whose members may answer ("": root only)

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> Draft:
        def get(k: str) -> str:
            return str(form.get(k) or "").strip()[:500]

        rules = [(get(f"field_{i}"), get(f"operator_{i}"), get(f"value_{i}")) for i in range(MAX_RULES)]
        return cls(get("id"), get("decision") or "deny", get("reason"), get("combine") or "all",
                   {k: get(k) for k in SCOPES}, [r for r in rules if r[0] or r[2]], get("approval_timeout"),
                   get("approver_role"))

    @classmethod
    def from_policy(cls, p: Policy) -> Draft | None:
        """A running policy as the form shows it, to edit; None when the form cannot hold it (nested
        conditions, ``not``, ``grants``, a risk score): such a policy is edited in policies.toml."""
        w = p.when
        if isinstance(w, Rule):
            rules, combine = [w], "all"
        elif isinstance(w, (AllOf, AnyOf)) and all(isinstance(c, Rule) for c in w.conditions):
            rules, combine = [c for c in w.conditions if isinstance(c, Rule)], "all" if isinstance(w, AllOf) else "any"
        elif w is None:
            rules, combine = [], "all"
        else:
            return None
        if p.grants or p.risk_score is not None or len(rules) > MAX_RULES:
            return None
        a = p.approval
        return cls(p.id, p.decision, p.reason, combine, {k: ", ".join(getattr(p, k)) for k in SCOPES},
                   [(r.field, r.operator, "" if r.value is None else json.dumps(
                       list(r.value) if isinstance(r.value, tuple) else r.value)) for r in rules],
                   str(a.timeout) if a else "", a.approver_role if a else "")

    def table(self) -> dict[str, Any]:
        """The ``[[policy]]`` table (not yet validated beyond what a form can get wrong)."""
        if not self.id:
            raise Invalid("give the policy an id (letters, digits, - and _)")
        t: dict[str, Any] = {"id": self.id}
        for k in SCOPES:
            items = [x.strip() for x in self.scope.get(k, "").split(",") if x.strip()]
            if items:
                t[k] = items
        t["decision"] = self.decision
        if self.reason:
            t["reason"] = self.reason
        rules = []
        for n, (fld, op, value) in enumerate(self.rules, 1):
            if not fld or not op:
                raise Invalid(f"rule {n}: a rule needs a field and an operator")
            rules.append({"field": fld, "operator": op, **({} if op.endswith("exists") else {"value": _value(value)})})
        if self.combine not in ("all", "any"):
            raise Invalid(f"rules join with all or any, got {self.combine!r}")
        if self.approval_timeout or self.approver_role:
            if self.decision != "require_approval":
                raise Invalid("approval timeout and approver role go with the decision require_approval")
            timeout = _value(self.approval_timeout) if self.approval_timeout else None
            t["approval"] = {**({"timeout": timeout} if timeout is not None else {}),
                             **({"approver_role": self.approver_role} if self.approver_role else {})}
        if len(rules) == 1:
            t["when"] = rules[0]
        elif rules:
            t["when"] = {self.combine: rules}
        return t


def _value(text: str) -> Any:
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if isinstance(v, (int, float, bool, str, list)) else text


def _line(e: Exception) -> int:
    line = getattr(e, "line", None)
    if isinstance(line, int):
        return line
    head = str(e).split(": ", 1)[0]  # "file:line" in an OpError's message
    tail = head.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PolicyBuilder:
    """Reads the running policies; builds, checks, simulates and writes a candidate document."""

    def __init__(self, d: Daemon) -> None:
        self.d = d

    def listing(self) -> list[dict[str, Any]]:
        return [{"id": p.id, "decision": p.decision, "reason": p.reason,
                 "scope": {k: list(getattr(p, k)) for k in SCOPES if getattr(p, k)},
                 "toml": dump_policies([p]), "editable": Draft.from_policy(p) is not None}
                for p in self.d.state.policy.policies]

    def draft_of(self, policy_id: str) -> Draft | None:
        p = next((x for x in self.d.state.policy.policies if x.id == policy_id), None)
        return Draft.from_policy(p) if p is not None else None

    def document(self, draft: Draft | None = None, drop: str = "") -> str:
        """Every permission and policy now running, without policy ``drop`` or the draft's id, then the draft."""
        pol = self.d.state.policy
        skip = {drop, draft.id if draft else ""} - {""}
        kept = [p for p in pol.policies if p.id not in skip]
        text = dump_permissions(pol.permissions)
        if kept:
            text += "\n" + dump_policies(kept)
        if draft is not None:
            text += "\n" + tomli_w.dumps({"policy": [draft.table()]})
        return text

    async def simulate(self, document: str, days: int = 7) -> Rejected | dict[str, Any]:
        """What would change over the last ``days`` of traffic (the candidate is validated first)."""
        try:
            return await analytics_ops.permissions_simulate(self.d, {"document": document, "file": DOCUMENT,
                                                                     "since": f"{days}d", "uid": 0})
        except (OpError, ConfigError, PolicyError) as e:
            return Rejected(str(e), _line(e), document)

    async def write(self, p: Principal, document: str, what: str) -> Rejected | dict[str, Any]:
        """Replace permissions and policies with ``document`` through ``permissions.import`` (admin)."""
        p.need("admin", "changing policies")
        try:
            return await policy_ops.permissions_import(self.d, {"text": document, "name": DOCUMENT, "uid": 0,
                                                                "by": f"{p.who}: {what}"})
        except (OpError, ConfigError, PolicyError) as e:
            return Rejected(str(e), _line(e), document)


def numbered(document: str, bad: int = 0) -> Sequence[tuple[int, str, bool]]:
    """(line number, text, is the line an error names) for showing a document beside its error."""
    return [(n, text, n == bad) for n, text in enumerate(document.splitlines(), 1)]


OPERATOR_NAMES: tuple[str, ...] = tuple(OPERATORS)
DECISIONS: tuple[str, ...] = tuple(VERDICTS)


class RuleBody(BaseModel):
    field: str = Field(max_length=200, description="action, host, path, method, ..., or params.<name>")
    operator: str = Field(max_length=40, description="equals, in, contains, matches, gt, exists, ...")
    value: Any = Field(None, description="a string, number, boolean or list (none for exists / not_exists)")


class PolicyBody(BaseModel):
    id: str = Field(max_length=64, description="unique name; rule id policy:<id>")
    gateways: list[str] = Field(default_factory=list, max_length=100, description="empty: any")
    connectors: list[str] = Field(default_factory=list, max_length=100, description="empty: any")
    actions: list[str] = Field(default_factory=list, max_length=100, description="patterns; empty: any")
    environments: list[str] = Field(default_factory=list, max_length=100, description="empty: any")
    rules: list[RuleBody] = Field(default_factory=list, max_length=MAX_RULES)
    combine: str = Field("all", description="all | any: how the rules join")
    decision: str = Field("deny", description="allow | deny | require_approval")
    reason: str = Field("", max_length=500)
    approval_timeout: int | None = Field(None, description="require_approval: seconds to wait for a human")
    approver_role: str = Field("", max_length=64, description="require_approval: the Unix group that answers")

    def draft(self) -> Draft:
        return Draft(self.id, self.decision, self.reason, self.combine,
                     {k: ",".join(getattr(self, k)) for k in SCOPES},
                     [(r.field, r.operator, json.dumps(r.value)) for r in self.rules],
                     "" if self.approval_timeout is None else str(self.approval_timeout), self.approver_role)


api = APIRouter(prefix="/api")


def _builder(request: Request) -> PolicyBuilder:
    return PolicyBuilder(request.app.state.service.d)


def _user(request: Request) -> Principal:
    from trustfence.dashboard.app import required

    return required(request)


def _candidate(request: Request, body: PolicyBody) -> str:
    try:
        return _builder(request).document(body.draft())
    except Invalid as e:
        raise Refused(400, str(e)) from None


def _answer(done: Rejected | dict[str, Any]) -> dict[str, Any]:
    if isinstance(done, Rejected):
        raise PolicyRefused(done)
    return done


class PolicyRefused(Refused):
    """A candidate the operation refused: 400 with the reason (``Refused``'s handler answers it)."""

    def __init__(self, r: Rejected) -> None:
        super().__init__(400, f"not written: {r.reason}" + (f" (line {r.line} of the document)" if r.line else ""))


@api.get("/policies")
async def policies(request: Request, p: Annotated[Principal, Depends(_user)]) -> dict[str, Any]:
    """The conditional policies now running, each with its TOML."""
    return {"policies": _builder(request).listing()}


@api.post("/policies/simulate")
async def simulate_policy(request: Request, p: Annotated[Principal, Depends(_user)],
                          body: PolicyBody) -> dict[str, Any]:
    """What the running policies plus this one would change over the last 7 days of traffic (nothing written)."""
    return _answer(await _builder(request).simulate(_candidate(request, body)))


@api.post("/policies")
async def write_policy(request: Request, p: Annotated[Principal, Depends(_user)], body: PolicyBody,
                       x_csrf_token: Annotated[str | None, Header(alias="X-CSRF-Token")] = None) -> dict[str, Any]:
    """Add or replace (same id) a policy (admin); validated whole with every permission and policy first."""
    p.check_csrf(x_csrf_token)
    p.need("admin", "changing policies")
    return _answer(await _builder(request).write(p, _candidate(request, body), f"policy {body.id} written"))


@api.delete("/policies/{policy_id}")
async def delete_policy(request: Request, p: Annotated[Principal, Depends(_user)], policy_id: str,
                        x_csrf_token: Annotated[str | None, Header(alias="X-CSRF-Token")] = None) -> dict[str, Any]:
    """Remove a policy (admin)."""
    p.check_csrf(x_csrf_token)
    p.need("admin", "changing policies")
    b = _builder(request)
    if policy_id not in {x.id for x in b.d.state.policy.policies}:
        raise Refused(404, f"no policy {policy_id[:64]!r}")
    return _answer(await b.write(p, b.document(drop=policy_id), f"policy {policy_id} removed"))
