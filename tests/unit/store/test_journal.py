"""The traffic journal: every record written before its request goes anywhere, replayed once into the table,
cut back to whole records when the disk refuses a write, and gaps in the sequence visible."""

from __future__ import annotations

import resource
from datetime import datetime
from pathlib import Path

import pytest
from trustfence.store import Store, StoreFull, TrafficRow
from trustfence.store.journal import Journal
from trustfence.store.writer import INTERRUPTED


def row(**kw: object) -> TrafficRow:
    base: dict[str, object] = {
        "ts": datetime(2026, 12, 1, 12, 0, 0), "gateway": "Bot", "sandbox": "tf-1", "client_addr": "10.0.0.2",
        "method": "GET", "scheme": "https", "host": "api.github.com", "port": 443, "path": "/repos/a/b",
        "connector": "github", "action": "github.repo.read", "decision": "allowed", "reason": "permission",
        "rule_id": "p1", "decision_id": "d1", "status": 0, "upstream_status": None, "latency_ms": 0.0,
        "bytes_in": 0, "bytes_out": 0}
    base.update(kw)
    return TrafficRow(**base)  # type: ignore[arg-type]


def crash(store: Store) -> None:
    """Stop the writer and drop the connection without anything a clean close would do."""
    store._queue.put(None)
    store._thread.join()
    store._con.close()


def rows(store: Store) -> list[tuple[object, ...]]:
    assert store.flush()
    return [(r["seq"], r["path"], r["status"], r["reason"]) for r in store.query("recent", limit=100)]


def test_the_final_row_supersedes_the_pre_forward_record(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    first = row()
    seq = store.begin(first)
    assert (tmp_path / "journal").is_dir() and any(b'"kind":"pre"' in p.read_bytes()
                                                 for p in (tmp_path / "journal").iterdir())
    first.status, first.upstream_status, first.latency_ms = 200, 200, 3.5
    assert store.submit(first) == seq == 1
    assert rows(store) == [(1, "/repos/a/b", 200, "permission")]  # one row, with the outcome
    store.close()


def test_a_killed_daemon_loses_nothing_and_replaying_twice_adds_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    done = row()
    store.begin(done)
    done.status = 201
    store.submit(done)
    store.begin(row(path="/in/flight"))  # forwarded; the daemon dies before the answer
    crash(store)
    again = Store(tmp_path / "t.duckdb")
    assert again.replayed["interrupted"] == 1
    assert rows(again) == [(1, "/repos/a/b", 201, "permission"), (2, "/in/flight", 0, f"permission; {INTERRUPTED}")]
    assert again.begin(row()) == 3  # numbering goes on after what was replayed
    crash(again)
    third = Store(tmp_path / "t.duckdb")
    assert [r[0] for r in rows(third)] == [1, 2, 3]
    third.close()


def test_records_the_writer_never_wrote_are_replayed_from_the_journal_alone(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal")
    j.start(1)
    for seq in (1, 2, 3):
        j.append(seq, "pre", row(path=f"/p{seq}"))
    j.append(1, "row", row(path="/p1", status=200))
    j.append(3, "row", row(path="/p3", status=404))
    j.close()
    store = Store(tmp_path / "t.duckdb")
    assert [(r[0], r[2]) for r in rows(store)] == [(1, 200), (2, 0), (3, 404)]
    assert not list((tmp_path / "journal").glob("*.jsonl"))[1:]  # replayed segments are gone
    store.close()


def test_bytes_that_are_not_utf8_are_escaped_never_dropped(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    odd = b"/repos/\xff/r/issues".decode("utf-8", "surrogateescape")
    r = row(path=odd, host=b"api.\xfe.com".decode("utf-8", "surrogateescape"), method="G\udce9T")
    store.begin(r)
    store.submit(r)
    assert store.flush()
    got = store.query("recent")[0]
    assert (got["path"], got["host"], got["method"]) == ("/repos/\\xff/r/issues", "api.\\xfe.com", "G\\xe9T")
    store.close()


def test_a_refused_write_is_cut_back_and_the_journal_recovers_by_itself(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    store.begin(row())
    segment = next((tmp_path / "journal").glob("*.jsonl"))
    size = segment.stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))  # the next record does not fit
    try:
        with pytest.raises(StoreFull, match="traffic log unavailable: .*(too large|space)"):
            store.begin(row(path="/x" * 200))
        assert segment.stat().st_size == size  # no half record left behind
        assert store.unavailable() and store.since
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert store.begin(row(path="/after")) == 2
    assert store.unavailable() == ""
    store.close()


def test_segments_rotate_and_go_once_their_rows_are_in_the_table(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb", segment_bytes=2000)
    for _ in range(30):
        r = row()
        store.begin(r)
        r.status = 200
        store.submit(r)
    assert store.flush()
    assert len(list((tmp_path / "journal").glob("*.jsonl"))) <= 2
    assert store.journal.pending() == 0
    store.close()


def test_an_unreadable_record_shows_as_a_gap(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal")
    j.start(1)
    for seq in (1, 2, 3):
        j.append(seq, "row", row(status=200))
    j.close()
    segment = next((tmp_path / "journal").glob("*.jsonl"))
    lines = segment.read_bytes().split(b"\n")
    lines[1] = lines[1][:40]  # torn by a power loss
    segment.write_bytes(b"\n".join(lines))
    store = Store(tmp_path / "t.duckdb")
    assert len(store.replayed["unreadable"]) == 1 and ":2:" in store.replayed["unreadable"][0]
    assert store.query("gaps") == [{"first": 2, "last": 2, "missing": 1}]
    store.close()


def test_a_request_still_in_flight_is_not_a_gap_but_a_lost_row_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    store.begin(row(path="/long/download"))  # seq 1: forwarded, answer still streaming
    for _ in range(3):
        store.submit(row(status=403, decision="denied"))  # seqs 2..4: refused at once
    assert store.flush()
    assert store.gaps() == (0, [])
    store._con.execute("DELETE FROM traffic WHERE seq = 3")  # a row lost (or removed)
    assert store.gaps() == (1, [[3, 3]])
    store.close()
