"""An advisory action spec: what an agent says it is about to do, read and checked before anything is decided.

``{"action_spec": {"type": "github.pr.merge", "resource": {"provider", "account", "target", "environment"},
"parameters": {...}, "risk_hints": {...}}}``. ``type`` names the action as permissions name it; its first part
(``github``) is the connector type's namespace, and ``resource.provider`` may name the configured connector when
several share it. ``parameters`` are what policies test (``params.amount``) and, in mode A, what the request is
built from. ``risk_hints.risk`` may raise the action's risk, never lower it: the connector's table sets the floor.

Pure: ``parse_spec`` and ``resolve`` raise ``SpecError`` with the reason the API answers (400).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustfence.agent.advisory.routes import risk_of
from trustfence.connectors import Action, Connector, ConnectorSet
from trustfence.connectors.protocols import RISK_ORDER
from trustfence.connectors.values import Risk

__all__ = ["BODY_MAX", "PARAMS_MAX", "ActionSpec", "SpecError", "parse_spec", "resolve"]

BODY_MAX = 256 * 1024
"""Largest request body the v1 API reads (bytes); a longer one is refused unread."""
PARAMS_MAX = 64 * 1024
"""Largest ``parameters`` object, as canonical JSON (bytes)."""
_TEXT_MAX = 512  # a resource field
_TYPE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_/:-]+)+$")
_RESOURCE = ("provider", "account", "target", "environment")


class SpecError(ValueError):
    """A spec that cannot be decided: the message is the reason the agent is told."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A checked spec. ``digest``: SHA-256 of its canonical JSON (what a decision token is bound to)."""

    type: str
    resource: Mapping[str, str]
    parameters: Mapping[str, Any]
    risk_hints: Mapping[str, Any] = field(default_factory=dict)

    @property
    def canonical(self) -> bytes:
        return canonical_json({"type": self.type, "resource": dict(self.resource),
                               "parameters": dict(self.parameters), "risk_hints": dict(self.risk_hints)})

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical).hexdigest()


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per value, whoever wrote it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def parse_spec(body: bytes) -> ActionSpec:
    """The spec in a request body, or SpecError saying what is wrong with it."""
    if len(body) > BODY_MAX:
        raise SpecError(f"the request body is {len(body)} bytes; at most {BODY_MAX} are read")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise SpecError(f"the body is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("action_spec"), dict):
        raise SpecError('the body must be a JSON object with an "action_spec" object')
    spec = data["action_spec"]
    unknown = sorted(set(spec) - {"type", "resource", "parameters", "risk_hints"})
    if unknown:
        raise SpecError(f"action_spec has unknown fields: {', '.join(unknown)}")
    kind = spec.get("type")
    if not isinstance(kind, str) or len(kind) > 200 or not _TYPE.match(kind):
        raise SpecError(f"action_spec.type must be an action name such as github.pr.merge, got {kind!r}"[:300])
    resource = spec.get("resource", {})
    if not isinstance(resource, dict):
        raise SpecError("action_spec.resource must be an object")
    for k, v in resource.items():
        if k not in _RESOURCE:
            raise SpecError(f"action_spec.resource has an unknown field {k!r}; known: {', '.join(_RESOURCE)}"[:300])
        if not isinstance(v, str) or len(v) > _TEXT_MAX:
            raise SpecError(f"action_spec.resource.{k} must be text of at most {_TEXT_MAX} characters")
    params = spec.get("parameters", {})
    if not isinstance(params, dict):
        raise SpecError("action_spec.parameters must be an object")
    size = len(canonical_json(params))
    if size > PARAMS_MAX:
        raise SpecError(f"action_spec.parameters is {size} bytes as JSON; at most {PARAMS_MAX} are accepted")
    hints = spec.get("risk_hints", {})
    if not isinstance(hints, dict) or len(canonical_json(hints)) > 4096:
        raise SpecError("action_spec.risk_hints must be an object of at most 4096 bytes as JSON")
    if "risk" in hints and hints["risk"] not in RISK_ORDER:
        raise SpecError(f"action_spec.risk_hints.risk must be one of {', '.join(RISK_ORDER)}")
    return ActionSpec(kind, dict(resource), params, hints)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def resolve(spec: ActionSpec, connectors: ConnectorSet) -> tuple[Connector, Action]:
    """The configured connector the spec's type belongs to, and the Action that is decided."""
    namespace = spec.type.split(".", 1)[0]
    provider = spec.resource.get("provider", "")
    same = [c for c in connectors.by_name.values() if c.namespace == namespace]
    if provider and provider in connectors.by_name and connectors.by_name[provider].namespace == namespace:
        same = [connectors.by_name[provider]]
    elif provider:
        same = [c for c in same if c.type_name == provider]
    if not same:
        raise SpecError(f"unknown action type {spec.type}: no configured connector takes {namespace}.* actions"
                        + (f" as provider {provider!r}" if provider else "")
                        + f" (add one: tf connector add {namespace})")
    if len(same) > 1:
        names = ", ".join(sorted(c.name for c in same))
        raise SpecError(f"several connectors take {namespace}.* actions ({names}): name one in "
                        "action_spec.resource.provider")
    conn = same[0]
    if not conn.accepts_action(spec.type):
        raise SpecError(f"unknown action type {spec.type}: connector {conn.name} (type {conn.type_name}) has no "
                        "such action")
    risk: Risk = risk_of(conn, spec.type)
    hinted = spec.risk_hints.get("risk")
    if isinstance(hinted, str) and hinted in RISK_ORDER and RISK_ORDER[hinted] > RISK_ORDER[risk]:  # type: ignore[index]
        risk = hinted  # type: ignore[assignment]
    return conn, Action(spec.type, conn.name, risk, dict(spec.parameters))
