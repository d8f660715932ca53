"""What a pushed packfile proves about history: the parents of the commits it carries.

A proxy does not hold the repository, so it cannot ask whether an update is a fast-forward. It can read the
commits the push sends: if walking parents from the new commit, through commits inside the pack only, reaches
the ref's old commit, the old commit is an ancestor of the new one and the update loses nothing. Anything
else (the walk leaves the pack, the new commit was already on the server, the pack is cut at the inspection
bound or does not parse, the object is not a commit) proves nothing, and the caller counts the update as a
force push.

Pack format (version 2 or 3): ``PACK``, version, object count (big-endian 32-bit), then per object a header
(type in bits 4-6 of the first byte, size in a little-endian base-128 varint), for ``OFS_DELTA`` a negative
offset to its base and for ``REF_DELTA`` the base's id, then zlib data. Commits may be stored as deltas
against other commits; both delta kinds are resolved when the base is a commit of the same pack. Reading is
bounded: at most ``MAX_INFLATE`` bytes are inflated per pack (a small body cannot make the enforcer inflate a
bomb), and only commits are kept.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping

__all__ = ["MAX_INFLATE", "commit_parents", "descends_from"]

MAX_INFLATE = 16 * 1024 * 1024
"""Bytes inflated per pack at most; what lies beyond proves nothing."""

_COMMIT, _OFS_DELTA, _REF_DELTA = 1, 6, 7
_WINDOW = 64 * 1024  # compressed bytes handed to zlib at a time
_CHUNK = 64 * 1024  # inflated bytes taken from zlib at a time


class _Stop(Exception):
    """The pack cannot be read further: what was read so far stands."""


def _varint_header(pack: bytes, pos: int) -> tuple[int, int, int]:
    """(type, size, position after the header)."""
    if pos >= len(pack):
        raise _Stop
    c = pack[pos]
    kind, size, shift = (c >> 4) & 7, c & 15, 4
    pos += 1
    while c & 0x80:
        if pos >= len(pack) or shift > 60:
            raise _Stop
        c = pack[pos]
        size |= (c & 0x7F) << shift
        shift, pos = shift + 7, pos + 1
    return kind, size, pos


def _ofs_base(pack: bytes, pos: int) -> tuple[int, int]:
    """(the negative offset of an OFS_DELTA's base, position after it): git's "offset encoding"."""
    if pos >= len(pack):
        raise _Stop
    c = pack[pos]
    pos += 1
    ofs = c & 0x7F
    while c & 0x80:
        if pos >= len(pack) or ofs > 1 << 40:
            raise _Stop
        c = pack[pos]
        ofs = ((ofs + 1) << 7) | (c & 0x7F)
        pos += 1
    return ofs, pos


def _inflate(pack: bytes, pos: int, keep: bool, budget: list[int]) -> tuple[bytes, int]:
    """(the inflated object when ``keep``, else b""; the position after its zlib stream)."""
    view = memoryview(pack)
    d = zlib.decompressobj()
    out = bytearray()
    fed = pos
    tail = b""
    while not d.eof:
        if tail:
            data: bytes | memoryview = tail
        elif fed < len(pack):
            data, fed = view[fed:fed + _WINDOW], min(fed + _WINDOW, len(pack))
        else:
            raise _Stop  # cut inside the object
        try:
            chunk = d.decompress(data, _CHUNK)
        except zlib.error:
            raise _Stop from None
        tail = d.unconsumed_tail
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise _Stop
        if keep:
            out += chunk
    return bytes(out), fed - len(d.unused_data)


def _apply_delta(base: bytes, delta: bytes, budget: list[int]) -> bytes:
    """The object a delta builds from ``base`` (git's copy/insert instructions); its size counts against
    ``budget`` like inflated bytes."""
    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            if pos >= len(delta):
                raise _Stop
            c = delta[pos]
            value, shift, pos = value | (c & 0x7F) << shift, shift + 7, pos + 1
            if not c & 0x80:
                return value, pos

    src_size, pos = varint(0)
    dst_size, pos = varint(pos)
    budget[0] -= dst_size
    if src_size != len(base) or budget[0] < 0:
        raise _Stop
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:
            offset = size = 0
            for i in range(7):  # bits 0-3: offset bytes present; bits 4-6: size bytes present
                if op & (1 << i):
                    if pos >= len(delta):
                        raise _Stop
                    if i < 4:
                        offset |= delta[pos] << (8 * i)
                    else:
                        size |= delta[pos] << (8 * (i - 4))
                    pos += 1
            size = size or 0x10000
            if offset + size > len(base):
                raise _Stop
            out += base[offset:offset + size]
        elif op:
            if pos + op > len(delta):
                raise _Stop
            out += delta[pos:pos + op]
            pos += op
        else:
            raise _Stop  # reserved instruction
    if len(out) != dst_size:
        raise _Stop
    return bytes(out)


def _parents(commit: bytes, size: int) -> tuple[str, ...]:
    head = commit.split(b"\n\n", 1)[0]
    out = []
    for line in head.split(b"\n"):
        if line.startswith(b"parent "):
            pid = line[7:].decode("ascii", "replace").lower()
            if len(pid) == size:
                out.append(pid)
    return tuple(out)


def commit_parents(pack: bytes, id_size: int = 40) -> dict[str, tuple[str, ...]]:
    """Commit id -> its parent ids, for every commit readable in ``pack`` (``id_size`` hex digits per id:
    40 for SHA-1, 64 for SHA-256). Never raises: what cannot be read is left out."""
    algo = "sha256" if id_size == 64 else "sha1"
    raw_id = id_size // 2
    out: dict[str, tuple[str, ...]] = {}
    if len(pack) < 12 or pack[:4] != b"PACK" or int.from_bytes(pack[4:8], "big") not in (2, 3):
        return out
    count = int.from_bytes(pack[8:12], "big")
    commits_at: dict[int, bytes] = {}  # offset -> commit body, for OFS_DELTA bases
    commits_by_id: dict[str, bytes] = {}
    budget = [MAX_INFLATE]
    pos = 12
    try:
        for _ in range(count):
            start = pos
            kind, _size, pos = _varint_header(pack, pos)
            base: bytes | None = None
            if kind == _OFS_DELTA:
                ofs, pos = _ofs_base(pack, pos)
                base = commits_at.get(start - ofs)
            elif kind == _REF_DELTA:
                if pos + raw_id > len(pack):
                    raise _Stop
                base = commits_by_id.get(pack[pos:pos + raw_id].hex())
                pos += raw_id
            elif kind not in (1, 2, 3, 4):
                raise _Stop
            data, pos = _inflate(pack, pos, kind == _COMMIT or base is not None, budget)
            if base is not None:
                data = _apply_delta(base, data, budget)
            elif kind != _COMMIT:
                continue
            oid = hashlib.new(algo, b"commit %d\0" % len(data) + data).hexdigest()
            commits_at[start] = commits_by_id[oid] = data
            out[oid] = _parents(data, id_size)
    except _Stop:
        pass
    return out


def descends_from(parents: Mapping[str, tuple[str, ...]], new: str, old: str) -> bool:
    """Whether walking parents from ``new`` through ``parents`` reaches ``old`` (``new == old`` included)."""
    seen: set[str] = set()
    stack = [new]
    while stack:
        oid = stack.pop()
        if oid == old:
            return True
        if oid not in seen:
            seen.add(oid)
            stack.extend(parents.get(oid, ()))
    return False
