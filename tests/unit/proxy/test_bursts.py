"""Bursts: the first refusal of a kind is written at once, the rest of its second as one counted row."""

from __future__ import annotations

from trustfence.proxy.bursts import Bursts


def test_one_row_at_once_then_one_counting_the_rest_of_the_window() -> None:
    now = [100.0]
    written: list[tuple[str, int]] = []
    b: Bursts[str] = Bursts(lambda e, n: written.append((e, n)), window=1.0, clock=lambda: now[0])
    for i in range(50):
        b.note(("cap", "sb1"), f"refusal {i}")
        now[0] += 0.01
    b.note(("idle", "sb1"), "idle")  # another kind is its own burst
    assert written == [("refusal 0", 1), ("idle", 1)]
    b.flush()
    assert len(written) == 2  # the window is not over
    now[0] = 101.5
    b.flush()
    assert written[2:] == [("refusal 49", 49)]
    b.flush()
    assert len(written) == 3


def test_a_refusal_after_the_window_writes_the_previous_count_first() -> None:
    now = [0.0]
    written: list[tuple[str, int]] = []
    b: Bursts[str] = Bursts(lambda e, n: written.append((e, n)), clock=lambda: now[0])
    b.note("k", "a")
    b.note("k", "b")
    now[0] = 2.0
    b.note("k", "c")
    assert written == [("a", 1), ("b", 1), ("c", 1)]
