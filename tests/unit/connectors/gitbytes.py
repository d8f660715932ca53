"""Git wire bytes built by hand for the git parsers' tests: pkt-lines, commits, packs and deltas."""

from __future__ import annotations

import hashlib
import zlib

ZERO = "0" * 40


def pkt(payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return b"%04x" % (len(data) + 4) + data


FLUSH = b"0000"


def commands(*lines: str, caps: str = "report-status side-band-64k agent=git/2.39.5") -> bytes:
    """The command section of a push: the first line carries ``caps`` after a NUL; then a flush."""
    out = b""
    for i, line in enumerate(lines):
        out += pkt(line.encode() + (b"\0" + caps.encode() if i == 0 else b"") + b"\n")
    return out + FLUSH


def commit(parents: tuple[str, ...] = (), message: str = "m") -> bytes:
    head = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
    head += b"".join(b"parent %s\n" % p.encode() for p in parents)
    return head + b"author A <a@example.com> 0 +0000\ncommitter A <a@example.com> 0 +0000\n\n" + message.encode() + b"\n"


def oid(data: bytes, kind: bytes = b"commit", algo: str = "sha1") -> str:
    return hashlib.new(algo, kind + b" %d\0" % len(data) + data).hexdigest()


def _header(kind: int, size: int) -> bytes:
    out = bytearray([(kind << 4) | (size & 15)])
    size >>= 4
    while size:
        out[-1] |= 0x80
        out.append(size & 0x7F)
        size >>= 7
    return bytes(out)


def _ofs(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        n -= 1
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _size(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def delta(base: bytes, target: bytes) -> bytes:
    """A git delta: copy the common prefix from ``base``, insert the rest."""
    n = 0
    while n < min(len(base), len(target)) and base[n] == target[n]:
        n += 1
    out = _size(len(base)) + _size(len(target))
    if n:
        out += bytes([0x80 | 0x10 | 0x20, n & 0xFF, n >> 8])  # offset 0 (no offset bytes), 2 size bytes
    rest = target[n:]
    for i in range(0, len(rest), 127):
        out += bytes([len(rest[i:i + 127])]) + rest[i:i + 127]
    return out


def pack(*objects: tuple[str, bytes, object]) -> bytes:
    """A version 2 pack. Each object is ``("commit"|"blob", data, None)``, ``("ofs", delta, index of its base)``
    or ``("ref", delta, base id)``."""
    out = b"PACK" + (2).to_bytes(4, "big") + len(objects).to_bytes(4, "big")
    starts: list[int] = []
    for kind, data, base in objects:
        starts.append(len(out))
        if kind == "ofs":
            assert isinstance(base, int)
            out += _header(6, len(data)) + _ofs(starts[-1] - starts[base])
        elif kind == "ref":
            assert isinstance(base, str)
            out += _header(7, len(data)) + bytes.fromhex(base)
        else:
            out += _header({"commit": 1, "tree": 2, "blob": 3, "tag": 4}[kind], len(data))
        out += zlib.compress(data)
    return out + hashlib.sha1(out).digest()
