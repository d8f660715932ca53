"""Bodies: the request body decoded once, within bounds, for everything after it to read.

mitmproxy decodes a ``Content-Encoding`` in one go (``get_content``, ``text``, ``json()``) and keeps the last
result in a module-level cache: a 512 KiB gzip body became a 1.26 GB peak and 806 MB kept. Here the body is
decoded as a stream (gzip, deflate, br, zstd, in any chain), keeping only the first ``INSPECT_BYTES`` that
classification reads and counting the rest, so memory stays flat whatever the body claims to hold:

- decoded beyond ``DECODED_MAX``, or beyond ``RATIO_MAX`` times its encoded size once past ``RATIO_FLOOR``:
  ``413`` and a row, nothing sent upstream;
- an encoding the enforcer cannot read: ``415``; a body that does not decode as its header says: ``400``.
  What the classifier cannot read could mean anything to the upstream.

The result is the flow record's ``body`` (``Body``); Classify builds the connectors' view from it and never
touches mitmproxy's decoders. ``decode_bounded`` is the pure part, also used to scrub encoded responses.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, cast

import brotli
import zstandard
from mitmproxy import http

from trustfence.connectors.base import INSPECT_BYTES
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import record_of

__all__ = ["Body", "BodyError", "Bodies", "DECODED_MAX", "METHOD_OVERRIDE", "RATIO_FLOOR", "RATIO_MAX",
           "decode_bounded"]

DECODED_MAX = 16 * 1024 * 1024
"""The most a request body may decode to."""
RATIO_MAX = 100
"""How many times its encoded size a decoded body may be, once past ``RATIO_FLOOR``."""
RATIO_FLOOR = 1024 * 1024
"""Below this decoded size the ratio is not checked: small, highly repetitive bodies are ordinary."""
_CHUNK = 64 * 1024  # the most any one decoder step may produce


class BodyError(ValueError):
    """The body cannot be read: ``status`` says how the enforcer answers (400, 413, 415)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Body:
    """A decoded body as classification sees it: its first ``keep`` bytes, whether that is all of it, and
    whether a method-override field name (``METHOD_OVERRIDE``) occurs anywhere in it, beyond ``keep`` too (see
    proxy.target)."""

    head: bytes
    complete: bool
    mentions_method_field: bool = False


_NAMES = rb"(?:(?:_|%5f)method|x-http-method-override|x-http-method|x-method-override)"
METHOD_OVERRIDE = re.compile(
    rb"(?:^|[&;?\s])" + _NAMES + rb"=" +       # a form or query field: _method=DELETE
    rb'|"' + _NAMES + rb'"\s*:' +              # a JSON member: "_method": "DELETE"
    rb'|\bname="?' + _NAMES + rb'"?[;\s]',     # a multipart part: name="_method"
    re.IGNORECASE)
"""A method-override field in a body, shaped as a field: ``_method`` (or ``%5Fmethod``),
``X-HTTP-Method[-Override]`` or ``X-Method-Override`` as a form field, a JSON member or a multipart part, as
frameworks read them (``payment_method`` is not one, nor is the text ``_method`` inside a value or a file)."""
_OVERLAP = 48  # a mention (and the bytes around it) split across two decoder steps is still found

def _inflate(chunks: Iterator[bytes], wbits: int | None) -> Iterator[bytes]:
    """zlib/gzip (several gzip members too); ``wbits`` None: zlib if the first bytes are a zlib header, else
    raw deflate, as clients sending ``deflate`` do both."""
    d: zlib._Decompress | None = None
    for chunk in chunks:
        while chunk:
            if d is None:
                bits = wbits if wbits is not None else (
                    15 if len(chunk) > 1 and chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0 else -15)
                d = zlib.decompressobj(bits)
            yield d.decompress(chunk, _CHUNK)
            chunk = d.unconsumed_tail
            while d.eof is False and not chunk and (more := d.decompress(b"", _CHUNK)):
                yield more
            if d.eof:
                chunk, d = chunk + d.unused_data, None
                if wbits != 31:  # only gzip has members; anything after a zlib stream is garbage
                    if chunk:
                        raise BodyError(400, "data after the end of the deflate stream")
                    break
    if d is not None and not d.eof:
        raise BodyError(400, "the compressed body ends early")


