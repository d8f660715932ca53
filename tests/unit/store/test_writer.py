"""The writer: a read sees what was submitted before it; a value its column cannot hold never stops the writer."""

from __future__ import annotations

import time
from pathlib import Path

from tests.unit.store.rows import row
from trustfence.store import Store


def test_a_read_right_after_a_submit_sees_the_row_without_waiting_for_the_gather(tmp_path: Path) -> None:
    s = Store(tmp_path / "traffic.duckdb")
    try:
        s.query("recent", limit=1)  # the writer is idle, waiting for rows
        s.submit(row(path="/just/now"))
        assert [r["path"] for r in s.query("recent", limit=10)] == ["/just/now"]  # not 0.2 s later
        s.submit(row(path="/sql"))
        assert s.sql("SELECT count(*) AS n FROM traffic", 10, 5).rows == [[2]]
    finally:
        s.close()


def test_a_value_its_column_cannot_hold_is_cleared_and_the_writer_goes_on(tmp_path: Path) -> None:
    s = Store(tmp_path / "traffic.duckdb")
    try:
        s.submit(row(path="/odd", uid=2 ** 40, pid=-(2 ** 35)))  # a uid no INTEGER column holds
        s.submit(row(path="/next"))
        assert s.flush()
        got = {r["path"]: r for r in s.query("recent", limit=10)}
        assert set(got) == {"/odd", "/next"}
        assert got["/odd"]["uid"] is None and got["/odd"]["pid"] is None
        assert "cleared values their columns cannot hold: pid, uid" in got["/odd"]["reason"]
        assert not s.unavailable()  # the writer is alive: new rows are still taken
        s.submit(row(path="/after"))
        assert "/after" in [r["path"] for r in s.query("recent", limit=10)]
    finally:
        s.close()


def test_a_burst_larger_than_the_queue_within_one_gathering_is_not_refused(tmp_path: Path) -> None:
    """The writer gathers rows for up to 0.2 s before a write; it takes them off the queue meanwhile, so a burst
    of more rows than the queue holds in that time is recorded, not refused as a full queue."""
    s = Store(tmp_path / "traffic.duckdb", max_queue=1000)
    try:
        started = time.monotonic()
        for i in range(3000):
            s.submit(row(path=f"/burst/{i}"))
            if i % 100 == 99:
                time.sleep(0.001)
        assert time.monotonic() - started < 2
        assert s.flush()
        assert s.sql("SELECT count(*) AS n FROM traffic", 10, 5).rows == [[3000]]
    finally:
        s.close()
