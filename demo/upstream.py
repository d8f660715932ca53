"""A fake upstream API: a real HTTPS server with a throwaway CA, which logs every request it receives.

Used by the demo and the tests in place of api.github.com (there is no internet here). It answers every
request with a JSON echo (method, path, headers, body) and appends the same to a JSONL log, so a test can
prove what did and did not reach the upstream. With ``--static DIR`` a host that has a directory
``DIR/<host>`` is served from it instead (a file, or a directory's ``index.html`` / ``index.json``; 404 for
anything else): a fake package registry built from files a test generates. With ``--git-root DIR`` it also
serves the bare repositories under DIR over git's smart HTTP protocol, through git's own ``git http-backend``
run as a CGI program; with ``--git-token TOKEN`` too, only to a client that sends it as GitHub takes a token
from git (``Authorization: Basic base64("x-access-token:TOKEN")``), and 401 to any other. Run as ``python -m trustfence.demo.upstream`` (``--plain`` for plain HTTP, where a
credential must never arrive).

It is as permissive as a careless server: it honours any ``Upgrade`` (101, then goes on reading requests on the
same connection, as a server speaking the new protocol might), and logs each WebSocket message it receives
(method ``WS``), so a test can prove what got past the enforcer after a 101.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import re
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["git_basic", "make_test_pki", "serve"]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_test_pki(out: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` for ``hosts`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("TrustFence test upstream CA")).issuer_name(
            _name("TrustFence test upstream CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = out / "ca.pem", out / "server.pem", out / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


_BULK = re.compile(r"/bulk/(\d+)$")  # /bulk/<MiB>: a large download (see _Handler._bulk)
_MIB = 1024 * 1024
_SPLIT = 16 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY the second waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    log_path: Path
    static: Path | None = None
    git_root: Path | None = None
    git_token: str = ""
    lock = threading.Lock()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return out
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        entry = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        self._log(entry)
        if self.git_root is not None and _GIT_PATH.search(self.path.split("?", 1)[0]):
            if self.git_token and self.headers.get("Authorization") != git_basic(self.git_token):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._git(body)
            return
        if self._static():
            return
        if self.path.endswith("/events"):
            self._events()
            return
        if self.path.endswith("/endless-events"):
            self._endless_events()
            return
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        if self.headers.get("Upgrade"):  # anything else: switch, then keep reading whatever comes
            self.send_response(101)
            self.send_header("Upgrade", self.headers["Upgrade"])
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            return
        if (bulk := _BULK.search(self.path.split("?", 1)[0])) is not None:
            self._bulk(int(bulk.group(1)), chunked="chunked" in self.path, pause="pause" in self.path)
            return
        if self.path.startswith("/redirect/"):  # /redirect/<host>: send the client on to another host
            self.send_response(302)
            self.send_header("Location", f"https://{self.path.split('/')[2]}/landing")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # Slack's Web API answers 200 to every call, writes included (its clients insist on it)
        status = 201 if self.command == "POST" and not self.path.startswith("/api/") else 200
        # Enough of a shape for real SDKs to accept: Slack's clients check "ok", Stripe's and others read "id".
        reply = {"fake": "upstream", "ok": True, "id": "fake_1", "deleted": self.command == "DELETE", **entry}
        payload = b"" if self.command == "HEAD" else (json.dumps(reply) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _log(self, entry: Mapping[str, object]) -> None:
        with self.lock, self.log_path.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def _git(self, body: bytes) -> None:
        """git's smart HTTP protocol, answered by ``git http-backend`` (CGI) over the repositories in git_root."""
        path, _, query = self.path.partition("?")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(self.git_root),
               "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": path,
               "QUERY_STRING": query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": self.client_address[0], "REMOTE_USER": "agent"}
        for header, name in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[name] = self.headers[header]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        fields = [line.split(":", 1) for line in head.decode("latin-1").split("\r\n") if ":" in line]
        status = next((v.strip() for k, v in fields if k.lower() == "status"), "200 OK")
        self.send_response(int(status.split()[0]))
        for k, v in fields:
            if k.lower() != "status":
                self.send_header(k, v.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _static(self) -> bool:
        """Answer from ``static/<host>/<path>`` when the host has a directory there; False otherwise."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        if self.static is None or not host or not (self.static / host).is_dir():
            return False
        base = (self.static / host).resolve()
        target = (base / unquote(self.path.split("?", 1)[0]).lstrip("/")).resolve()
        if target.is_dir():
            target = next((target / n for n in ("index.html", "index.json") if (target / n).is_file()), target)
        found = target.is_relative_to(base) and target.is_file() and self.command in ("GET", "HEAD")
        payload = target.read_bytes() if found else b"not found\n"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", {".html": "text/html", ".json": "application/json"}.get(
            target.suffix if found else "", "application/octet-stream" if found else "text/plain"))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        return True

    def _bulk(self, mib: int, chunked: bool, pause: bool) -> None:
        """``mib`` MiB (at most 1024) of filler, with the credential the request carried (the last word of its
        ``Authorization``) written across every 16 KiB boundary, where TLS records and a proxy's reads split a
        body: a proxy that scrubs chunk by chunk must catch each copy. ``?chunked``: without a length; ``?pause``:
        2 s of silence after the first MiB (a proxy that streams passes that MiB on before the rest comes)."""
        words = self.headers.get("Authorization", "").split()
        secret = words[-1].encode() if words else b""
        block = bytearray(b"." * _MIB)
        if secret:
            for end in range(_SPLIT, _MIB, _SPLIT):
                start = end - len(secret) // 2
                block[start:start + len(secret)] = secret
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(min(mib, 1024) * _MIB))
        self.end_headers()
        for i in range(min(mib, 1024)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            if pause and i == 0:
                self.wfile.flush()
                time.sleep(2.0)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _events(self) -> None:
        """Server-sent events: one now, one a second later (a proxy that buffers delays the first)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i in range(2):
            self.wfile.write(f"data: event {i}\n\n".encode())
            self.wfile.flush()
            if i == 0:
                time.sleep(1.0)
        self.close_connection = True

    def _endless_events(self) -> None:
        """Server-sent events every 0.2 s until the client goes away (at most a minute): a long download."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for i in range(300):
            try:
                self.wfile.write(f"data: tick {i}\n\n".encode())
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    def _websocket(self) -> None:
        """A WebSocket echo (RFC 6455, no extensions): each text or binary message comes back as it was sent."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            while len(head := self.rfile.read(2)) == 2:
                opcode, size = head[0] & 0x0F, head[1] & 0x7F
                if size >= 126:
                    size = int.from_bytes(self.rfile.read(2 if size == 126 else 8))
                mask = self.rfile.read(4) if head[1] & 0x80 else bytes(4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(size)))
                if opcode in (1, 2):
                    self._log({"method": "WS", "path": self.path, "host": self.headers.get("Host"), "headers": {},
                               "body": data.decode("utf-8", "replace")})
                reply = {1: 1, 2: 2, 8: 8, 9: 10}.get(opcode)  # text, binary and close echo; ping -> pong
                if reply is not None:
                    self.wfile.write(_ws_frame(reply, data))
                    self.wfile.flush()
                if opcode == 8:
                    return
        except OSError:
            return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:
        return


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_GIT_PATH = re.compile(r"/(info/refs|git-upload-pack|git-receive-pack)$")


