"""Permissions and decisions: plain data in, a Decision with a reason out. Pure: no I/O."""

from __future__ import annotations

from trustfence.policy.engine import CompiledPolicy, Decision, compile_policy, decide
from trustfence.policy.model import Catalogue, Permission, PolicyError, Verdict, validate_pattern

__all__ = [
    "Catalogue",
    "CompiledPolicy",
    "Decision",
    "Permission",
    "PolicyError",
    "Verdict",
    "compile_policy",
    "decide",
    "validate_pattern",
]
