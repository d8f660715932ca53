"""The audit log of changes: appended, hash-chained, and any edit, insertion or deletion found."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from trustfence.store import AuditError, AuditLog


def filled(tmp_path: Path, n: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(n):
        log.append(f"uid {i}", "permission set", {"before": i}, {"after": i + 1})
    return log


def test_events_are_appended_in_order_and_the_chain_holds(tmp_path: Path) -> None:
    log = filled(tmp_path)
    events = log.read(10)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["who"] for e in events] == ["uid 0", "uid 1", "uid 2", "uid 3"]
    assert all(e["prev"] == before["hash"] for before, e in zip(events, events[1:]))
    assert log.verify() == ""
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    assert [e["seq"] for e in log.read(2)] == [3, 4]  # the newest, oldest first


def test_a_reopened_log_continues_the_same_chain(tmp_path: Path) -> None:
    filled(tmp_path, 2)
    again = AuditLog(tmp_path / "audit.jsonl")
    again.append("uid 0", "kill switch activated")
    assert [e["seq"] for e in again.read(10)] == [1, 2, 3]
    assert again.verify() == ""


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert", "reorder"])
def test_tampering_breaks_the_chain_at_the_changed_line(tmp_path: Path, tamper: str) -> None:
    log = filled(tmp_path)
    lines = log.path.read_text().splitlines()
    if tamper == "edit":
        event = json.loads(lines[1])
        event["after"] = {"after": 999}
        lines[1] = json.dumps(event, sort_keys=True)
    elif tamper == "delete":
        del lines[1]
    elif tamper == "insert":
        lines.insert(1, lines[0])
    else:
        lines[1], lines[2] = lines[2], lines[1]
    log.path.write_text("\n".join(lines) + "\n")
    assert log.verify() == f"{log.path}:2: the chain breaks here (edited, inserted or deleted lines)"


def test_a_log_whose_last_line_cannot_be_read_is_not_continued(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    with log.path.open("a") as f:
        f.write('{"seq": 3, "who": "cut sh\n')
    before = log.path.read_bytes()
    with pytest.raises(AuditError, match="cannot be continued.*move it aside"):
        AuditLog(log.path)
    assert log.path.read_bytes() == before  # nothing written
    assert log.verify() == f"{log.path}:3: not JSON"
