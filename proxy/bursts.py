"""Bursts: one traffic row per burst of like refusals, so a flood of refused connections is not a flood of rows.

The first refusal of a kind (a sandbox's connection cap, its idle cut, its header cut) is written at once; those
that follow within ``window`` seconds are only counted, and ``flush`` (called by the enforcer's sweep) writes one
row for them naming how many there were. No mitmproxy, no I/O of its own: ``write`` does the writing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Bursts"]

E = TypeVar("E")  # what is known of one refusal (the first of a burst is the one its row describes)


@dataclass(slots=True)
class _Burst(Generic[E]):
    start: float
    event: E
    more: int = 0


class Bursts(Generic[E]):
    """``note(key, event)`` per refusal; ``write(event, count)`` is called once per burst of each key."""

    def __init__(self, write: Callable[[E, int], None], window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write, self.window, self.clock = write, window, clock
        self._open: dict[object, _Burst[E]] = {}

    def note(self, key: object, event: E) -> None:
        now = self.clock()
        burst = self._open.get(key)
        if burst is not None and now - burst.start < self.window:
            burst.more += 1
            burst.event = event
            return
        if burst is not None and burst.more:
            self.write(burst.event, burst.more)
        self._open[key] = _Burst(now, event)
        self.write(event, 1)

    def flush(self) -> None:
        """Write the counted rest of every burst whose window is over."""
        now = self.clock()
        for key, burst in list(self._open.items()):
            if now - burst.start >= self.window:
                del self._open[key]
                if burst.more:
                    self.write(burst.event, burst.more)
