"""The traffic store (one DuckDB file, one writer thread, named read queries) and the audit log of changes."""

from __future__ import annotations

from trustfence.store.audit import AuditError, AuditLog
from trustfence.store.schema import COLUMNS, TrafficRow
from trustfence.store.writer import Store, StoreFull

__all__ = ["COLUMNS", "AuditError", "AuditLog", "Store", "StoreFull", "TrafficRow"]
