"""The traffic file's schema version: older files migrate in place, newer ones are refused untouched."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.unit.store.rows import fill, row
from trustfence.store import Store
from trustfence.store.migrate import SCHEMA_VERSION, SchemaError


def test_a_new_file_gets_the_version_and_an_old_one_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    old = tmp_path / "old" / "traffic.duckdb"
    old.parent.mkdir()
    con = duckdb.connect(str(old))  # a file from before versioning: fewer columns, no version table
    con.execute("CREATE TABLE traffic (ts TIMESTAMP, gateway VARCHAR, action VARCHAR, decision VARCHAR, seq BIGINT)")
    con.execute("INSERT INTO traffic VALUES ('2026-11-01 10:00', 'Bot', 'github.pr.list', 'allowed', 1)")
    con.close()
    s = Store(old)
    try:
        assert s.schema_found == 1
        fill(s, [row()])
        got = s.sql("SELECT seq, action, params FROM traffic ORDER BY seq", 10, 5).rows
        assert got == [[1, "github.pr.list", None], [2, "github.pr.list", ""]]
        assert s.sql("SELECT max(version) FROM schema_version", 10, 5).rows == [[SCHEMA_VERSION]]
    finally:
        s.close()
    fresh = Store(tmp_path / "traffic.duckdb")
    fresh.close()
    assert fresh.schema_found == 0


def test_a_file_from_a_newer_version_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "traffic.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    before = con.execute("SELECT count(*) FROM schema_version").fetchone()
    con.close()
    with pytest.raises(SchemaError, match=f"newer TrustFence \\(schema version {SCHEMA_VERSION + 1}"):
        Store(path)
    con = duckdb.connect(str(path))
    assert con.execute("SELECT count(*) FROM schema_version").fetchone() == before
    con.close()
