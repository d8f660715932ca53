"""The shared values: an Action is a frozen dataclass whatever its constructor does to be cheap."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from trustfence.connectors import Action
from trustfence.connectors.base import Action as BaseAction


def test_defaults() -> None:
    a = Action("github.pr.read", "github")
    assert (a.name, a.connector, a.risk, a.params, a.unavailable) == ("github.pr.read", "github", "medium", {},
                                                                      frozenset())


def test_each_action_left_without_params_gets_its_own_dict() -> None:
    a, b = Action("n", "c"), Action("n", "c")
    assert a.params == {} and a.params is not b.params
    assert type(a.params) is dict


def test_keywords_and_positions_agree() -> None:
    by_position = Action("n", "c", "high", {"k": 1}, frozenset({"u"}))
    by_keyword = Action(unavailable=frozenset({"u"}), params={"k": 1}, risk="high", connector="c", name="n")
    assert by_position == by_keyword
    assert repr(by_position) == ("Action(name='n', connector='c', risk='high', params={'k': 1}, "
                                 "unavailable=frozenset({'u'}))")


def test_frozen() -> None:
    a = Action("n", "c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]


def test_dataclass_tools_still_work() -> None:
    a = Action("n", "c", "low", {"k": 1})
    assert dataclasses.replace(a, risk="high") == Action("n", "c", "high", {"k": 1})
    assert [f.name for f in dataclasses.fields(a)] == ["name", "connector", "risk", "params", "unavailable"]
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(a) == a


def test_base_re_exports_the_same_classes() -> None:
    assert BaseAction is Action
