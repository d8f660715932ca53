"""The traffic store (one DuckDB file, one writer thread, named read queries) and the audit log of changes."""

from __future__ import annotations

from trustfence.store.audit import AuditError, AuditLog, Report, check, report_of
from trustfence.store.auditkey import Head, Signer, load_public
from trustfence.store.schema import COLUMNS, TrafficRow
from trustfence.store.writer import Store, StoreFull

__all__ = ["COLUMNS", "AuditError", "AuditLog", "Head", "Report", "Signer", "Store", "StoreFull", "TrafficRow", "check",
           "load_public", "report_of"]
