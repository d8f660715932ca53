"""The journal's record encoding: every column survives the round trip through the file and through the writer's
batch parsed from the same bytes, a journal left by the older encoder still replays, and a torn last record
costs that record alone."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from trustfence.store import Store
from trustfence.store.journal import Journal, encode_row
from trustfence.store.schema import COLUMNS, TrafficRow, arrow_batch, json_batch, values_of

from tests.unit.store.rows import row


def odd_rows() -> list[TrafficRow]:
    """Every column type with its edge values: NULLs, empty and non-ASCII text, text that is not UTF-8,
    lists, big and negative numbers, a timestamp with and without microseconds."""
    not_utf8 = b"/repos/\xff/\xfe".decode("utf-8", "surrogateescape")
    return [
        row(),
        row(ts=datetime(2026, 12, 1, 10, 0, 0, 123456), path=not_utf8, reason="naïve “quotes” \"\\ \n\t\x00 ☃ 😀",
            params='{"amount": 1e3, "ids": [1, 2]}', policies=["p1", "p-2", ""], pid=2 ** 31 - 1, uid=0,
            comm="curl", exe="/usr/bin/curl", risk="high", environment="prod", level="enforce", approval_id="a1"),
        row(upstream_status=None, pid=None, uid=None, policies=[], latency_ms=0.1 + 0.2, bytes_in=2 ** 63 - 1,
            bytes_out=-1, port=-(2 ** 31), status=0),
        row(latency_ms=1e-300, bytes_in=0, policies=None, decision="would_deny", method="G\udce9T"),
    ]


def test_every_field_survives_the_journal_and_the_writers_batch(tmp_path: Path) -> None:
    rows = odd_rows()
    j = Journal(tmp_path / "journal")
    j.start(1)
    for seq, r in enumerate(rows, 1):
        r.seq = seq
        j.append(seq, "row", r)
    j.close()
    assert rows[1].path == "/repos/\\xff/\\xfe" and rows[3].method == "G\\xe9T"  # escaped, not dropped
    found = j.recover()
    assert found.unreadable == []
    assert [values_of(found.records[seq][1]) for seq in (1, 2, 3, 4)] == [values_of(r) for r in rows]
    # The writer's batch parsed from the bodies holds exactly what converting the rows themselves holds.
    assert json_batch([encode_row(r) for r in rows]).equals(arrow_batch(rows))


def test_the_written_rows_are_the_rows_submitted(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    rows = odd_rows()
    for r in rows:
        store.submit(r)
    store.close()
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    got = con.execute(f"SELECT {', '.join(COLUMNS)} FROM traffic ORDER BY seq").fetchall()
    con.close()
    assert got == [values_of(r) for r in rows]


def test_a_value_the_fast_encoder_refuses_is_still_journalled_and_written(tmp_path: Path) -> None:
    big, nan = row(port=2 ** 70, path="/big"), row(latency_ms=math.nan, path="/nan")
    assert json.loads(encode_row(big))["port"] == 2 ** 70
    assert b'"latency_ms":NaN' in encode_row(nan)
    store = Store(tmp_path / "t.duckdb")
    store.begin(big)
    store.submit(big)
    store.submit(nan)
    assert store.flush()
    got = {r["path"]: r for r in store.query("recent")}
    assert got["/big"]["port"] == 0 and "cleared values their columns cannot hold: port" in got["/big"]["reason"]
    assert math.isnan(got["/nan"]["latency_ms"])
    store.close()


def test_a_journal_written_by_the_older_encoder_replays(tmp_path: Path) -> None:
    """json.dumps of a dict, non-ASCII escaped as \\uXXXX: what a daemon upgraded mid-journal leaves behind."""
    (tmp_path / "journal").mkdir()
    lines = []
    for seq, kind, r in ((1, "pre", row(path="/café")), (1, "row", row(path="/café", status=201)),
                         (2, "pre", row(path="/in/flight", policies=["p1"]))):
        values = dict(zip(COLUMNS, values_of(r)))
        values["ts"], values["seq"] = r.ts.isoformat(), seq
        lines.append(json.dumps({"seq": seq, "kind": kind, "row": values}, separators=(",", ":")))
    assert "\\u00e9" in lines[0]
    (tmp_path / "journal" / f"{1:016d}.jsonl").write_text("\n".join(lines) + "\n")
    store = Store(tmp_path / "t.duckdb")
    assert store.replayed["records"] == 2 and store.replayed["interrupted"] == 1
    got = {r["seq"]: r for r in store.query("recent")}
    assert (got[1]["path"], got[1]["status"]) == ("/café", 201)
    assert (got[2]["path"], got[2]["policies"]) == ("/in/flight", ["p1"])
    store.close()


@pytest.mark.parametrize("keep", [0, 1, 39])
def test_a_torn_last_record_costs_that_record_alone(tmp_path: Path, keep: int) -> None:
    j = Journal(tmp_path / "journal")
    j.start(1)
    for seq in (1, 2, 3):
        j.append(seq, "row", row(status=200, path=f"/p{seq}"))
    j.close()
    segment = next((tmp_path / "journal").glob("*.jsonl"))
    data = segment.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    segment.write_bytes(data[:last + keep] if keep else data[:-1])  # power lost mid-write (or before its newline)
    store = Store(tmp_path / "t.duckdb")
    paths = sorted(r["path"] for r in store.query("recent"))
    if keep:
        assert paths == ["/p1", "/p2"] and len(store.replayed["unreadable"]) == 1
    else:
        assert paths == ["/p1", "/p2", "/p3"] and store.replayed["unreadable"] == []  # only its newline lost
    store.close()
