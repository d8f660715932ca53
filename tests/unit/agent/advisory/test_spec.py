"""Action specs: what is accepted, what is refused with which reason, and the connector and Action they name."""

from __future__ import annotations

import json

import pytest

from trustfence.agent.advisory.spec import PARAMS_MAX, ActionSpec, SpecError, parse_spec, resolve
from trustfence.connectors import ConnectorSet, build_connector


def _body(**spec: object) -> bytes:
    return json.dumps({"action_spec": {"type": "github.pr.merge", **spec}}).encode()


def test_a_spec_is_read_whole() -> None:
    s = parse_spec(_body(resource={"provider": "github", "target": "octo/demo#7"},
                         parameters={"owner": "octo", "repo": "demo", "number": 7}, risk_hints={"risk": "critical"}))
    assert s.type == "github.pr.merge" and s.parameters["number"] == 7 and s.resource["target"] == "octo/demo#7"


def test_the_digest_is_the_canonical_json_whatever_the_key_order() -> None:
    a = ActionSpec("github.pr.merge", {"provider": "github"}, {"b": 1, "a": [1, 2]})
    b = ActionSpec("github.pr.merge", {"provider": "github"}, {"a": [1, 2], "b": 1})
    assert a.digest == b.digest and a.digest != ActionSpec("github.pr.merge", {}, {"b": 2, "a": [1, 2]}).digest


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not JSON"),
    (b"[]", '"action_spec" object'),
    (b'{"action_spec": {"type": "x", "parameters": {"a": NaN}}}', "not JSON"),
    (_body(type="no-dot"), "action name"),
    (_body(type=5), "action name"),
    (_body(parameters=[1]), "parameters must be an object"),
    (_body(resource={"planet": "mars"}), "unknown field 'planet'"),
    (_body(resource={"target": 7}), "resource.target must be text"),
    (_body(extra=1), "unknown fields: extra"),
    (_body(risk_hints={"risk": "tiny"}), "risk_hints.risk"),
    (_body(parameters={"blob": "x" * (PARAMS_MAX + 1)}), "at most 65536"),
    (b"{" + b" " * (300 * 1024) + b"}", "at most 262144"),
])
def test_bad_specs_are_refused_with_the_reason(body: bytes, words: str) -> None:
    with pytest.raises(SpecError, match=None) as e:
        parse_spec(body)
    assert words in str(e.value)


def _set(*specs: tuple[str, str]) -> ConnectorSet:
    return ConnectorSet(build_connector(name, kind) for name, kind in specs)


def test_the_type_names_the_connector_and_the_route_sets_the_risk_floor() -> None:
    conn, action = resolve(ActionSpec("github.pr.merge", {}, {"number": 7}), _set(("github", "github")))
    assert conn.name == "github" and action.name == "github.pr.merge" and action.risk == "high"
    assert action.params == {"number": 7}
    _, lowered = resolve(ActionSpec("github.pr.read", {}, {}, {"risk": "low"}), _set(("github", "github")))
    assert lowered.risk == "low"
    _, raised = resolve(ActionSpec("github.pr.read", {}, {}, {"risk": "critical"}), _set(("github", "github")))
    assert raised.risk == "critical"
    _, not_lowered = resolve(ActionSpec("github.repo.delete", {}, {}, {"risk": "low"}), _set(("github", "github")))
    assert not_lowered.risk == "critical"


def test_unknown_types_and_ambiguous_connectors_are_refused() -> None:
    with pytest.raises(SpecError, match="unknown action type github.pr.explode"):
        resolve(ActionSpec("github.pr.explode", {}, {}), _set(("github", "github")))
    with pytest.raises(SpecError, match="no configured connector takes stripe"):
        resolve(ActionSpec("stripe.refund.create", {}, {}), _set(("github", "github")))
    two = _set(("stripe", "stripe"))
    two = ConnectorSet([build_connector("live", "stripe", ("api.stripe.com",)),
                        build_connector("test", "stripe", ("stripe.test",))])
    with pytest.raises(SpecError, match="several connectors"):
        resolve(ActionSpec("stripe.refund.create", {}, {}), two)
    conn, _ = resolve(ActionSpec("stripe.refund.create", {"provider": "test"}, {}), two)
    assert conn.name == "test"
