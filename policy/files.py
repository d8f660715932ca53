"""The policies file: TOML text in, validated Policies out, and back (export and import round-trip).

One ``[[policy]]`` table per policy::

    [[policy]]
    id = "big-refunds"
    gateways = ["Bot"]                 # optional; every key but id and decision is
    connectors = ["stripe"]
    actions = ["stripe.refund.*"]
    environments = ["prod"]
    decision = "require_approval"      # allow | deny | require_approval
    reason = "refunds over 100 EUR need a human"
    risk_score = 70
    approval = { timeout = 600, approver_role = "finance" }
    grants = false                     # allow only: may allow what no permission covers
    [policy.when]
    all = [ { field = "params.amount", operator = "gt", value = 10000 },
            { not = { field = "params.currency", operator = "equals", value = "usd" } } ]

``when`` is one rule (``{ field, operator, value }``) or a table with exactly one of ``all`` / ``any`` (a list
of conditions) or ``not`` (one condition), nested freely. A ``time_of_day`` value may be written ``"09:00"``
or as a TOML time ``09:00:00``. Errors name the file, the line of the offending ``[[policy]]`` header (or of
the TOML syntax error) and the reason.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomli_w
from trustfence.policy.conditional import ApprovalSettings, Policy
from trustfence.policy.conditions import MAX_DEPTH, AllOf, AnyOf, Condition, Not, Rule
from trustfence.policy.model import PolicyError

__all__ = ["PolicyFileError", "dump_policies", "parse_policies"]

_KEYS = ("id", "gateways", "connectors", "actions", "environments", "decision", "reason", "risk_score",
         "approval", "grants", "when")
_HEADER = re.compile(r"^\s*\[\[\s*policy\s*\]\]\s*(#.*)?$")


class PolicyFileError(PolicyError):
    """A policies file that does not validate: ``str()`` is ``file:line: reason`` (``file: reason`` without a
    line). The caller keeps the policies it was running."""

    def __init__(self, file: str | Path, line: int | None, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        super().__init__(f"{file}:{line}: {reason}" if line else f"{file}: {reason}")


def parse_policies(text: str, path: str | Path) -> tuple[Policy, ...]:
    """Validate policies text as if it were the file ``path`` (errors name that file)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python < 3.14 only puts the position in the message: "... (at line 2, column 5)"
        m = re.search(r"\s*\(at line (\d+), column \d+\)$", str(e))
        line = getattr(e, "lineno", None) or (int(m.group(1)) if m else None)
        msg = getattr(e, "msg", None) or (str(e)[: m.start()] if m else str(e))
        raise PolicyFileError(path, line, f"not valid TOML: {msg}") from None
    except RecursionError:
        raise PolicyFileError(path, None, "not valid TOML: nested too deeply") from None
    lines = text.splitlines()
    for key in data:
        if key != "policy":
            raise PolicyFileError(path, _line(lines, rf"^\s*(\[+\s*)?{re.escape(key)}\b"),
                                  f"unknown key {key!r}: a policies file holds [[policy]] tables")
    rows = data.get("policy", [])
    if not isinstance(rows, list):
        raise PolicyFileError(path, _line(lines, r"^\s*\[?\s*policy\b"), "policy must be an array of tables")
    headers = [i + 1 for i, ln in enumerate(lines) if _HEADER.match(ln)]
    out: list[Policy] = []
    first_line: dict[str, int | None] = {}
    for i, row in enumerate(rows):
        line = headers[i] if i < len(headers) else _line(lines, r"^\s*policy\s*=")
        name = f"policy {row['id']!r}" if isinstance(row, dict) and isinstance(row.get("id"), str) else \
            f"policy #{i + 1}"
        try:
            p = _policy(row)
        except PolicyError as e:
            raise PolicyFileError(path, line, f"{name}: {e}") from None
        if p.id in first_line:
            at = first_line[p.id]
            where = f" (first at line {at})" if at else ""
            raise PolicyFileError(path, line, f"duplicate policy id {p.id!r}{where}")
        first_line[p.id] = line
        out.append(p)
    return tuple(out)


def _line(lines: list[str], pattern: str) -> int | None:
    return next((i + 1 for i, ln in enumerate(lines) if re.match(pattern, ln)), None)


