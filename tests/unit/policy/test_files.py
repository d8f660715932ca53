"""The policies file: parsing, the file:line of every error, export and import; and the checks on a Policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.policy import (AllOf, AnyOf, ApprovalSettings, Not, Policy, PolicyError, PolicyFileError,
                               Rule, dump_policies, parse_policies)

EXAMPLE = """\
# policies reviewed in git
[[policy]]
id = "big-refunds"
gateways = ["Bot"]          # optional
connectors = ["stripe"]     # optional
actions = ["stripe.refund.*"]
decision = "require_approval"
reason = "refunds over 100 EUR need a human"
risk_score = 70
approval = { timeout = 600, approver_role = "finance" }
[policy.when]
all = [ { field = "params.amount", operator = "gt", value = 10000 },
        { not = { field = "params.currency", operator = "equals", value = "usd" } } ]

[[policy]]
id = "no-general"
decision = "deny"
when = { field = "params.channel", operator = "in", value = ["#general", "#announcements"] }

[[ policy ]]
id = "night"
environments = ["prod"]
decision = "deny"
when = { any = [ { field = "time_of_day", operator = "lt", value = 06:00:00 },
                 { field = "time_of_day", operator = "gte", value = "22:00" } ] }

[[policy]]
id = "read-only-github"
connectors = ["github"]
actions = ["github.repo.get"]
decision = "allow"
grants = true
when = { field = "method", operator = "equals", value = "GET" }
"""


def test_parse_example() -> None:
    got = parse_policies(EXAMPLE, "policies.toml")
    assert got == (
        Policy("big-refunds", "require_approval", "refunds over 100 EUR need a human", gateways=("Bot",),
               connectors=("stripe",), actions=("stripe.refund.*",),
               when=AllOf((Rule("params.amount", "gt", 10000),
                           Not(Rule("params.currency", "equals", "usd")))),
               risk_score=70, approval=ApprovalSettings(600, "finance")),
        Policy("no-general", "deny", when=Rule("params.channel", "in", ("#general", "#announcements"))),
        Policy("night", "deny", environments=("prod",),
               when=AnyOf((Rule("time_of_day", "lt", "06:00"), Rule("time_of_day", "gte", "22:00")))),
        Policy("read-only-github", "allow", connectors=("github",), actions=("github.repo.get",),
               when=Rule("method", "equals", "GET"), grants=True),
    )


def test_empty_file_has_no_policies() -> None:
    assert parse_policies("", "p.toml") == ()
    assert parse_policies("# nothing yet\n", "p.toml") == ()
    assert parse_policies(dump_policies(()), "p.toml") == ()


def test_round_trip() -> None:
    policies = parse_policies(EXAMPLE, "policies.toml")
    text = dump_policies(policies)
    assert parse_policies(text, "export.toml") == policies
    assert dump_policies(parse_policies(text, "export.toml")) == text


def _with(line: str, replace: str = "") -> str:
    """EXAMPLE with the 'no-general' policy's decision line (17) replaced by ``line``, or ``replace`` by it."""
    return EXAMPLE.replace(replace or 'decision = "deny"\nwhen = { field = "params.channel"',
                           line if replace else f'{line}\nwhen = {{ field = "params.channel"', 1)


