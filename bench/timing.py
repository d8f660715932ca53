"""What the per-call benchmarks (classify, policy) share: how a block of calls is timed and summarised.

Measuring the code, not the machine: the garbage collector is paused while a block runs (when a collection
runs depends on the whole heap, not on the call in flight), and a result is the median over many short blocks
(tens of milliseconds each, spread over a few seconds) of each block's p50 and p99, with the spread of the
blocks' p99s printed beside it: a burst of work from other processes on a shared machine, or a stretch in
which the machine runs slower, then spoils the blocks it overlaps, not the result.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Summary", "paused_gc", "percentile", "summarise"]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


@contextmanager
def paused_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class Summary:
    """Median over blocks of each block's p50 and p99 (µs), and every block's p99."""

    p50: float
    p99: float
    block_p99s: tuple[float, ...]

    @property
    def spread(self) -> str:
        """The blocks' p99s: lowest, quartiles, highest."""
        xs = sorted(self.block_p99s)
        q1, q3 = percentile(xs, 0.25), percentile(xs, 0.75)
        return f"p99 of {len(xs)} blocks: low {xs[0]:.1f}, quartiles {q1:.1f}-{q3:.1f}, high {xs[-1]:.1f}"


def summarise(blocks: list[list[float]]) -> Summary:
    """The Summary of per-call times (µs), one list per block."""
    p99s = tuple(percentile(b, 0.99) for b in blocks)
    return Summary(statistics.median(statistics.median(b) for b in blocks), statistics.median(p99s), p99s)
