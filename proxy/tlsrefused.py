"""TlsRefused: a row for each TLS handshake an agent's client broke off, with the fix ``tf logs`` prints.

A client that does not trust the enforcer's certificate never sends a request: no flow, no request hook, and
before this addon nothing in the traffic log. mitmproxy calls ``tls_failed_client`` once per failed client
handshake with the connection's error; this addon records it as one row (``decision = error``), with who
opened the connection as the eBPF lock saw it (pid, comm, exe), the name the client asked for (SNI), and in
``params`` what failed and how to fix it for that kind of client (``fix_for``). Nothing was forwarded: there
was no request to forward.
"""

from __future__ import annotations

import json
import logging
import os

from mitmproxy import tls

from trustfence.proxy.record import connection_row
from trustfence.proxy.state import EnforcerState
from trustfence.store import StoreFull

__all__ = ["NOT_TRUSTED", "TlsRefused", "fix_for", "reason_for"]

log = logging.getLogger("trustfence.enforcer")

NOT_TRUSTED = "client does not trust the enforcer's CA"
_BUNDLE = "/run/trustfence/ca-bundle.pem"
# How mitmproxy words a handshake the client refused for the certificate (a TLS alert: unknown ca, bad
# certificate, certificate unknown), as opposed to one that failed otherwise.
_REFUSED = "does not trust the proxy's certificate"
_MAYBE = ("disconnected during the handshake", "may not trust the proxy's certificate")
_NOT_A_HANDSHAKE = "connection closed early"  # closed before a ClientHello: nothing was tried


def reason_for(error: str) -> str | None:
    """The row's reason for mitmproxy's handshake ``error``; None when no handshake was attempted."""
    if error == _NOT_A_HANDSHAKE:
        return None
    if any(m in error for m in _MAYBE):  # checked first: mitmproxy's hint for a hang-up names distrust too
        return f"{NOT_TRUSTED}, or hung up during the TLS handshake"
    if _REFUSED in error:
        return NOT_TRUSTED
    return f"TLS handshake with the client failed: {error}"


def fix_for(comm: str, exe: str) -> str:
    """What makes this kind of client trust the enforcer, from the executable that opened the connection."""
    name = os.path.basename(exe) or comm
    if name.startswith("java"):
        return ("Java reads its JDK's lib/security/cacerts: tf run covers it when the command is that JDK's java "
                "or JAVA_HOME names it; otherwise add that file to [sandbox] ca_overlays, or pass "
                f"-Djavax.net.ssl.trustStore=<a trust store with {_BUNDLE}'s certificates>")
    if name.startswith("python"):
        return ("the client verifies against a bundle of its own that tf run did not find (certifi, stripe, ... "
                "outside the interpreter's prefix, user site or the working directory's .venv): add that file to "
                f"[sandbox] ca_overlays in config.toml, or point the client at SSL_CERT_FILE ({_BUNDLE})")
    if name.startswith("node"):
        return (f"Node trusts NODE_EXTRA_CA_CERTS unless the client passes its own `ca`: let it read {_BUNDLE} "
                "(or add the file it reads to [sandbox] ca_overlays)")
    return ("if the client reads a CA bundle file, add that file to [sandbox] ca_overlays in config.toml; if its "
            f"roots are compiled in, make it read SSL_CERT_FILE ({_BUNDLE}) or its own CA option; a client that "
            "pins another CA cannot be made to work (tf doctor --agent -- CMD checks a command)")


class TlsRefused:
    """Record every failed client handshake from a sandbox as an error row."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    def tls_failed_client(self, data: tls.TlsData) -> None:
        try:
            self._record(data)
        except Exception:  # noqa: BLE001 - a row lost is logged; the connection is closed by mitmproxy anyway
            log.exception("row of a failed TLS handshake could not be recorded")

    def _record(self, data: tls.TlsData) -> None:
        client, error = data.context.client, data.conn.error or ""
        reason = reason_for(error)
        if reason is None or self.state.store is None or not client.peername:
            return
        addr, port = str(client.peername[0]), int(client.peername[1])
        gw = self.state.gateways.get(addr)
        found = self.state.origin_of_conn(client.id, addr, port)
        origin, exe = found if found else (None, "")
        server = data.context.server.address
        host = data.conn.sni or (str(server[0]) if server else "")
        params = {"error": error[:500]}
        if reason.startswith(NOT_TRUSTED):
            params["fix"] = fix_for(origin.comm if origin else "", exe)
        try:
            self.state.store.submit(connection_row(
                self.state, gw, addr, "error", reason, 0, origin=found, ts=client.timestamp_start, scheme="https",
                host=host, port=int(server[1]) if server else 0, params=json.dumps(params)))
        except StoreFull as e:
            log.error("row of a failed TLS handshake lost: %s", e)
