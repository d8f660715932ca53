"""What a pushed pack proves: commit parents read from plain objects and both kinds of delta, bounded."""

from __future__ import annotations

import zlib

import pytest

from tests.unit.connectors.gitbytes import commit, delta, oid, pack
from trustfence.connectors import gitpack
from trustfence.connectors.gitpack import commit_parents, descends_from

ROOT = commit(message="root")
C1 = commit((oid(ROOT),), "one")
C2 = commit((oid(C1),), "two")


def test_plain_commits_and_blobs() -> None:
    got = commit_parents(pack(("blob", b"hello", None), ("commit", C2, None), ("commit", C1, None)))
    assert got == {oid(C2): (oid(C1),), oid(C1): (oid(ROOT),)}
    assert descends_from(got, oid(C2), oid(ROOT))  # leaves the pack at ROOT, which is the old id
    assert not descends_from(got, oid(C1), oid(C2))


def test_merge_commit_has_both_parents() -> None:
    side = commit((oid(ROOT),), "side")
    merge = commit((oid(C1), oid(side)), "merge")
    got = commit_parents(pack(("commit", merge, None), ("commit", side, None)))
    assert got[oid(merge)] == (oid(C1), oid(side))
    assert descends_from(got, oid(merge), oid(C1)) and descends_from(got, oid(merge), oid(ROOT))


def test_ofs_and_ref_deltas_against_commits_resolve() -> None:
    objs = pack(("commit", C1, None), ("ofs", delta(C1, C2), 0), ("ref", delta(C1, commit((oid(C2),), "3")), oid(C1)))
    got = commit_parents(objs)
    assert got[oid(C2)] == (oid(C1),)
    assert got[oid(commit((oid(C2),), "3"))] == (oid(C2),)


def test_delta_against_a_base_outside_the_pack_proves_nothing() -> None:
    got = commit_parents(pack(("ref", delta(C1, C2), oid(C1))))  # a thin pack: the server has C1
    assert got == {}
    assert not descends_from(got, oid(C2), oid(C1))


def test_sha256_ids() -> None:
    root = commit(message="r")
    child = b"tree " + b"1" * 64 + b"\nparent " + oid(root, algo="sha256").encode() + b"\n\nc\n"
    got = commit_parents(pack(("commit", child, None)), 64)
    assert got == {oid(child, algo="sha256"): (oid(root, algo="sha256"),)}


def test_a_cut_pack_keeps_what_came_before_the_cut() -> None:
    full = pack(("commit", C2, None), ("commit", C1, None))
    cut = full[: len(full) - 40]
    assert commit_parents(cut) == {oid(C2): (oid(C1),)}


def test_not_a_pack_or_garbage_proves_nothing() -> None:
    assert commit_parents(b"") == {}
    assert commit_parents(b"PACK\0\0\0\x09\0\0\0\1") == {}  # version 9
    garbage = b"PACK" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"\x95" + b"not zlib at all"
    assert commit_parents(garbage) == {}
    bad_type = b"PACK" + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([0x50]) + zlib.compress(b"x" * 5)
    assert commit_parents(bad_type) == {}  # type 5 is reserved


def test_a_delta_that_lies_about_its_base_proves_nothing() -> None:
    lying = bytearray(delta(C1, C2))
    lying[0] ^= 1  # the source size no longer matches the base
    assert oid(C2) not in commit_parents(pack(("commit", C1, None), ("ofs", bytes(lying), 0)))


def test_inflating_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitpack, "MAX_INFLATE", 1000)
    bomb = pack(("blob", b"\0" * 5000, None), ("commit", C1, None))
    assert commit_parents(bomb) == {}  # the budget ran out on the blob: the commit after it is not read
    assert commit_parents(pack(("commit", C1, None))) == {oid(C1): (oid(ROOT),)}


def test_descends_from_walks_cycles_and_equal_ids() -> None:
    assert descends_from({}, "x", "x")
    assert not descends_from({"a": ("b",), "b": ("a",)}, "a", "c")
