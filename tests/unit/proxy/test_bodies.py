"""The bounded decoder: every encoding and chain decodes as mitmproxy's would, bombs stop early, memory stays
small, and a mention of ``_method`` is found wherever it is."""

from __future__ import annotations

import gzip
import resource
import zlib

import brotli
import pytest
import zstandard
from trustfence.proxy.bodies import DECODED_MAX, BodyError, decode_bounded

DATA = b'{"title": "x", "_method": "DELETE"}' + b" " * 1000

ENCODED = {
    "gzip": gzip.compress(DATA),
    "x-gzip": gzip.compress(DATA),
    "deflate": zlib.compress(DATA),
    "br": brotli.compress(DATA),
    "zstd": zstandard.ZstdCompressor().compress(DATA),
    "gzip, br": brotli.compress(gzip.compress(DATA)),
    "identity": DATA,
    "": DATA,
}


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_every_encoding_and_chain_decodes(encoding: str) -> None:
    got = decode_bounded(ENCODED[encoding], encoding)
    assert (got.head, got.complete, got.mentions_method_field) == (DATA, True, True)


def test_raw_deflate_and_several_gzip_members() -> None:
    raw = zlib.compressobj(wbits=-15)
    assert decode_bounded(raw.compress(DATA) + raw.flush(), "deflate").head == DATA
    assert decode_bounded(gzip.compress(DATA) + gzip.compress(DATA), "gzip").head == DATA * 2


@pytest.mark.parametrize("mention", [b"_method", b"%5Fmethod", b"X-HTTP-Method-Override", b"x-method-override"])
@pytest.mark.parametrize("shape", [b"a=1&{}=DELETE", b"{}=DELETE&a=1", b'{{"a": 1, "{}" : "DELETE"}}',
                                   b'--B\r\nContent-Disposition: form-data; name="{}"\r\n\r\nDELETE'])
def test_every_spelling_of_a_method_override_is_noticed(mention: bytes, shape: bytes) -> None:
    body = shape.replace(b"{}", mention).replace(b"{{", b"{").replace(b"}}", b"}")
    assert decode_bounded(body, "").mentions_method_field
    assert decode_bounded(gzip.compress(body), "gzip").mentions_method_field


@pytest.mark.parametrize("body", [b"payment_method=pm_1", b'{"payment_method": "pm_1"}', b"x_methods=1",
                                  b"text=see _method in the docs", b'{"note": "_method"}',
                                  b"PK\x03\x04 pkg/_method.py \x00\x01"])
def test_a_longer_name_is_not_a_mention(body: bytes) -> None:
    assert not decode_bounded(body, "").mentions_method_field


def test_only_the_head_is_kept() -> None:
    got = decode_bounded(gzip.compress(b"a" * 5000 + b"&%5Fmethod=PUT"), "gzip", keep=100)
    assert (len(got.head), got.complete, got.mentions_method_field) == (100, False, True)


@pytest.mark.parametrize("split", [1, 5, 8, 20, 23])
@pytest.mark.parametrize("name", [b"_method", b"X-HTTP-Method-Override"])
def test_a_mention_across_decoder_steps_is_found(split: int, name: bytes) -> None:
    body = b"x" * (64 * 1024 - split) + b"&" + name + b"=DELETE"
    assert decode_bounded(gzip.compress(body), "gzip").mentions_method_field
    assert not decode_bounded(gzip.compress(b"x" * 70000), "gzip").mentions_method_field


def _bomb(encoding: str, size: int) -> bytes:
    """``size`` zero bytes, compressed a MiB at a time (never held whole)."""
    chunk = b"\0" * (1024 * 1024)
    if encoding == "gzip":
        z = zlib.compressobj(9, wbits=31)
        return b"".join(z.compress(chunk) for _ in range(size // len(chunk))) + z.flush()
    if encoding == "br":
        c = brotli.Compressor()
        return b"".join(c.process(chunk) for _ in range(size // len(chunk))) + c.finish()
    zc = zstandard.ZstdCompressor().compressobj()
    return b"".join(zc.compress(chunk) for _ in range(size // len(chunk))) + zc.flush()


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_bomb_is_413_without_inflating_it(encoding: str) -> None:
    bomb = _bomb(encoding, 4 * DECODED_MAX)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BodyError) as e:
        decode_bounded(bomb, encoding)
    assert e.value.status == 413
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 1024  # KiB: far below the bomb


def test_the_ratio_bound() -> None:
    body = b"\0" * (2 * 1024 * 1024)  # within DECODED_MAX, but ~1000 times its gzip size
    assert (DECODED_MAX, decode_bounded(gzip.compress(body), "gzip", ratio=10_000).complete) == (DECODED_MAX, False)
    with pytest.raises(BodyError) as e:
        decode_bounded(gzip.compress(body), "gzip")
    assert e.value.status == 413


@pytest.mark.parametrize(("raw", "encoding", "status"), [
    (b"not gzip", "gzip", 400), (gzip.compress(DATA)[:-10], "gzip", 400), (b"\xff\xff", "br", 400),
    (b"x", "xz", 415), (b"x", "gzip, compress", 415), (zlib.compress(DATA) + b"junk", "deflate", 400),
])
def test_what_cannot_be_read_is_refused(raw: bytes, encoding: str, status: int) -> None:
    with pytest.raises(BodyError) as e:
        decode_bounded(raw, encoding)
    assert e.value.status == status
