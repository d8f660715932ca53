"""The traffic filters every reader shares (tf logs, exports): each narrows, together they combine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.store.rows import fill, row
from trustfence.store import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(tmp_path_factory.mktemp("q") / "traffic.duckdb")
    fill(s, [row(ts=datetime(2026, 12, 1, 9)),
             row(ts=datetime(2026, 12, 1, 10), action="github.pr.merge", decision="denied", reason="merges: no"),
             row(ts=datetime(2026, 12, 1, 11), gateway="Finance Bot", connector="stripe", host="api.stripe.com",
                 action="stripe.refund.create", path="/v1/refunds", decision="would_deny"),
             row(ts=datetime(2026, 12, 1, 12), action="github.pr_x.list", path="/100%_sure")])
    yield s
    s.close()


def seqs(store: Store, **f: object) -> list[int]:
    return [int(r["seq"]) for r in store.query("recent", limit=100, **f)]


def test_each_filter_narrows(store: Store) -> None:
    assert seqs(store) == [1, 2, 3, 4]
    assert seqs(store, gateway="Finance Bot") == [3]
    assert seqs(store, decision="denied") == [2]
    assert seqs(store, connector="stripe") == [3]
    assert seqs(store, action="github.pr.*") == [1, 2]  # not github.pr_x.list: '_' is no wildcard
    assert seqs(store, action="github.pr.merge") == [2]
    assert seqs(store, action="*") == [1, 2, 3, 4]
    assert seqs(store, since=datetime(2026, 12, 1, 10), until=datetime(2026, 12, 1, 12)) == [2, 3]
    assert seqs(store, search="MERGES") == [2]  # reason, any case
    assert seqs(store, search="100%_") == [4]  # LIKE characters are literal
    assert seqs(store, search="api.stripe") == [3]
    assert seqs(store, after_seq=2) == [3, 4]


def test_filters_combine_and_the_newest_n_come_oldest_first(store: Store) -> None:
    assert seqs(store, gateway="Bot", action="github.pr.*", decision="allowed") == [1]
    assert [int(r["seq"]) for r in store.query("recent", limit=2)] == [3, 4]


def test_keyset_pages_walk_back_from_a_seq(store: Store) -> None:
    assert seqs(store, before_seq=3) == [1, 2]
    assert seqs(store, before_seq=4, after_seq=1) == [2, 3]
    assert [int(r["seq"]) for r in store.query("recent", limit=1, before_seq=4)] == [3]
    assert seqs(store, before_seq=1) == []
    assert seqs(store, search="MERGES", before_seq=2) == []  # the window a search page looks through


def test_rows_past_the_retention_period_are_deleted_by_the_writer(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    s = Store(tmp_path / "traffic.duckdb", retention_days=7)
    try:
        fill(s, [row(ts=now - timedelta(days=30)), row(ts=now - timedelta(days=8)), row(ts=now - timedelta(days=1))])
    finally:
        s.close()
    again = Store(tmp_path / "traffic.duckdb", retention_days=7)  # a pass at start
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(again.query("recent", limit=10)) != 1:
            time.sleep(0.05)
        assert [r["seq"] for r in again.query("recent", limit=10)] == [3]
    finally:
        again.close()
