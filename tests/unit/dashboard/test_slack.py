"""The Slack callback's replay memory as plain values."""

from __future__ import annotations

from trustfence.dashboard.slack import Replays


def test_a_signature_is_accepted_once_within_the_window() -> None:
    r = Replays(window=10, cap=100)
    assert r.first_time("v0=a", 0.0) and not r.first_time("v0=a", 5.0)
    assert r.first_time("v0=a", 11.0)  # past the window the timestamp check refuses it anyway


def test_full_of_live_signatures_it_refuses_rather_than_forgets() -> None:
    r = Replays(window=10, cap=2)
    assert r.first_time("a", 0.0) and r.first_time("b", 0.0)
    assert not r.first_time("c", 1.0)  # forgetting "a" now would let it be replayed
    assert r.first_time("c", 11.0)  # the old ones expired
