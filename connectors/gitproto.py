"""Git's smart HTTP push request, read the way ``git receive-pack`` reads it: pkt-lines, then ref updates.

A push is ``POST <repo>/git-receive-pack`` whose body is, in order (protocol v0/v1; git never pushes with v2):

- pkt-lines, each a 4-digit hex length (counting itself) and a payload: optional ``shallow <id>`` lines, then
  one command per ref, ``<old-id> <new-id> <ref>``, the first (or any) followed by a NUL and the client's
  capabilities (``report-status side-band-64k push-options object-format=sha1 agent=git/2.39``);
- a flush packet (``0000``);
- when the client asked for ``push-options``: one pkt-line per option, then another flush;
- the packfile (``PACK``...), absent when every command is a deletion.

A creation has an old id of zeros, a deletion a new id of zeros. Ids are 40 hex digits (SHA-1) or 64
(SHA-256); upper-case hex is accepted and read in lower case, as git does.

``parse_push`` is stricter than the server: anything the server would refuse with a protocol error, and
anything this reader does not follow (a signed push, whose commands sit inside a certificate; a delimiter
packet; an empty packet; a length over git's 65520), raises ``PushError``. The caller then treats the push as
the most dangerous one it could be. The command section is authoritative once its flush packet has been read:
the server stops reading commands there, so a body cut later (the pack beyond the inspection bound) still
names every ref it updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LARGE_PACKET_MAX", "PushError", "PushRequest", "RefUpdate", "first_capabilities", "is_zero", "parse_push",
           "pkt_line", "push_refusal", "read_pkt"]

LARGE_PACKET_MAX = 65520
"""The longest pkt-line git accepts, its 4 length digits included."""

FLUSH: Literal[b""] = b""
"""``read_pkt``'s payload for a flush packet (``0000``); a data packet is never empty (``0004`` is refused)."""

_HEX = frozenset(b"0123456789abcdefABCDEF")
_ID_LENGTHS = (40, 64)  # SHA-1, SHA-256


class PushError(ValueError):
    """The body is not a push request this reader can vouch for; the message says why."""


UpdateKind = Literal["create", "delete", "update"]


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """One command: set ``ref`` from ``old`` to ``new`` (lower-case hex ids; zeros for "absent")."""

    ref: str
    old: str
    new: str

    @property
    def kind(self) -> UpdateKind:
        """``create`` (old is zeros), ``delete`` (new is zeros) or ``update`` (an existing ref moves)."""
        if is_zero(self.old):
            return "create"
        return "delete" if is_zero(self.new) else "update"


@dataclass(frozen=True, slots=True)
class PushRequest:
    """A parsed push. ``updates`` in request order; ``capabilities`` the union of every command's list;
    ``pack`` the bytes after the command section (and the push options), where the packfile starts."""

    updates: tuple[RefUpdate, ...]
    capabilities: frozenset[str]
    pack: bytes


def is_zero(oid: str) -> bool:
    """Whether an id is the null id (all zeros) that stands for "no such ref"."""
    return oid.strip("0") == ""


def read_pkt(data: bytes, pos: int) -> tuple[bytes, int]:
    """(the payload at ``pos`` with one trailing newline removed, or ``FLUSH``; the position after it).

    Raises PushError for a length that is not 4 hex digits, a delimiter or response-end packet (``0001``,
    ``0002``: not part of a push), ``0003``, an empty packet (``0004``), a length over ``LARGE_PACKET_MAX``,
    or a packet cut short by the end of ``data``."""
    head = data[pos:pos + 4]
    if len(head) < 4:
        raise PushError("the body ends inside a pkt-line length")
    if not all(c in _HEX for c in head):
        raise PushError(f"pkt-line length {head!r} is not 4 hex digits")
    size = int(head, 16)
    if size == 0:
        return FLUSH, pos + 4
    if size <= 4:
        raise PushError(f"pkt-line length {head.decode()} is not a data packet")
    if size > LARGE_PACKET_MAX:
        raise PushError(f"pkt-line length {size} is over git's {LARGE_PACKET_MAX}")
    if pos + size > len(data):
        raise PushError("the body ends inside a pkt-line")
    payload = data[pos + 4:pos + size]
    return (payload[:-1] if payload.endswith(b"\n") else payload), pos + size


