"""The push request reader: pkt-lines and ref update commands, as receive-pack reads them, stricter."""

from __future__ import annotations

import pytest

from tests.unit.connectors.gitbytes import FLUSH, ZERO, commands, pkt
from trustfence.connectors.gitproto import (
    LARGE_PACKET_MAX,
    PushError,
    RefUpdate,
    first_capabilities,
    is_zero,
    parse_push,
    push_refusal,
    read_pkt,
)


A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_one_update_with_capabilities_after_the_nul() -> None:
    push = parse_push(commands(f"{A} {B} refs/heads/main") + b"PACKrest")
    assert push.updates == (RefUpdate("refs/heads/main", A, B),)
    assert {"report-status", "side-band-64k", "agent=git/2.39.5"} <= push.capabilities
    assert push.pack == b"PACKrest"
    assert push.updates[0].kind == "update"


def test_several_refs_creation_and_deletion() -> None:
    push = parse_push(commands(f"{ZERO} {A} refs/heads/new", f"{B} {ZERO} refs/heads/old",
                               f"{B} {C} refs/tags/v1"))
    assert [(u.ref, u.kind) for u in push.updates] == [("refs/heads/new", "create"), ("refs/heads/old", "delete"),
                                                       ("refs/tags/v1", "update")]
    assert push.pack == b""


def test_capabilities_on_a_later_line_count_too() -> None:
    body = pkt(f"{A} {B} refs/heads/a\n") + pkt(f"{A} {C} refs/heads/b\0push-options\n") + FLUSH
    body += pkt("ci.skip\n") + FLUSH + b"PACK..."
    push = parse_push(body)
    assert "push-options" in push.capabilities and len(push.updates) == 2
    assert push.pack == b"PACK..."  # the options are not the pack


def test_push_options_are_skipped_before_the_pack() -> None:
    body = commands(f"{A} {B} refs/heads/main", caps="report-status push-options")
    body += pkt("merge_request.create\n") + pkt("ci.skip") + FLUSH + b"PACKdata"
    assert parse_push(body).pack == b"PACKdata"


def test_shallow_lines_before_the_commands() -> None:
    body = pkt(f"shallow {C}\n") + commands(f"{A} {B} refs/heads/main")
    assert parse_push(body).updates == (RefUpdate("refs/heads/main", A, B),)


def test_upper_case_ids_read_in_lower_case_and_sha256() -> None:
    up = parse_push(commands(f"{A.upper()} {B.upper()} refs/heads/main"))
    assert up.updates[0].old == A and up.updates[0].new == B
    long_a, zero64 = "a" * 64, "0" * 64
    push = parse_push(commands(f"{zero64} {long_a} refs/heads/x", caps="object-format=sha256"))
    assert push.updates == (RefUpdate("refs/heads/x", zero64, long_a),) and push.updates[0].kind == "create"


def test_no_commands_is_an_empty_push() -> None:
    assert parse_push(FLUSH).updates == ()


@pytest.mark.parametrize(("body", "why"), [
    (b"", "ends inside a pkt-line length"),
    (b"00", "ends inside a pkt-line length"),
    (pkt(f"{A} {B} refs/heads/main"), "ends inside a pkt-line length"),  # no flush: cut
    (b"zz12" + FLUSH, "not 4 hex digits"),
    (b"0001" + FLUSH, "not a data packet"),  # a v2 delimiter
    (b"0002", "not a data packet"),
    (b"0004" + FLUSH, "not a data packet"),  # empty packet
    (b"fff5" + b"x" * (0xfff5 - 4), f"over git's {LARGE_PACKET_MAX}"),
    (b"00ff" + f"{A} {B} refs/heads/main".encode(), "ends inside a pkt-line"),  # length over the body
    (commands(f"{A} {B}"), "expected '<old> <new> <ref>'"),
    (commands(f"{A}x{B} refs/heads/main"), "expected '<old> <new> <ref>'"),
    (commands(f"{'g' * 40} {B} refs/heads/main"), "not an object id"),
    (commands(f"{A} {'b' * 39}  refs/heads/main"), "not an object id"),
    (commands(f"{A} {B} refs/heads/main", f"{'a' * 64} {'b' * 64} refs/heads/x"), "expected"),
    (commands(f"{A} {B} HEAD"), "not a ref a push can update"),
    (commands(f"{A} {B} refs/heads/a\tb"), "not a ref a push can update"),
    (pkt(f"{A} {B} refs/heads/\xff\n".encode("latin-1")) + FLUSH, "not UTF-8"),
    (pkt("push-cert\0report-status\n") + pkt("certificate version 0.1\n") + FLUSH, "signed push"),
    (pkt("shallow 123\n") + FLUSH, "not an object id"),
    (commands(f"{A} {B} refs/heads/main", caps="push-options") + pkt("opt"), "ends inside a pkt-line length"),
])
def test_what_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(PushError, match=why.replace("(", r"\(").replace("'", ".")):
        parse_push(body)


def test_shallow_after_a_command_is_refused() -> None:
    body = pkt(f"{A} {B} refs/heads/main\0report-status\n") + pkt(f"shallow {C}\n") + FLUSH
    with pytest.raises(PushError, match="shallow line after"):
        parse_push(body)


def test_read_pkt_positions_and_newline() -> None:
    data = pkt("abc\n") + FLUSH + pkt("x")
    assert read_pkt(data, 0) == (b"abc", 8)
    assert read_pkt(data, 8) == (b"", 12)
    assert read_pkt(data, 12) == (b"x", 17)
    assert read_pkt(b"000A" + b"123456", 0) == (b"123456", 10)  # upper-case hex length


def test_is_zero() -> None:
    assert is_zero(ZERO) and is_zero("0" * 64) and not is_zero("0" * 39 + "1")


def test_first_capabilities_skip_shallow_lines_and_tolerate_garbage() -> None:
    body = pkt(f"shallow {C}\n") + commands(f"{A} {B} refs/heads/main", caps="report-status side-band-64k")
    assert first_capabilities(body) == {"report-status", "side-band-64k"}
    assert first_capabilities(b"garbage") == frozenset() and first_capabilities(FLUSH) == frozenset()


def test_push_refusal_splits_long_status_over_side_band_packets() -> None:
    refs = tuple(f"refs/heads/b{i:04d}" for i in range(40))
    out = push_refusal(frozenset({"side-band", "report-status"}), refs, ["why " * 300])
    lines, pos = [], 0
    while pos < len(out):
        line, pos = read_pkt(out, pos)
        lines.append(line)
    assert all(len(ln) + 4 <= 1000 for ln in lines)  # side-band (not 64k) packets are at most 1000 bytes
    assert len(lines[0]) < 1000 and lines[0][:1] == b"\2"
    assert sum(ln[:1] == b"\1" for ln in lines) > 1 and lines[-1] == b""
