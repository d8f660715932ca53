"""The traffic store under load: ingest through the real writer, enqueue cost on the request path, the overview
queries and the Parquet export over a large generated table.

Each figure has a baseline measured in the same run, so the ratio says what our layer costs:

- ingest: rows/s the real writer sustains (rows over the time its thread spends writing them: Arrow batch,
  INSERT, commit) while the producer below runs, against DuckDB's own insert of the same rows as Arrow tables
  of the writer's largest batch on a plain connection, alone (target >= 100,000 rows/s); printed beside it,
  the end-to-end rate of one producer thread pushing each row through ``Store.begin`` + ``Store.submit``
  until flushed, which the request path's journal appends bound (each is the enqueue figure below);
- enqueue: p50/p99 of one ``begin`` + ``submit`` on the request path, against a bare ``queue.put`` (target p99
  <= 50 µs);
- queries (warm): the overview's questions (decisions by outcome per hour over 7 days, decision breakdown, top
  agents, top denied actions, a filtered traffic page) on ``--rows`` generated rows, against ``count(*)`` of
  the same table (target <= 300 ms each at 10M rows);
- export: ``tf export --parquet`` of the whole table (target <= 30 s for 10M rows), against DuckDB's own
  ``COPY ... TO parquet`` of it on an unlocked connection.

    .venv/bin/python bench/store.py [--quick] [--rows 10000000] [--strict]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from trustfence.store import Store, TrafficRow
from trustfence.store.schema import COLUMNS, CREATE, arrow_batch

INGEST_TARGET = 100_000  # rows/s
ENQUEUE_P99_US = 50.0
QUERY_MS = 300.0
EXPORT_S_PER_10M = 30.0
BATCH = 10_000  # rows per INSERT in the baseline: the writer's largest write (store/writer.py _BATCH)

OVERVIEW = {
    "timeline (7 days by hour and outcome)":
        "SELECT date_trunc('hour', ts) AS h, decision, count(*) FROM traffic "
        "WHERE ts >= (SELECT max(ts) FROM traffic) - INTERVAL 7 DAY GROUP BY ALL ORDER BY 1",
    "decision breakdown": "SELECT decision, count(*) FROM traffic GROUP BY ALL ORDER BY 2 DESC",
    "top agents": "SELECT gateway, count(*) FROM traffic GROUP BY ALL ORDER BY 2 DESC LIMIT 10",
    "top denied actions": "SELECT action, count(*) FROM denials GROUP BY ALL ORDER BY 2 DESC LIMIT 10",
}


def make_row(i: int, now: datetime) -> TrafficRow:
    return TrafficRow(now, f"G{i % 7}", "tf-000001", "10.201.0.2", "GET", "https", "api.github.com", 443,
                      f"/repos/acme/widgets/pulls/{i % 500}", "github", "github.pr.read",
                      "denied" if i % 9 == 0 else "allowed", "allowed by permission", "perm:G/github/*", f"d{i}",
                      200, 200, 3.2, 0, 512, params='{"number": "%d"}' % (i % 500))


def ingest(tmp: Path, n: int) -> tuple[float, float, float, list[float], list[float]]:
    """(writer rows/s, end-to-end rows/s, baseline rows/s, enqueue samples µs, queue.put samples µs)."""
    now = datetime.now()
    rows = [make_row(i, now) for i in range(n)]
    arrow_batch(rows[:1])  # pyarrow's one-time imports (pandas, where installed) before anything is timed
    (tmp / "ingest").mkdir()
    store = Store(tmp / "ingest" / "traffic.duckdb", max_queue=n + 10, sync="none")
    samples: list[float] = []
    t0 = time.perf_counter()
    for r in rows:
        s = time.perf_counter_ns()
        store.begin(r)
        store.submit(r)
        samples.append((time.perf_counter_ns() - s) / 1000)
    assert store.flush(timeout=600), "the writer did not catch up"
    end_to_end = n / (time.perf_counter() - t0)
    writer = n / max(store.write_seconds, 1e-9)
    store.close()
    con = duckdb.connect(str(tmp / "baseline.duckdb"))
    con.execute(CREATE)
    t0 = time.perf_counter()
    for i in range(0, n, BATCH):
        con.register("batch", arrow_batch(rows[i:i + BATCH]))
        con.execute(f"INSERT INTO traffic ({', '.join(COLUMNS)}) SELECT * FROM batch").fetchall()
        con.unregister("batch")
    base = n / (time.perf_counter() - t0)
    con.close()
    q: queue.Queue[TrafficRow] = queue.Queue()
    puts = []
    for r in rows[: min(n, 50_000)]:
        s = time.perf_counter_ns()
        q.put_nowait(r)
        puts.append((time.perf_counter_ns() - s) / 1000)
    return writer, end_to_end, base, samples, puts


def generate(path: Path, n: int) -> None:
    """``n`` rows over the last 10 days, written by DuckDB itself (the store's file, before the store opens it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(CREATE)
    con.execute(
        "INSERT INTO traffic (ts, gateway, sandbox, client_addr, method, scheme, host, port, path, connector, "
        "action, decision, reason, rule_id, decision_id, status, upstream_status, latency_ms, bytes_in, "
        "bytes_out, seq, params) SELECT now()::TIMESTAMP - to_seconds(i % 864000), 'G' || (i % 13), 'tf-1', "
        "'10.201.0.2', 'GET', 'https', 'api.github.com', 443, '/repos/acme/w/pulls/' || (i % 997), 'github', "
        "'github.' || (['pr.read', 'pr.list', 'pr.merge', 'repo.delete', 'issue.create'])[1 + i % 5], "
        "(['allowed', 'allowed', 'denied', 'would_deny', 'rate_limited'])[1 + i % 5], 'r', 'perm', 'd' || i, "
        "200, 200, 3.0, 0, 100, i + 1, '' FROM range(?) t(i)", [n])
    con.close()


def p(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--rows", type=int, default=10_000_000, help="rows generated for the query and export phases")
    a.add_argument("--ingest", type=int, default=300_000, help="rows pushed through the writer")
    a.add_argument("--quick", action="store_true", help="small sizes: does the bench still run?")
    a.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = a.parse_args()
    if args.quick:
        args.rows, args.ingest = 50_000, 5_000
    missed = []
    with tempfile.TemporaryDirectory(prefix="tf-bench-store-") as d:
        tmp = Path(d)
        ours, end_to_end, base, enq, puts = ingest(tmp, args.ingest)
        print(f"TrustFence store bench: {args.ingest:,} rows ingested, {args.rows:,} rows queried/exported")
        print(f"ingest   {ours:>12,.0f} rows/s sustained by the writer; DuckDB Arrow insert {base:,.0f} rows/s; "
              f"ratio {ours / base:.2f} (target >= {INGEST_TARGET:,} rows/s)")
        print(f"         {end_to_end:>12,.0f} rows/s end to end from one producer thread (two journal appends a "
              "row: begin and submit)")
        e99 = p(enq, 0.99)
        print(f"enqueue  p50 {statistics.median(enq):.1f} µs  p99 {e99:.1f} µs (journal append + queue); bare "
              f"queue.put p99 {p(puts, 0.99):.2f} µs; ratio {e99 / max(p(puts, 0.99), 0.01):.0f}x "
              f"(target p99 <= {ENQUEUE_P99_US:g} µs)")
        if ours < INGEST_TARGET:
            missed.append("ingest")
        if e99 > ENQUEUE_P99_US:
            missed.append("enqueue p99")
        db = tmp / "big" / "traffic.duckdb"
        generate(db, args.rows)
        store = Store(db, journal=tmp / "big" / "journal")
        try:
            def timed(sql: str) -> float:
                store.sql(sql, 1000, 120)  # warm
                t = time.perf_counter()
                store.sql(sql, 1000, 120)
                return (time.perf_counter() - t) * 1000

            base_ms = timed("SELECT count(*) FROM traffic")
            for name, sql in OVERVIEW.items():
                ms = timed(sql)
                print(f"query    {name:<40} {ms:8.1f} ms  ({ms / max(base_ms, 0.01):.1f}x count(*))")
                if ms > QUERY_MS:
                    missed.append(name)
            store.query("recent", limit=100, decision="denied", action="github.pr.*")
            t = time.perf_counter()
            store.query("recent", limit=100, decision="denied", action="github.pr.*",
                        since=datetime.now() - timedelta(days=7))
            ms = (time.perf_counter() - t) * 1000
            print(f"query    {'filtered traffic page (100 rows)':<40} {ms:8.1f} ms")
            if ms > QUERY_MS:
                missed.append("traffic page")
            t = time.perf_counter()
            result = store.export(tmp / "export", "bench-host")
            ours_s = time.perf_counter() - t
        finally:
            store.close()
        con = duckdb.connect(str(db), read_only=True)
        t = time.perf_counter()
        con.execute(f"COPY traffic TO '{tmp / 'copy.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
        copy_s = time.perf_counter() - t
        con.close()
        budget = EXPORT_S_PER_10M * args.rows / 10_000_000
        print(f"export   {result.rows:,} rows in {ours_s:.1f} s; DuckDB COPY {copy_s:.1f} s; ratio "
              f"{ours_s / max(copy_s, 0.001):.2f} (target <= {budget:.1f} s for {args.rows:,} rows)")
        if result.rows != args.rows:
            raise SystemExit(f"export wrote {result.rows} rows, not {args.rows}")
        if ours_s > budget:
            missed.append("export")
    print("missed: " + ", ".join(missed) if missed else "every target met")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
