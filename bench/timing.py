"""What the per-call benchmarks (classify, policy) share: how a block of calls is timed and summarised.

Measuring the code, not the machine: the garbage collector is paused while a block runs (when a collection
runs depends on the whole heap, not on the call in flight), and a result is the median over several blocks of
each block's p50 and p99, with every block's p99 printed beside it: a burst of work from other processes on a
shared machine then spoils a block, not the result.
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
        return ", ".join(f"{x:.1f}" for x in self.block_p99s)


def summarise(blocks: list[list[float]]) -> Summary:
    """The Summary of per-call times (µs), one list per block."""
    p99s = tuple(percentile(b, 0.99) for b in blocks)
    return Summary(statistics.median(statistics.median(b) for b in blocks), statistics.median(p99s), p99s)
