"""Approval events in the store: each approval's last state, filters, and what a stopped daemon left pending."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from trustfence.store import Store


def approval(aid: str, gateway: str = "Bot", created: float = 1_764_000_000.0, **kw: Any) -> dict[str, Any]:
    return {"id": aid, "gateway": gateway, "connector": "github", "action": "github.pr.merge", "method": "PUT",
            "url": "https://api.github.com/repos/a/b/pulls/1/merge", "digest": "d" + aid, "reason": "merges",
            "rule_id": "perm:Bot/github/github.pr.merge", "risk": "high", "approver_role": "", "agent_uid": 4242,
            "answered_by": None, "note": "", "always": False, "created": created, "expires": created + 300, **kw}


def test_each_approval_once_as_its_last_event_left_it_and_pending_ones_expire_with_the_daemon(
        tmp_path: Path) -> None:
    s = Store(tmp_path / "traffic.duckdb")
    try:
        s.record_approval("requested", approval("a1"))
        s.record_approval("approved", approval("a1", answered_by=0, note="ok"))
        s.record_approval("released", approval("a1", answered_by=0, note="ok"))
        s.record_approval("requested", approval("a2", gateway="Other", created=1_764_000_100.0))
        s.record_approval("requested", approval("a3", created=1_700_000_000.0))
        s.record_approval("denied", approval("a3", created=1_700_000_000.0, answered_by=1001, note="no"))
        got = {r["id"]: (r["state"], r["note"]) for r in s.query("approvals")}
        assert got == {"a1": ("approved", "ok"), "a2": ("pending", ""), "a3": ("denied", "no")}
        assert [r["id"] for r in s.query("approvals", gateway="Other")] == ["a2"]
        assert [r["id"] for r in s.query("approvals", since=datetime(2025, 11, 1))] == ["a2", "a1"]
        assert [r["id"] for r in s.query("approvals", state="denied")] == ["a3"]
    finally:
        s.close()
    again = Store(tmp_path / "traffic.duckdb")  # a new daemon: what was pending died with the old one
    try:
        [a2] = [r for r in again.query("approvals") if r["id"] == "a2"]
        assert a2["state"] == "expired" and "daemon stopped" in a2["note"]
        assert {r["id"]: r["state"] for r in again.query("approvals")}["a1"] == "approved"
    finally:
        again.close()
