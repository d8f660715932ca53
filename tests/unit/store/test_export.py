"""Parquet export: partitions by date and host, incremental with neither duplicates nor gaps, readable by other
engines together (a fleet of three hosts, queried with DuckDB and with ClickHouse's embedded engine)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from tests.unit.store.rows import fill, row
from trustfence.store import Store
from trustfence.store.export import ExportError

GLOB = "traffic/**/*.parquet"


def read(directory: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()  # an analyst's DuckDB, not the store's locked one
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{directory}/{GLOB}', hive_partitioning = true)")
    return con.execute(sql).fetchall()


def test_incremental_export_partitions_by_date_and_host_without_duplicates_or_gaps(tmp_path: Path) -> None:
    store = Store(tmp_path / "traffic.duckdb")
    out = tmp_path / "export"
    try:
        fill(store, [row(ts=datetime(2026, 12, 1, 23, 59)), row(ts=datetime(2026, 12, 2, 0, 1)),
                     row(ts=datetime(2026, 12, 2, 8, 0), decision="denied")])
        first = store.export(out, "web-1")
        assert (first.rows, first.first_seq, first.last_seq) == (3, 1, 3)
        assert sorted(first.files) == ["traffic/date=2026-12-01/host=web-1/part-000000000001-000000000001.parquet",
                                       "traffic/date=2026-12-02/host=web-1/part-000000000002-000000000003.parquet"]
        again = store.export(out, "web-1")
        assert again.rows == 0 and again.last_seq == 3 and again.files == []
        fill(store, [row(ts=datetime(2026, 12, 2, 9, 0)), row(ts=datetime(2026, 12, 3, 1, 0))])
        third = store.export(out, "web-1")
        assert (third.rows, third.first_seq, third.last_seq) == (2, 4, 5)
        seqs = [r[0] for r in read(out, "SELECT seq FROM t ORDER BY seq")]
        assert seqs == [1, 2, 3, 4, 5]  # every row once
        assert read(out, "SELECT CAST(date AS VARCHAR), host, count(*) FROM t GROUP BY ALL ORDER BY ALL") == [
            ("2026-12-01", "web-1", 1), ("2026-12-02", "web-1", 3), ("2026-12-03", "web-1", 1)]
        manifest = json.loads((out / "_manifest" / "web-1.json").read_text())
        assert manifest["last_seq"] == 5 and sum(f["rows"] for f in manifest["files"]) == 5
        assert not list(out.rglob(".*.tmp"))
    finally:
        store.close()


def test_since_limits_the_rows_and_a_directory_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "traffic.duckdb")
    try:
        fill(store, [row(ts=datetime(2026, 11, 1)), row(ts=datetime(2026, 12, 1))])
        assert store.export(tmp_path / "e", "h", since=datetime(2026, 11, 15)).rows == 1
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(ExportError, match=f"cannot write into {blocker}/x"):
            store.export(blocker / "x", "h")
        bad = tmp_path / "bad"
        (bad / "_manifest").mkdir(parents=True)
        (bad / "_manifest" / "h.json").write_text("not json")
        with pytest.raises(ExportError, match="manifest cannot be read"):
            store.export(bad, "h")
        assert not (bad / "traffic").exists() or not list((bad / "traffic").rglob("*.parquet"))
    finally:
        store.close()


def test_three_hosts_exports_are_one_dataset_for_duckdb_and_clickhouse(tmp_path: Path) -> None:
    chdb = pytest.importorskip("chdb", reason="chdb (ClickHouse's embedded engine) is a test dependency")
    out = tmp_path / "fleet"
    for i, host in enumerate(("web-1", "web-2", "batch-1")):
        (tmp_path / host).mkdir()
        store = Store(tmp_path / host / "traffic.duckdb")  # each host its own state (and journal)
        try:
            fill(store, [row(gateway=f"G{i}", decision=d) for d in ("allowed", "denied", "denied")[: i + 1]])
            assert store.export(out, host).rows == i + 1
        finally:
            store.close()
    by_duckdb = read(out, "SELECT host, decision, count(*) FROM t GROUP BY ALL ORDER BY ALL")
    ch = chdb.query(f"SELECT host, decision, count() FROM file('{out}/traffic/*/*/*.parquet', Parquet) "
                    "GROUP BY host, decision ORDER BY host, decision SETTINGS use_hive_partitioning = 1", "CSV")
    by_clickhouse = [tuple(x.strip('"') for x in line.split(",")) for line in str(ch).strip().splitlines()]
    assert [(h, d, str(n)) for h, d, n in by_duckdb] == by_clickhouse
    assert by_duckdb == [("batch-1", "allowed", 1), ("batch-1", "denied", 2), ("web-1", "allowed", 1),
                         ("web-2", "allowed", 1), ("web-2", "denied", 1)]
