"""Traffic rows for store tests: real rows through the real writer into a real DuckDB file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trustfence.store import Store, TrafficRow


def row(**kw: Any) -> TrafficRow:
    base: dict[str, Any] = dict(ts=datetime(2026, 12, 1, 10, 0), gateway="Bot", sandbox="tf-000001",
                                client_addr="10.201.0.2", method="GET", scheme="https", host="api.github.com",
                                port=443, path="/repos/acme/widgets/pulls", connector="github",
                                action="github.pr.list", decision="allowed", reason="allowed by permission",
                                rule_id="perm:Bot/github/github.pr.*", decision_id="d1", status=200,
                                upstream_status=200, latency_ms=3.5, bytes_in=0, bytes_out=100)
    return TrafficRow(**(base | kw))


def fill(store: Store, rows: list[TrafficRow]) -> None:
    for r in rows:
        store.submit(r)
    assert store.flush()
