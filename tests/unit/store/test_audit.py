"""The audit log of changes: appended, hash-chained, anchored outside the file, signed; any edit, insertion,
deletion, truncation, replacement or re-sealing found, and nothing appended to a log with a problem."""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path

import pytest
from trustfence.store import AuditError, AuditLog, Head, Signer, check, load_public, report_of
from trustfence.store.audit import _digest


def filled(tmp_path: Path, n: int = 4, **kw: object) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl", **kw)  # type: ignore[arg-type]
    for i in range(n):
        log.append(f"uid {i}", "permission set", {"before": i}, {"after": i + 1})
    return log


def changes(log: AuditLog) -> list[dict[str, object]]:
    return [e for e in log.read(1000) if e["what"] != "checkpoint"]


def test_events_are_appended_in_order_and_the_chain_holds(tmp_path: Path) -> None:
    log = filled(tmp_path)
    events = log.read(10)
    assert [(e["seq"], e["what"]) for e in events[:2]] == [(1, "audit log started"), (2, "checkpoint")]
    assert events[0]["after"]["public_key"] == log.signer.public_pem()  # the key, in the chain from its start
    assert [e["seq"] for e in events[2:]] == [3, 4, 5, 6]
    assert [e["who"] for e in events[2:]] == ["uid 0", "uid 1", "uid 2", "uid 3"]
    assert all(e["prev"] == before["hash"] for before, e in itertools.pairwise(events))
    assert log.verify() == ""
    for name in ("audit.jsonl", "audit.key", "audit.head"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert [e["seq"] for e in log.read(2)] == [5, 6]  # the newest, oldest first


def test_a_reopened_log_continues_the_same_chain_after_signing_it(tmp_path: Path) -> None:
    filled(tmp_path, 2)
    again = AuditLog(tmp_path / "audit.jsonl")
    again.append("uid 0", "kill switch activated")
    assert [(e["seq"], e["what"]) for e in again.read(10)][2:] == [
        (3, "permission set"), (4, "permission set"), (5, "checkpoint"), (6, "kill switch activated")]
    assert again.verify() == ""


def test_a_signed_checkpoint_every_n_events_verifies_off_host_with_the_public_key(tmp_path: Path) -> None:
    log = filled(tmp_path, 7, every=3)
    whats = [e["what"] for e in log.read(100)]
    assert [i for i, w in enumerate(whats) if w == "checkpoint"] == [1, 5, 9]
    public = load_public(log.signer.public_pem().encode())
    r = check(log.path, public, [], every=3)
    assert (r.problems, r.checkpoints, r.unsigned) == ([], 3, 1)


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert", "reorder"])
def test_tampering_breaks_the_chain_at_the_changed_line(tmp_path: Path, tamper: str) -> None:
    log = filled(tmp_path)
    lines = log.path.read_text().splitlines()
    if tamper == "edit":
        event = json.loads(lines[3])
        event["after"] = {"after": 999}
        lines[3] = json.dumps(event, sort_keys=True)
    elif tamper == "delete":
        del lines[3]
    elif tamper == "insert":
        lines.insert(3, lines[2])
    else:
        lines[3], lines[4] = lines[4], lines[3]
    log.path.write_text("\n".join(lines) + "\n")
    assert log.verify().startswith(f"{log.path}:4: the chain breaks here")
    with pytest.raises(AuditError):
        AuditLog(log.path)


def test_a_truncated_log_no_longer_reaches_its_anchored_head(tmp_path: Path) -> None:
    log = filled(tmp_path, 4)
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text("".join(lines[:4]))  # a clean cut: what remains is a valid chain
    assert "ends at seq 4, but its head was anchored at seq 6" in log.verify()
    before = log.path.read_bytes()
    with pytest.raises(AuditError, match="cannot be continued.*tf audit reset"):
        AuditLog(log.path)
    assert log.path.read_bytes() == before


def test_the_database_anchor_catches_a_cut_when_the_head_file_is_removed_too(tmp_path: Path) -> None:
    heads: list[tuple[int, str]] = []
    log = filled(tmp_path, 4, anchor=lambda s, h: heads.append((s, h)))
    assert heads[-1] == (6, log.read(1)[0]["hash"])
    log.path.write_text("".join(log.path.read_text().splitlines(keepends=True)[:4]))
    (tmp_path / "audit.head").unlink()
    db = Head(*heads[-1], where="traffic.duckdb")
    problems = report_of(log.path, log.signer, db).problems
    assert any("audit.head is missing, but the traffic database anchors" in p for p in problems)
    assert any("head was anchored at seq 6 (traffic.duckdb)" in p for p in problems)


def test_a_deleted_log_is_not_silently_replaced_by_a_new_chain(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    log.path.unlink()
    with pytest.raises(AuditError, match="is missing, but its head was anchored at seq 4"):
        AuditLog(log.path)
    assert not log.path.exists()
    (tmp_path / "audit.head").unlink()  # the anchor removed as well: the key still says a chain existed
    with pytest.raises(AuditError, match="missing although this host has signed"):
        AuditLog(log.path)


def test_a_chain_resealed_without_the_key_is_found(tmp_path: Path) -> None:
    log = filled(tmp_path, 5, every=3)
    events = log.read(100)
    events[3]["after"] = {"after": 999}  # the edit, then every hash recomputed so the chain itself holds
    prev = "0" * 64
    for e in events:
        e["prev"] = prev
        e["hash"] = prev = _digest(prev, e)
    log.path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    forged = Signer(tmp_path / "other.key", tmp_path / "audit.head")
    forged.create()
    forged.write_head(events[-1]["seq"], events[-1]["hash"])  # even the head rewritten, with another key
    problems = log.report().problems
    assert any("signature does not verify" in p for p in problems), problems
    r = check(log.path, log.signer.public, [], every=3)  # off host: the copy and the public key alone
    assert r.problems and "checkpoint's signature does not verify" in r.problems[0]
    stripped = [e for e in events if e["what"] != "checkpoint"]  # re-sealed again without the checkpoints
    prev = "0" * 64
    for i, e in enumerate(stripped, 1):
        e["seq"], e["prev"] = i, prev
        e["hash"] = prev = _digest(prev, e)
    log.path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in stripped))
    assert "carry no signed checkpoint" in check(log.path, log.signer.public, [], every=3).problems[0]


def test_a_log_whose_last_line_cannot_be_read_is_not_continued(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    with log.path.open("a") as f:
        f.write('{"seq": 5, "who": "cut sh\n')
    before = log.path.read_bytes()
    with pytest.raises(AuditError, match="cannot be continued.*:5: not an audit event"):
        AuditLog(log.path)
    assert log.path.read_bytes() == before  # nothing written
    assert log.verify().startswith(f"{log.path}:5: not an audit event")


def test_reset_keeps_the_old_file_and_starts_a_chain_that_says_why(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)
    log.path.write_text("".join(log.path.read_text().splitlines(keepends=True)[:1]))
    new, event = AuditLog.reset(log.path, "uid 0 (root)", "disk restored from backup")
    assert event["seq"] == 1 and event["what"] == "audit reset" and event["after"] == {
        "reason": "disk restored from backup"}
    assert event["before"]["anchored"]["seq"] == 5
    assert any("anchored at seq 5" in p for p in event["before"]["problems"])
    kept = Path(event["before"]["kept_as"])
    assert kept.read_text().count("\n") == 1  # the evidence, untouched
    assert new.verify() == "" and AuditLog(log.path).verify() == ""
    assert [e["what"] for e in new.read(10)] == ["audit reset", "checkpoint"]