def _policy(row: object) -> Policy:
    if not isinstance(row, dict):
        raise PolicyError(f"must be a table, got {row!r}")
    unknown = [k for k in row if k not in _KEYS]
    if unknown:
        raise PolicyError(f"unknown key {unknown[0]!r}; keys: {', '.join(_KEYS)}")
    missing = [k for k in ("id", "decision") if k not in row]
    if missing:
        raise PolicyError(f"missing {' and '.join(missing)}")
    scope: dict[str, Any] = {}
    for key in ("gateways", "connectors", "actions", "environments"):
        v = row.get(key, [])
        if not isinstance(v, list):
            raise PolicyError(f"{key} must be a list of strings, got {v!r}")
        scope[key] = tuple(v)
    approval = row.get("approval")
    if approval is not None:
        if not isinstance(approval, dict) or set(approval) - {"timeout", "approver_role"}:
            raise PolicyError(f"approval must be a table with timeout and/or approver_role, got {approval!r}")
        approval = ApprovalSettings(**approval)
    when = _condition(row["when"], "when", 1) if "when" in row else None
    return Policy(id=row["id"], decision=row["decision"], reason=row.get("reason", ""), when=when,
                  risk_score=row.get("risk_score"), approval=approval, grants=row.get("grants", False),
                  **scope)


def _condition(data: object, where: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise PolicyError(f"{where}: all/any/not nest deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: a condition is a table ({{ field, operator, value }}, all, any or not), "
                          f"got {data!r}")
    groups = [k for k in ("all", "any", "not") if k in data]
    if groups:
        if len(data) != 1:
            raise PolicyError(f"{where}: a condition has exactly one of all, any, not or a rule; got keys "
                              f"{', '.join(data)}")
        key = groups[0]
        value = data[key]
        if key == "not":
            return Not(_condition(value, f"{where}.not", depth + 1))
        if not isinstance(value, list) or not value:
            raise PolicyError(f"{where}.{key} must be a non-empty list of conditions")
        parts = tuple(_condition(x, f"{where}.{key}[{i}]", depth + 1) for i, x in enumerate(value))
        return AllOf(parts) if key == "all" else AnyOf(parts)
    unknown = [k for k in data if k not in ("field", "operator", "value")]
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r}; a rule has field, operator and value")
    missing = [k for k in ("field", "operator") if k not in data]
    if missing:
        raise PolicyError(f"{where}: a rule needs {' and '.join(missing)}")
    try:
        return Rule(data["field"], data["operator"], _value(data.get("value")))
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None


def _value(v: object) -> Any:
    if isinstance(v, datetime.time):
        if v.second or v.microsecond or v.tzinfo:
            raise PolicyError(f"a time needs no seconds or offset: write \"{v:%H:%M}\", got {v.isoformat()}")
        return v.strftime("%H:%M")  # TOML local time 09:00:00 -> "09:00"
    if isinstance(v, list):
        return tuple(_value(x) for x in v)
    return v


def dump_policies(policies: Iterable[Policy]) -> str:
    """TOML that ``parse_policies`` reads back to equal policies."""
    rows = [_policy_data(p) for p in policies]
    return tomli_w.dumps({"policy": rows}) if rows else "# no policies\n"


def _policy_data(p: Policy) -> dict[str, Any]:
    d: dict[str, Any] = {"id": p.id}
    for key in ("gateways", "connectors", "actions", "environments"):
        if getattr(p, key):
            d[key] = list(getattr(p, key))
    d["decision"] = p.decision
    if p.reason:
        d["reason"] = p.reason
    if p.risk_score is not None:
        d["risk_score"] = p.risk_score
    if p.grants:
        d["grants"] = True
    if p.approval is not None:
        d["approval"] = {"timeout": p.approval.timeout,
                         **({"approver_role": p.approval.approver_role} if p.approval.approver_role else {})}
    if p.when is not None:
        d["when"] = _condition_data(p.when)
    return d


def _condition_data(c: Condition) -> Mapping[str, Any]:
    if isinstance(c, Rule):
        value = list(c.value) if isinstance(c.value, tuple) else c.value
        return {"field": c.field, "operator": c.operator, **({} if value is None else {"value": value})}
    if isinstance(c, Not):
        return {"not": _condition_data(c.condition)}
    return {"all" if isinstance(c, AllOf) else "any": [_condition_data(x) for x in c.conditions]}