# (what, file text, expected line, words the reason must contain)
BAD: list[tuple[str, str, int | None, tuple[str, ...]]] = [
    ("TOML syntax", EXAMPLE.replace('risk_score = 70', 'risk_score = = 70'), 9, ("not valid TOML",)),
    ("unknown top-level key", "version = 1\n" + EXAMPLE, 1, ("unknown key 'version'", "[[policy]]")),
    ("policy not a list of tables", 'policy = "x"\n', 1, ("array of tables",)),
    ("unknown policy key", _with('decision = "deny"\nactoins = ["x"]'), 15, ("policy 'no-general'", "unknown key 'actoins'")),
    ("missing decision", _with(""), 15, ("policy 'no-general'", "missing decision")),
    ("missing id", EXAMPLE.replace('id = "night"\n', ""), 20, ("policy #3", "missing id")),
    ("bad id", EXAMPLE.replace('id = "night"', 'id = "night shift"'), 20, ("policy id 'night shift' is not a valid name",)),
    ("bad decision", _with('decision = "block"'), 15, ("decision must be one of allow, deny, require_approval",
                                                        "'block'")),
    ("unknown operator", EXAMPLE.replace('operator = "in"', 'operator = "one_of"'), 15,
     ("policy 'no-general'", "when: unknown operator 'one_of'")),
    ("unknown field", EXAMPLE.replace('"params.channel"', '"param.channel"'), 15, ("unknown field 'param.channel'",)),
    ("nested operator error", EXAMPLE.replace('operator = "equals", value = "usd"', 'operator = "eq", value = "usd"'),
     2, ("policy 'big-refunds'", "when.all[1].not: unknown operator 'eq'")),
    ("regex does not compile", EXAMPLE.replace('operator = "in", value = ["#general", "#announcements"]',
                                               'operator = "matches", value = "[a-"'), 15,
     ("when: params.channel matches", "not a valid regular expression")),
    ("wrong value type for gt", EXAMPLE.replace("value = 10000", 'value = "10000"'), 2, ("params.amount gt needs a number",)),
    ("in needs a list", EXAMPLE.replace('value = ["#general", "#announcements"]', 'value = "#general"'), 15,
     ("params.channel in needs a non-empty list",)),
    ("exists takes no value", EXAMPLE.replace('operator = "in", value = ["#general", "#announcements"]',
                                              'operator = "exists", value = true'), 15, ("takes no value",)),
    ("bad time", EXAMPLE.replace('value = "22:00"', 'value = "10pm"'), 20, ("'10pm' is not a time",)),
    ("time with seconds", EXAMPLE.replace("value = 06:00:00", "value = 06:00:30"), 20,
     ("when.any[0]: a time needs no seconds", '"06:00"', "06:00:30")),
    ("condition with two shapes", EXAMPLE.replace('when = { any = [', 'when = { field = "method", any = ['), 20,
     ("exactly one of all, any, not",)),
    ("empty all", EXAMPLE.replace('all = [ { field = "params.amount", operator = "gt", value = 10000 },\n'
                                  '        { not = { field = "params.currency", operator = "equals", value = "usd" } } ]',
                                  "all = []"), 2, ("when.all must be a non-empty list",)),
    ("condition not a table", EXAMPLE.replace('{ field = "params.channel", operator = "in", '
                                              'value = ["#general", "#announcements"] }', '"always"'),
     15, ("when: a condition is a table", "'always'")),
    ("rule missing operator", EXAMPLE.replace('operator = "in", ', ""), 15, ("when: a rule needs operator",)),
    ("rule with unknown key", EXAMPLE.replace('operator = "in", ', 'op = "in", operator = "in", '), 15,
     ("when: unknown key 'op'",)),
    ("risk_score out of range", EXAMPLE.replace("risk_score = 70", "risk_score = 101"), 2,
     ("risk_score must be a whole number from 0 to 100", "101")),
    ("approval timeout", EXAMPLE.replace("timeout = 600", "timeout = 0"), 2, ("approval timeout", "got 0")),
    ("approval unknown key", EXAMPLE.replace("timeout = 600", "timeout_s = 600"), 2,
     ("approval must be a table with timeout",)),
    ("approval on deny", _with('decision = "deny"\napproval = { timeout = 5 }'), 15,
     ("approval applies to decision require_approval only",)),
    ("grants on deny", _with('decision = "deny"\ngrants = true'), 15, ("grants applies to decision allow only",)),
    ("grants not a bool", EXAMPLE.replace("grants = true", 'grants = "yes"'), 27, ("grants must be true or false",)),
    ("bad action pattern", EXAMPLE.replace('"stripe.refund.*"', '"stripe.*.create"'), 2,
     ("action pattern 'stripe.*.create' is not valid",)),
    ("bad gateway name", EXAMPLE.replace('gateways = ["Bot"]', 'gateways = ["Bot\\t"]'), 2,
     ("gateway 'Bot\\t' is not a valid name",)),
    ("scope not a list", EXAMPLE.replace('environments = ["prod"]', 'environments = "prod"'), 20,
     ("environments must be a list of strings",)),
    ("duplicate id", EXAMPLE.replace('id = "night"', 'id = "big-refunds"'), 20,
     ("duplicate policy id 'big-refunds'", "first at line 2")),
]


