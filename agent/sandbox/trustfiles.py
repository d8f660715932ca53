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
import hashlib
import struct
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from trustfence.agent.sandbox.catrust import Found

__all__ = ["JAVA_PASSWORD", "covered", "java_overlay", "jks", "pem_overlay", "plan"]

JAVA_PASSWORD = "changeit"  # what every JDK's cacerts is known by

_JKS_MAGIC = b"\xfe\xed\xfe\xed"


def _certs(pem: bytes) -> list[x509.Certificate]:
    try:
        with warnings.catch_warnings():  # a system bundle may hold an old root with a non-positive serial
            warnings.simplefilter("ignore")
            return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def pem_overlay(original: bytes, ca: bytes) -> bytes | None:
    """The certificates of ``original``, then the enforcer CA; None if it holds no PEM certificate. Only the
    certificates are carried over, re-encoded: nothing else a file holds (a private key beside a certificate,
    comments) ever reaches the copy the agent reads."""
    certs = _certs(original) if b"-----BEGIN CERTIFICATE-----" in original else []
    if not certs:
        return None
    body = b"".join(c.public_bytes(Encoding.PEM) for c in certs)
    return body + b"# TrustFence enforcer CA (this sandbox only)\n" + ca.strip() + b"\n"


def _is_keystore(data: bytes) -> bool:
    if data.startswith(_JKS_MAGIC):
        return True
    if not data.startswith(b"\x30"):
        return False
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
    certs = _certs(roots)
    if not certs or not _is_keystore(original):
        return None
    return jks(certs)


def _utf(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def jks(certs: Sequence[x509.Certificate], password: str = JAVA_PASSWORD) -> bytes:
    """A JKS keystore of trusted-certificate entries (version 2: magic, version, count; per entry tag 2, alias,
    creation time in ms, type, DER), sealed by SHA-1 over the password in UTF-16BE, "Mighty Aphrodite" and
    the rest, as ``sun.security.provider.JavaKeyStore`` checks it."""
    out = bytearray(struct.pack(">III", 0xFEEDFEED, 2, len(certs)))
    now = int(time.time() * 1000)
    for c in certs:
        der = c.public_bytes(Encoding.DER)
        alias = f"tf-{c.fingerprint(hashes.SHA256()).hex()[:16]}"
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