def _hex_id(raw: bytes, what: str) -> str:
    if len(raw) not in _ID_LENGTHS or not all(c in _HEX for c in raw):
        raise PushError(f"{what} {raw[:80]!r} is not an object id")
    return raw.decode("ascii").lower()


def _command(line: bytes, size: int) -> RefUpdate:
    """``<old> <new> <ref>`` with ids of ``size`` hex digits, as receive-pack's ``queue_command`` reads it."""
    if len(line) < 2 * size + 3 or line[size:size + 1] != b" " or line[2 * size + 1:2 * size + 2] != b" ":
        raise PushError(f"expected '<old> <new> <ref>', got {line[:120]!r}")
    old = _hex_id(line[:size], "old id")
    new = _hex_id(line[size + 1:2 * size + 1], "new id")
    try:
        ref = line[2 * size + 2:].decode("utf-8")
    except UnicodeDecodeError:
        raise PushError("a ref name is not UTF-8") from None
    if not ref.startswith("refs/") or any(c < " " or c == "\x7f" for c in ref):
        raise PushError(f"{ref[:120]!r} is not a ref a push can update")
    return RefUpdate(ref, old, new)


def parse_push(body: bytes) -> PushRequest:
    """The commands of a ``git-receive-pack`` request body. Raises PushError (see the module docstring)."""
    updates: list[RefUpdate] = []
    caps: set[str] = set()
    size = 0  # hex digits per id, fixed by the first command
    pos = 0
    while True:
        line, pos = read_pkt(body, pos)
        if line == FLUSH:
            break
        if line.startswith(b"shallow "):
            if updates:
                raise PushError("a shallow line after the first command")
            _hex_id(line[8:], "shallow id")
            continue
        line, nul, features = line.partition(b"\0")
        if nul:
            caps.update(features.decode("utf-8", "replace").split())
        if line == b"push-cert":
            raise PushError("a signed push (its commands are inside the certificate) is not read")
        if not size:
            size = next((n for n in _ID_LENGTHS if line[n:n + 1] == b" "), 0)
            if not size:
                raise PushError(f"expected '<old> <new> <ref>', got {line[:120]!r}")
        updates.append(_command(line, size))
    if updates and "push-options" in caps:
        while True:
            option, pos = read_pkt(body, pos)
            if option == FLUSH:
                break
    return PushRequest(tuple(updates), frozenset(caps), body[pos:] if updates else b"")


def first_capabilities(body: bytes) -> frozenset[str]:
    """The capabilities the first command (or push certificate) line of a push asks for; empty when the body
    does not start with readable pkt-lines. Used to answer a refused push in the form the client reads."""
    pos = 0
    try:
        while True:
            line, pos = read_pkt(body, pos)
            if line == FLUSH:
                return frozenset()
            if not line.startswith(b"shallow "):
                return frozenset(line.partition(b"\0")[2].decode("utf-8", "replace").split())
    except PushError:
        return frozenset()


def push_refusal(capabilities: frozenset[str], refs: tuple[str, ...] | None, message: list[str]) -> bytes:
    """A receive-pack result that refuses a whole push, as git prints it: ``message`` as ``remote:`` lines (on
    side-band 2 when the client asked for a side band) and, when ``refs`` are known, ``! [remote rejected]`` for
    each with the first line as the reason; when they are not, an unpack failure carrying that reason."""
    reason = " ".join(message[0].split())[:900] if message else "refused"
    status = (pkt_line(b"unpack ok\n") + b"".join(pkt_line(f"ng {ref} {reason}\n".encode()) for ref in refs)
              if refs else pkt_line(f"unpack {reason}\n".encode())) + b"0000"
    if "side-band-64k" not in capabilities and "side-band" not in capabilities:
        return status if "report-status" in capabilities or "report-status-v2" in capabilities else b"0000"
    size = (LARGE_PACKET_MAX if "side-band-64k" in capabilities else 1000) - 5
    out = b"".join(pkt_line(b"\2" + f"{' '.join(line.split())[:900]}\n".encode()) for line in message)
    out += b"".join(pkt_line(b"\1" + status[i:i + size]) for i in range(0, len(status), size))
    return out + b"0000"


def pkt_line(payload: bytes) -> bytes:
    """One pkt-line: 4 hex digits of length (counting themselves), then ``payload``."""
    return b"%04x" % (len(payload) + 4) + payload