@pytest.mark.parametrize(("text", "line", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_file(text: str, line: int | None, words: tuple[str, ...]) -> None:
    with pytest.raises(PolicyFileError) as ei:
        parse_policies(text, Path("/etc/trustfence/policies.toml"))
    e = ei.value
    assert (e.file, e.line) == (Path("/etc/trustfence/policies.toml"), line), str(e)
    assert str(e).startswith(f"/etc/trustfence/policies.toml:{line}: ")
    for w in words:
        assert w in e.reason, e.reason
    assert isinstance(e, PolicyError)


def test_bad_example_lines_point_at_the_right_header() -> None:
    lines = EXAMPLE.splitlines()
    for line in (2, 15, 20, 27):
        assert "policy" in lines[line - 1] and lines[line - 1].strip().startswith("[[")


def test_error_without_a_line() -> None:
    assert str(PolicyFileError("p.toml", None, "why")) == "p.toml: why"


def test_inline_array_of_policies_points_at_its_key() -> None:
    with pytest.raises(PolicyFileError) as ei:
        parse_policies('\n\npolicy = [ { id = "a", decision = "nope" } ]\n', "p.toml")
    assert ei.value.line == 3
    assert "policy 'a': decision must be one of" in ei.value.reason


def test_deep_nesting_is_rejected() -> None:
    cond = '{ field = "method", operator = "exists" }'
    for _ in range(40):
        cond = f"{{ not = {cond} }}"
    with pytest.raises(PolicyFileError, match="deeper than 32"):
        parse_policies(f'[[policy]]\nid = "deep"\ndecision = "deny"\nwhen = {cond}\n', "p.toml")


# Policy checks made when one is built in code (the file loader relies on the same checks).
BAD_POLICIES: list[tuple[dict[str, object], str]] = [
    ({"id": ""}, "policy id '' is not a valid name"),
    ({"id": "a/b"}, "not a valid name"),
    ({"decision": "maybe"}, "decision must be one of"),
    ({"reason": 5}, "reason must be a string"),
    ({"risk_score": -1}, "risk_score must be a whole number from 0 to 100"),
    ({"risk_score": True}, "risk_score must be"),
    ({"risk_score": 5.5}, "risk_score must be"),
    ({"connectors": ("git hub",)}, "connector 'git hub' is not a valid name"),
    ({"environments": ("",)}, "environment '' is not a valid name"),
    ({"actions": ("Github.pr.merge",)}, "is not valid"),
    ({"gateways": "Bot"}, "gateways must be a list of strings"),
    ({"when": "always"}, "when must be a condition"),
    ({"decision": "allow", "approval": ApprovalSettings()}, "approval applies to decision require_approval only"),
    ({"decision": "require_approval", "grants": True}, "grants applies to decision allow only"),
    ({"decision": "allow", "grants": 1}, "grants must be true or false"),
]


@pytest.mark.parametrize(("changes", "words"), BAD_POLICIES, ids=[w for _, w in BAD_POLICIES])
def test_bad_policy(changes: dict[str, object], words: str) -> None:
    kw: dict[str, object] = {"id": "p", "decision": "deny", **changes}
    with pytest.raises(PolicyError) as ei:
        Policy(**kw)  # type: ignore[arg-type]
    assert words in str(ei.value)


@pytest.mark.parametrize(("timeout", "role", "words"), [(0, "", "got 0"), (7 * 24 * 3600 + 1, "", "1 to 604800"),
                                                        (True, "", "whole seconds"), ("60", "", "whole seconds"),
                                                        (60, "fin ance", "approver_role 'fin ance'"),
                                                        (60, 5, "approver_role must be a string")])
def test_bad_approval_settings(timeout: object, role: object, words: str) -> None:
    with pytest.raises(PolicyError, match=words):
        ApprovalSettings(timeout, role)  # type: ignore[arg-type]


def test_policy_from_lists_is_hashable_and_equal_to_tuples() -> None:
    p = Policy("p", "deny", gateways=["Bot"], actions=["*"])  # type: ignore[arg-type]
    assert p == Policy("p", "deny", gateways=("Bot",), actions=("*",))
    hash(p)
    assert p.rule_id == "policy:p"
