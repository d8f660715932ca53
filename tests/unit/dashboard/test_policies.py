"""The policy builder's form -> [[policy]] table, as plain values (validation itself is the policy files')."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from trustfence.dashboard.policies import Draft, Invalid, numbered
from trustfence.policy import parse_policies


def test_a_form_becomes_a_policy_the_policy_files_read_back() -> None:
    form = {"id": "big-refunds", "actions": "stripe.refund.*, stripe.charge.*", "gateways": "Bot",
            "decision": "require_approval", "reason": "a human looks", "combine": "any",
            "field_0": "params.amount", "operator_0": "gt", "value_0": "10000",
            "field_1": "params.currency", "operator_1": "in", "value_1": '["usd", "eur"]',
            "field_2": "params.note", "operator_2": "exists", "value_2": ""}
    table = Draft.from_form(form).table()
    assert table["actions"] == ["stripe.refund.*", "stripe.charge.*"] and "connectors" not in table
    assert table["when"]["any"][0] == {"field": "params.amount", "operator": "gt", "value": 10000}
    assert table["when"]["any"][1]["value"] == ["usd", "eur"] and "value" not in table["when"]["any"][2]
    (p,) = parse_policies(tomli_w.dumps({"policy": [table]}), Path("x.toml"))
    assert p.id == "big-refunds" and p.decision == "require_approval"


def test_one_rule_stands_alone_and_text_stays_text() -> None:
    t = Draft.from_form({"id": "x", "field_0": "host", "operator_0": "equals", "value_0": "api.github.com"}).table()
    assert t["when"] == {"field": "host", "operator": "equals", "value": "api.github.com"}
    assert t["decision"] == "deny"


@pytest.mark.parametrize(("form", "message"), [
    ({"decision": "deny"}, "give the policy an id"),
    ({"id": "x", "field_0": "host", "value_0": "a"}, "rule 1: a rule needs a field and an operator"),
    ({"id": "x", "combine": "xor", "field_0": "host", "operator_0": "equals", "value_0": "a"}, "all or any"),
])
def test_a_form_that_cannot_be_a_policy_says_why(form: dict[str, str], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        Draft.from_form(form).table()


def test_the_error_line_is_marked() -> None:
    assert numbered("a\nb\nc", 2) == [(1, "a", False), (2, "b", True), (3, "c", False)]


def test_a_running_policy_comes_back_into_the_form_as_it_was() -> None:
    form = {"id": "held", "connectors": "stripe", "decision": "require_approval", "reason": "a human",
            "combine": "any", "field_0": "params.amount", "operator_0": "gt", "value_0": "10000",
            "field_1": "params.currency", "operator_1": "in", "value_1": '["usd", "eur"]',
            "approval_timeout": "600", "approver_role": "finance"}
    (p,) = parse_policies(tomli_w.dumps({"policy": [Draft.from_form(form).table()]}), Path("x.toml"))
    again = Draft.from_policy(p)
    assert again is not None and again.table() == Draft.from_form(form).table()
    assert again.approver_role == "finance" and again.approval_timeout == "600"


def test_a_nested_policy_is_left_to_the_file() -> None:
    text = ('[[policy]]\nid = "n"\ndecision = "deny"\n[policy.when]\n'
            'not = { field = "host", operator = "equals", value = "a" }\n')
    (p,) = parse_policies(text, Path("x.toml"))
    assert Draft.from_policy(p) is None


def test_approval_settings_go_with_require_approval_only() -> None:
    with pytest.raises(Invalid, match="require_approval"):
        Draft.from_form({"id": "x", "decision": "deny", "approver_role": "finance"}).table()
