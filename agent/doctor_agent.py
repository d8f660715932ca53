"""``tf doctor --agent -- CMD``: will CMD's TLS client trust the enforcer? Tried once, for real, in a sandbox.

The command is not run. Its program is found as ``tf run`` finds it (through ``env`` and ``#!``), and a small
probe in that program's own language is run instead, in a sandbox of a temporary gateway, with everything
``tf run`` gives an agent (its environment, and the CA bundles it covers for that program): the probe opens one
TLS connection to the enforcer (every TCP connection of a sandbox lands there) for each trust source the client
may use, completes the handshake and hangs up, sending no request. A refused handshake is also a traffic row
with its fix, as for any agent.

Probed: Python (the interpreter the command resolves to: its default context, which honours SSL_CERT_FILE, and
the bundles of certifi, requests, pip and stripe where it can import them), Java (the JDK the command runs, its
default trust store) and Node (its default trust). For any other program nothing is claimed: the answer says
so, and how to find out (run it under ``tf run``; a refused handshake is an error row in ``tf logs``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from trustfence.agent.sandbox.catrust import command_of

__all__ = ["Probe", "Verdict", "probe_for", "verdict"]

SNI = "api.github.com"  # the name the probe asks for: the enforcer makes a certificate for any name

_PYTHON = r'''
import json, os, socket, ssl, sys
from urllib.parse import urlsplit
host = urlsplit(os.environ.get("HTTPS_PROXY", "")).hostname
sources = [("default context (SSL_CERT_FILE)", None)]
for label, module, rel in (("certifi", "certifi", "cacert.pem"), ("pip's certifi", "pip._vendor.certifi", "cacert.pem"),
                           ("stripe", "stripe", "data/ca-certificates.crt"), ("botocore", "botocore", "cacert.pem")):
    try:
        found = os.path.join(os.path.dirname(__import__(module, fromlist=["_"]).__file__), rel)
    except Exception:
        continue
    if os.path.isfile(found):
        sources.append((label, found))
for label, cafile in sources:
    try:
        ctx = ssl.create_default_context(cafile=cafile)
        with socket.create_connection((host, 443), timeout=10) as s, ctx.wrap_socket(s, server_hostname=sys.argv[1]):
            print(json.dumps({"source": label, "file": cafile or "", "ok": True}))
    except Exception as e:
        print(json.dumps({"source": label, "file": cafile or "", "ok": False, "error": f"{type(e).__name__}: {e}"}))
'''

_JAVA = r'''
public class P { public static void main(String[] a) {
  String host = java.net.URI.create(System.getenv("HTTPS_PROXY")).getHost();
  try (javax.net.ssl.SSLSocket s = (javax.net.ssl.SSLSocket) javax.net.ssl.SSLSocketFactory.getDefault()
          .createSocket(host, 443)) {
    javax.net.ssl.SSLParameters p = s.getSSLParameters();
    p.setServerNames(java.util.List.of(new javax.net.ssl.SNIHostName(a[0])));
    p.setEndpointIdentificationAlgorithm("HTTPS");
    s.setSSLParameters(p); s.startHandshake();
    System.out.println("{\"source\": \"the JDK's default trust store\", \"ok\": true}");
  } catch (Exception e) {
    System.out.println("{\"source\": \"the JDK's default trust store\", \"ok\": false, \"error\": \""
        + e.toString().replace("\\", "/").replace("\"", "'") + "\"}");
  } } }
'''

_NODE = r'''
const host = new URL(process.env.HTTPS_PROXY).hostname;
const s = require("tls").connect({host, port: 443, servername: process.argv[1]}, () => {
  console.log(JSON.stringify({source: "Node's trust (NODE_EXTRA_CA_CERTS)", ok: true})); s.end(); });
s.on("error", e => console.log(JSON.stringify({source: "Node's trust (NODE_EXTRA_CA_CERTS)", ok: false,
                                               error: String(e)})));
'''


@dataclass(frozen=True, slots=True)
class Probe:
    """What to run in the sandbox (``argv``), and which kind of client it stands for."""

    kind: str
    program: str
    argv: list[str]


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    lines: list[str]
    fix: str


def probe_for(cmd: Sequence[str], path: str, cwd: str) -> Probe | None:
    """The probe for ``cmd``'s client; None when its program is not one this can probe."""
    program = command_of(cmd, path, cwd)
    if program is None:
        return None
    name = os.path.basename(program)
    if re.match(r"^python(\d+(\.\d+)?)?$", name):
        return Probe("python", program, [program, "-c", _PYTHON, SNI])
    if name == "java":  # Java 11+ runs one source file; the sandbox's own /tmp holds it
        script = f'printf "%s" "$TF_PROBE" > /tmp/P.java && exec "{program}" /tmp/P.java {SNI}'
        return Probe("java", program, ["env", f"TF_PROBE={_JAVA}", "/bin/sh", "-c", script])
    if name in ("node", "nodejs"):
        return Probe("node", program, [program, "-e", _NODE, SNI])
    return None


def verdict(probe: Probe, output: str) -> Verdict:
    """Whether the client will trust the enforcer, from the probe's JSON lines."""
    results = []
    for line in output.splitlines():
        try:
            results.append(json.loads(line))
        except ValueError:
            continue
    if not results:
        return Verdict(False, [f"the {probe.kind} probe of {probe.program} printed no result"],
                       "run the command under tf run and read tf logs --decision error")
    lines = [f"{'ok  ' if r.get('ok') else 'FAIL'} {r.get('source')}" + (f" ({r['file']})" if r.get("file") else "")
             + ("" if r.get("ok") else f": {r.get('error', '')}") for r in results]
    failed = [r for r in results if not r.get("ok")]
    if not failed:
        return Verdict(True, lines, "")
    files = [str(r["file"]) for r in failed if r.get("file")]
    fix = (f"add {', '.join(files)} to [sandbox] ca_overlays in config.toml (or point the client at "
           "SSL_CERT_FILE)" if files else "the client does not read a bundle tf run covers: point it at "
           "SSL_CERT_FILE (/run/trustfence/ca-bundle.pem), or add the file it reads to [sandbox] ca_overlays")
    return Verdict(False, lines, fix)
