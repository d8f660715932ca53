"""The reason and the fix a failed client handshake is recorded with, from mitmproxy's words and the process."""

from __future__ import annotations

from trustfence.proxy.tlsrefused import NOT_TRUSTED, fix_for, reason_for


def test_reasons_from_mitmproxys_handshake_errors() -> None:
    refused = "The client does not trust the proxy's certificate for api.github.com (tlsv1 alert unknown ca)"
    assert reason_for(refused) == NOT_TRUSTED
    hung_up = ("The client disconnected during the handshake. If this happens consistently for x, this may "
               "indicate that the client does not trust the proxy's certificate.")
    assert reason_for(hung_up) == f"{NOT_TRUSTED}, or hung up during the TLS handshake"
    assert reason_for("Cannot parse ClientHello: b'GET /'") == \
        "TLS handshake with the client failed: Cannot parse ClientHello: b'GET /'"
    assert reason_for("connection closed early") is None  # no handshake was tried


def test_fixes_by_kind_of_client() -> None:
    assert "lib/security/cacerts" in fix_for("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    assert "ca_overlays" in fix_for("python3", "/opt/v/bin/python3.11")
    assert "NODE_EXTRA_CA_CERTS" in fix_for("node", "")
    generic = fix_for("curl", "/usr/bin/curl")
    assert "SSL_CERT_FILE" in generic and "ca_overlays" in generic
