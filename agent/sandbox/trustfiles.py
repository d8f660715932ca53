"""The equivalents that cover the agent's CA bundles (found by ``catrust``), and the plan the sandbox's init mounts.

A PEM bundle becomes the same certificates with the enforcer CA appended: a client that trusts only what its
package ships keeps trusting exactly that, plus the enforcer. A Java trust store becomes a trust store holding the
system roots and the enforcer CA. Anything that does not parse as what it claims to be is left as it is.

The trust store is written as JKS, which every JDK reads as ``cacerts`` (Java 9+ detects the format whatever
``keystore.type`` says) with no password (the default trust manager's case) and with ``changeit``, its integrity
checked. A PKCS#12 trust store from ``cryptography`` can satisfy only one of the two: without encryption its MAC
fails the ``changeit`` check, and with it the certificates are invisible without the password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

from trustfence.agent.sandbox.catrust import Found

__all__ = ["JAVA_PASSWORD", "covered", "der_certificates", "java_overlay", "jks", "pem_overlay", "plan"]

JAVA_PASSWORD = "changeit"  # what every JDK's cacerts is known by

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n(.*?)-----END CERTIFICATE-----", re.S)


def _der_length_ok(der: bytes) -> bool:
    """A DER SEQUENCE whose encoded length is exactly the rest (what every X.509 certificate is)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return first + 2 == len(der)
    n = first & 0x7F
    return 0 < n <= 4 and len(der) == 2 + n + int.from_bytes(der[2:2 + n], "big")


def der_certificates(pem: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, as DER; [] when any CERTIFICATE block is not base64 of a DER
    SEQUENCE (a file that only looks like a bundle is left alone). Read without ``cryptography``: ``tf run``
    does this on every start, and importing it costs more than everything else here together."""
    out = []
    for block in _PEM.findall(pem):
        try:
            der = binascii.a2b_base64(b"".join(block.split()), strict_mode=True)
        except binascii.Error:
            return []
        if not _der_length_ok(der):
            return []
        out.append(der)
    return out


def _pem(der: bytes) -> bytes:
    text = base64.b64encode(der)
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + \
        b"\n-----END CERTIFICATE-----\n"


def pem_overlay(original: bytes, ca: bytes) -> bytes | None:
    """The certificates of ``original``, then the enforcer CA; None if it holds no PEM certificate. Only the
    certificates are carried over, re-encoded: nothing else a file holds (a private key beside a certificate,
    comments) ever reaches the copy the agent reads."""
    certs = der_certificates(original)
    if not certs:
        return None
    return b"".join(_pem(c) for c in certs) + b"# TrustFence enforcer CA (this sandbox only)\n" + ca.strip() + b"\n"


def _is_keystore(data: bytes) -> bool:
    if data.startswith(_JKS_MAGIC):
        return True
    if not data.startswith(b"\x30"):
        return False
    from cryptography.hazmat.primitives.serialization import pkcs12  # only for a PKCS#12 store (rare)

    for password in (None, b"changeit"):
        try:
            pkcs12.load_pkcs12(data, password)
            return True
        except (ValueError, TypeError):
            continue
    return False


def java_overlay(original: bytes, roots: bytes) -> bytes | None:
    """A trust store (JKS) of ``roots`` (the agent's bundle: system roots + the enforcer CA); None if
    ``original`` is no Java keystore (JKS or PKCS#12)."""
    certs = der_certificates(roots)
    if not certs or not _is_keystore(original):
        return None
    return jks(certs)


def _utf(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def jks(certs: Sequence[bytes], password: str = JAVA_PASSWORD) -> bytes:
    """A JKS keystore of trusted-certificate entries (version 2: magic, version, count; per entry tag 2, alias,
    creation time in ms, type, DER), sealed by SHA-1 over the password in UTF-16BE, "Mighty Aphrodite" and
    the rest, as ``sun.security.provider.JavaKeyStore`` checks it."""
    out = bytearray(struct.pack(">III", 0xFEEDFEED, 2, len(certs)))
    now = int(time.time() * 1000)
    for der in certs:
        alias = f"tf-{hashlib.sha256(der).hexdigest()[:16]}"
        out += struct.pack(">I", 2) + _utf(alias) + struct.pack(">Q", now) + _utf("X.509")
        out += struct.pack(">I", len(der)) + der
    out += hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + bytes(out)).digest()
    return bytes(out)


def covered(found: Sequence[Found], ca: bytes, roots: bytes, skip: Iterable[str] = ()) -> list[tuple[Found, bytes]]:
    """Each found bundle with what covers it; those in ``skip`` (covered as configured) and those that do not
    parse are left out."""
    skipped = set(skip)
    out: list[tuple[Found, bytes]] = []
    java: bytes | None = None
    for f in found:
        if f.path in skipped:
            continue
        if f.kind == "java":
            if not _is_keystore(f.data):
                continue
            java = java if java is not None else java_overlay(f.data, roots) or b""
            cover: bytes | None = java
        else:
            cover = pem_overlay(f.data, ca)
        if cover:
            out.append((f, cover))
    return out


def plan(pairs: Sequence[tuple[Found, bytes]]) -> dict[str, Any]:
    """What the init mounts (``sandbox.view``): the contents once each, by digest, and each target with the
    file it must still be."""
    files: dict[str, str] = {}
    targets: list[list[Any]] = []
    for f, cover in pairs:
        name = hashlib.sha256(cover).hexdigest()[:24]
        files.setdefault(name, base64.b64encode(cover).decode())
        targets.append([f.path, f.dev, f.ino, name])
    return {"files": files, "targets": targets}
