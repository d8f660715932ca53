"""tf sql's engine: one SELECT over the store; files, attachments, extensions, writes and settings refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.store.rows import fill, row
from trustfence.store import Store
from trustfence.store.adhoc import AdhocError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "traffic.duckdb")
    fill(s, [row(), row(decision="denied", action="github.repo.delete", method="DELETE"),
             row(scheme="dns", method="A", host="api.github.com", path="", action="", decision="allowed")])
    yield s
    s.close()


def test_a_select_and_the_named_views_answer(store: Store) -> None:
    r = store.sql("SELECT decision, count(*) AS n FROM traffic GROUP BY ALL ORDER BY decision", 100, 5)
    assert r.columns == ["decision", "n"] and r.rows == [["allowed", 2], ["denied", 1]] and not r.truncated
    assert store.sql("SELECT action FROM denials", 100, 5).rows == [["github.repo.delete"]]
    assert store.sql("SELECT method FROM dns", 100, 5).rows == [["A"]]
    r = store.sql("SELECT ts FROM traffic ORDER BY seq LIMIT 1", 100, 5)
    assert r.rows == [["2026-12-01T10:00:00"]]


def test_rows_beyond_the_limit_are_cut_and_said(store: Store) -> None:
    r = store.sql("SELECT * FROM range(10)", 4, 5)
    assert len(r.rows) == 4 and r.truncated


@pytest.mark.parametrize(("sql", "why"), [
    ("DELETE FROM traffic", "only SELECT"),
    ("UPDATE traffic SET reason = 'x'", "only SELECT"),
    ("INSERT INTO traffic SELECT * FROM traffic", "only SELECT"),
    ("DROP VIEW denials", "only SELECT"),
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("SELECT 1; DELETE FROM traffic", "exactly one statement"),
    ("ATTACH '/tmp/x.duckdb'", "only SELECT"),
    ("COPY traffic TO '/tmp/out.csv'", "only SELECT"),
    ("INSTALL httpfs", "only SELECT"),
    ("LOAD httpfs", "only SELECT"),
    ("SET enable_external_access = true", "only SELECT"),
    ("PRAGMA database_list", "only SELECT"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled"),
    ("SELECT * FROM glob('/etc/*')", "disabled"),
    ("SELECT * FROM '/etc/passwd'", "does not exist"),
    ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "disabled"),
    ("SELECT * FROM store", "does not exist"),  # a Python variable in the daemon: replacement scans are off
    ("SELEC 1", "not valid SQL"),
])
def test_anything_but_one_plain_select_is_refused(store: Store, sql: str, why: str) -> None:
    with pytest.raises(AdhocError, match=why):
        store.sql(sql, 100, 5)
    assert store.sql("SELECT count(*) FROM traffic", 100, 5).rows == [[3]]  # nothing changed


def test_a_query_that_runs_too_long_is_stopped(store: Store) -> None:
    with pytest.raises(AdhocError, match="longer than 1 s"):
        store.sql("SELECT count(*) FROM range(100000000000) a", 10, 1)
