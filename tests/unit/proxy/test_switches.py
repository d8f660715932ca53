"""Kill switch scopes: parsing, what each covers, and the file that keeps them across restarts."""

from __future__ import annotations

import pytest

from trustfence.proxy.switches import Scope, Switch, Switches, parse_scope


@pytest.mark.parametrize(("text", "scope"), [
    ("all", Scope("all")),
    ("gateway:Bot", Scope("gateway", "Bot")),
    ("connector:github", Scope("connector", "github")),
])
def test_scopes_parse_and_print_back(text: str, scope: Scope) -> None:
    assert parse_scope(text) == scope
    assert str(scope) == text


@pytest.mark.parametrize("text", ["", "ALL", "gateway", "gateway:", "bot:Bot", "connector:a b", "gateway: x",
                                  "connector:github:x"])
def test_bad_scopes_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="scope|name"):
        parse_scope(text)


def test_what_each_scope_covers() -> None:
    assert Scope("all").covers("Bot", None)
    assert Scope("gateway", "Bot").covers("Bot", "github")
    assert not Scope("gateway", "Bot").covers("Other", "github")
    assert Scope("connector", "github").covers("Other", "github")
    assert not Scope("connector", "github").covers("Bot", None)  # not classified yet: not decided here
    assert not Scope("connector", "github").covers("Bot", "stripe")


def test_one_switch_per_scope_and_blocking_finds_the_covering_one() -> None:
    s = Switches().with_switch(Switch(Scope("gateway", "Bot"), "first", "t1"))
    s = s.with_switch(Switch(Scope("gateway", "Bot"), "second", "t2"))
    s = s.with_switch(Switch(Scope("connector", "stripe"), "refund storm", "t3"))
    assert [x.reason for x in s.active] == ["second", "refund storm"]
    blocking = s.blocking("Bot")
    assert blocking is not None and blocking.describe() == "kill switch (gateway:Bot): second"
    assert s.blocking("Other") is None
    assert s.blocking("Other", "stripe") is not None
    assert s.without(Scope("gateway", "Bot")).blocking("Bot") is None


def test_the_file_round_trips() -> None:
    s = Switches((Switch(Scope("all"), "incident 42", "2026-01-01T00:00:00+00:00", "alice"),
                  Switch(Scope("connector", "github"), "token leak", "2026-01-01T00:01:00+00:00")))
    assert Switches.loads(s.dumps()) == s


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"kill_switches": [{"scope": "all"}]}',
                                  b'{"kill_switches": [{"scope": "everything", "reason": "x", "since": "t"}]}',
                                  b'{"kill_switches": [{"scope": "all", "reason": " ", "since": "t"}]}'])
def test_a_damaged_file_is_an_error_not_an_empty_set(data: bytes) -> None:
    with pytest.raises(ValueError):
        Switches.loads(data)