def _unbrotli(chunks: Iterator[bytes]) -> Iterator[bytes]:
    d = brotli.Decompressor()
    for chunk in chunks:
        yield d.process(chunk, output_buffer_limit=_CHUNK)
        while not d.can_accept_more_data():
            yield d.process(b"", output_buffer_limit=_CHUNK)
    if not d.is_finished():
        raise BodyError(400, "the brotli body ends early")


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of chunks (what zstandard's bounded reader wants)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buf = chunks, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return b""
            self._buf = nxt
        n = len(self._buf) if size < 0 else size
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _unzstd(chunks: Iterator[bytes]) -> Iterator[bytes]:
    source = cast(IO[bytes], _ChunkReader(chunks))  # a readable file is all stream_reader calls
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
    while out := reader.read(_CHUNK):
        yield out


_DECODERS: dict[str, Callable[[Iterator[bytes]], Iterator[bytes]]] = {
    "gzip": lambda c: _inflate(c, 31),
    "x-gzip": lambda c: _inflate(c, 31),
    "deflate": lambda c: _inflate(c, None),
    "br": _unbrotli,
    "zstd": _unzstd,
}


def decode_bounded(raw: bytes, content_encoding: str, keep: int = INSPECT_BYTES, limit: int = DECODED_MAX,
                   ratio: int = RATIO_MAX, ratio_floor: int = RATIO_FLOOR) -> Body:
    """The first ``keep`` decoded bytes of ``raw`` and whether they are all of it; raises BodyError.

    ``content_encoding`` is the header's value: codings in the order they were applied (undone last first).
    Decoding is streamed and stops at ``limit`` or past ``ratio``: memory never holds more than ``keep`` plus
    one step of a decoder."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if not codings:
        return Body(raw[:keep], len(raw) <= keep, METHOD_OVERRIDE.search(raw) is not None)
    for c in codings:
        if c not in _DECODERS:
            raise BodyError(415, f"Content-Encoding {c!r} is not one the enforcer can read (gzip, deflate, br, zstd)")
    stream: Iterator[bytes] = iter([raw[i:i + _CHUNK] for i in range(0, len(raw), _CHUNK)])
    for c in reversed(codings):
        stream = _DECODERS[c](stream)
    head, size, mentioned, tail = bytearray(), 0, False, b""
    try:
        for out in stream:
            size += len(out)
            mentioned = mentioned or METHOD_OVERRIDE.search(tail + out[:64]) is not None \
                or METHOD_OVERRIDE.search(out) is not None
            tail = out[-_OVERLAP:] if len(out) >= _OVERLAP else (tail + out)[-_OVERLAP:]
            if size > limit or (size > ratio_floor and size > ratio * max(len(raw), 1)):
                raise BodyError(413, f"the request body decodes to more than {min(limit, ratio * len(raw))} bytes "
                                     f"({len(raw)} encoded, {content_encoding}): refused as a decompression bomb")
            if len(head) < keep:
                head += out[:keep - len(head)]
    except BodyError:
        raise
    except (zlib.error, brotli.error, zstandard.ZstdError, EOFError) as e:
        raise BodyError(400, f"the request body does not decode as {content_encoding}: {e}") from None
    return Body(bytes(head), size <= keep, mentioned)


class Bodies:
    """Decode each request body once, bounded; refuse what cannot be read (400/413/415, with a row)."""

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        try:
            record_of(flow).body = decode_bounded(req.raw_content or b"", req.headers.get("content-encoding", ""))
        except BodyError as e:
            deny(flow, str(e), status=e.status)
