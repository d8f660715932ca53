"""The traffic store: one DuckDB file, one writer thread, named read queries."""

from __future__ import annotations

from trustfence.store.schema import COLUMNS, TrafficRow
from trustfence.store.writer import Store, StoreFull

__all__ = ["COLUMNS", "Store", "StoreFull", "TrafficRow"]