def _ws_frame(opcode: int, data: bytes) -> bytes:
    """One final, unmasked frame (a server's)."""
    n = len(data)
    size = bytes([n]) if n < 126 else (bytes([126]) + struct.pack("!H", n) if n < 65536
                                         else bytes([127]) + struct.pack("!Q", n))
    return bytes([0x80 | opcode]) + size + data


def git_basic(token: str) -> str:
    """The Authorization header git sends GitHub for ``token``."""
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def serve(host: str, port: int, cert: Path | None, key: Path | None, log_path: Path,
          static: Path | None = None, git_root: Path | None = None, git_token: str = "") -> None:
    """Serve until killed; TLS with ``cert`` and ``key``, plain HTTP when they are None."""
    handler = type("Handler", (_Handler,), {"log_path": log_path, "static": static, "git_root": git_root,
                                            "git_token": git_token})
    # Room for many clients connecting at once (100 sandboxes): a listen backlog beyond socketserver's 5, and
    # each TLS handshake in its connection's thread (on its first read), not one after another in accept().
    server = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 256})((host, port), handler)
    if cert is not None and key is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", required=True, help="ADDR:PORT")
    ap.add_argument("--cert", type=Path)
    ap.add_argument("--key", type=Path)
    ap.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS (no --cert/--key)")
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--static", type=Path, help="serve DIR/<host>/<path> for hosts with a directory there")
    ap.add_argument("--git-root", type=Path, help="serve the bare repositories in this directory over git's smart HTTP")
    ap.add_argument("--git-token", default=os.environ.get("TF_UPSTREAM_GIT_TOKEN", ""),
                    help="serve git only to a client sending this token as GitHub takes it (Basic, x-access-token)")
    a = ap.parse_args()
    if not a.plain and (a.cert is None or a.key is None):
        ap.error("--cert and --key are required unless --plain")
    host, _, port = a.listen.rpartition(":")
    serve(host, int(port), None if a.plain else a.cert, None if a.plain else a.key, a.log, a.static, a.git_root,
          a.git_token)


if __name__ == "__main__":
    main()
