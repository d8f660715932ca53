"""The daemon's kill switch: validation, the file it keeps (0600, atomically), and applying at once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from trustfence.agent.brakes import BrakeError, KillSwitches, load_switches
from trustfence.agent.config import ConfigError
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.switches import Scope, Switch


@pytest.fixture
def switches(tmp_path: Path) -> tuple[KillSwitches, list[Switch]]:
    cut: list[Switch] = []

    def record(s: Switch) -> int:
        cut.append(s)
        return 3

    return KillSwitches(tmp_path / "kill-switches.json", EnforcerState(store=None), record), cut


def test_activation_is_persisted_private_applied_and_cuts(switches: tuple[KillSwitches, list[Switch]],
                                                         tmp_path: Path) -> None:
    ks, cut = switches
    r = ks.activate("gateway:Bot", "  runaway\n loop ", "alice", {"Bot"}, {"github"})
    assert (r["scope"], r["reason"], r["closed"]) == ("gateway:Bot", "runaway loop", 3)
    assert [str(s.scope) for s in cut] == ["gateway:Bot"]
    blocking = ks.state.switches.blocking("Bot")
    assert blocking is not None and blocking.by == "alice"
    path = tmp_path / "kill-switches.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_switches(path) == ks.state.switches  # what a restarted daemon starts with


@pytest.mark.parametrize(("scope", "reason", "message"), [
    ("all", "", "reason is required"),
    ("all", "   ", "reason is required"),
    ("everything", "x", "use all, gateway:NAME or connector:NAME"),
    ("connector:stripe", "x", "unknown connector 'stripe'; known: github"),
    ("gateway:Nobody", "x", "unknown gateway 'Nobody'; known: Bot"),
])
def test_bad_requests_change_nothing(switches: tuple[KillSwitches, list[Switch]], tmp_path: Path, scope: str,
                                     reason: str, message: str) -> None:
    ks, cut = switches
    with pytest.raises(BrakeError, match=message) as e:
        ks.activate(scope, reason, "", {"Bot"}, {"github"})
    assert e.value.code == 2
    assert ks.state.switches.active == () and cut == []
    assert not (tmp_path / "kill-switches.json").exists()


def test_deactivation_lifts_only_its_scope_and_needs_a_reason(switches: tuple[KillSwitches, list[Switch]],
                                                             tmp_path: Path) -> None:
    ks, _ = switches
    ks.activate("all", "incident", "", set(), {"github"})
    ks.activate("connector:github", "token leak", "", set(), {"github"})
    with pytest.raises(BrakeError, match="reason is required"):
        ks.deactivate("all", "", "")
    r = ks.deactivate("all", "resolved", "")
    assert [s["scope"] for s in r["active"]] == ["connector:github"]
    assert ks.state.switches.blocking("Bot") is None
    assert ks.state.switches.blocking("Bot", "github") is not None
    assert load_switches(tmp_path / "kill-switches.json").get(Scope("all")) is None
    with pytest.raises(BrakeError, match=r"no kill switch is active for all \(active: connector:github\)") as e:
        ks.deactivate("all", "again", "")
    assert e.value.code == 1


def test_a_damaged_file_stops_the_daemon_start(tmp_path: Path) -> None:
    path = tmp_path / "kill-switches.json"
    assert load_switches(path).active == ()
    path.write_text('{"kill_switches": [{"scope": "all"')
    with pytest.raises(ConfigError, match="delete it to release every kill switch"):
        load_switches(path)
