"""Permissions, conditional policies and decisions: plain data in, a Decision with a reason out. Pure: no I/O.

Errors::

    PolicyError (ValueError)     a permission, policy or condition that does not validate
    └── PolicyFileError          a policies file that does not: file, line and reason
"""

from __future__ import annotations

from trustfence.policy.conditional import ApprovalSettings, Policy
from trustfence.policy.conditions import FIELDS, OPERATORS, AllOf, AnyOf, Condition, Not, Operator, Rule
from trustfence.policy.engine import (CompiledPolicy, Decision, compile_policy, decide, decide_request,
                                     matched_policies)
from trustfence.policy.evaluate import Facts
from trustfence.policy.files import PolicyFileError, dump_policies, parse_policies
from trustfence.policy.operations import decide_all
from trustfence.policy.model import VERDICTS, Catalogue, Permission, PolicyError, Verdict, validate_pattern

__all__ = [
    "FIELDS",
    "OPERATORS",
    "VERDICTS",
    "AllOf",
    "AnyOf",
    "ApprovalSettings",
    "Catalogue",
    "CompiledPolicy",
    "Condition",
    "Decision",
    "Facts",
    "Not",
    "Operator",
    "Permission",
    "Policy",
    "PolicyError",
    "PolicyFileError",
    "Rule",
    "Verdict",
    "compile_policy",
    "decide",
    "decide_all",
    "decide_request",
    "matched_policies",
    "dump_policies",
    "parse_policies",
    "validate_pattern",
]
