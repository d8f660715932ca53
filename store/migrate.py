"""The traffic file's schema version: a file from an older TrustFence is migrated in place, one from a newer
one is refused (its columns could mean what this version does not know) rather than written into.

Version 1: the traffic table without a version table (files before versioning). Version 2: the version table;
columns are only ever added (``params``, the process columns ...), so migrating adds the missing ones, with NULL
for old rows. Version 3: ``risk``, ``environment``, ``level``, ``policies`` (matched policy ids) and
``approval_id``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from trustfence.store.schema import COLUMNS, CREATE, SQL_TYPES

__all__ = ["SCHEMA_VERSION", "SchemaError", "migrate"]

SCHEMA_VERSION = 3


class SchemaError(RuntimeError):
    """The file cannot be used by this version; the message says why and what to do."""


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Bring the file to SCHEMA_VERSION (creating it when new); return the version it had (0: new file)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "schema_version" in tables:
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        found = int(row[0]) if row and row[0] is not None else 1
    else:
        found = 1 if "traffic" in tables else 0
    if found > SCHEMA_VERSION:
        raise SchemaError(f"{path} was written by a newer TrustFence (schema version {found}; this one reads "
                          f"{SCHEMA_VERSION} and older): upgrade TrustFence, or move the file aside to start "
                          "a new one (the old one stays readable by the newer version)")
    con.execute(CREATE)
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'traffic'").fetchall()}
    for col in COLUMNS:  # files written by an older version gain the new columns (NULL for old rows)
        if col not in have:
            con.execute(f"ALTER TABLE traffic ADD COLUMN {col} {SQL_TYPES[col]}")
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, migrated_at TIMESTAMP)")
    if found < SCHEMA_VERSION:
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION])
    return found
