"""Agent-side tools for the HTTP semantics tests: run inside a sandbox by Debian's /usr/bin/python3 (stdlib only).

``raw HOST PORT TLS REQUEST``: send hand-made HTTP bytes (``\\r\\n`` escapes), read until the connection closes,
print every status code seen. ``ws HOST PATH SECONDS [VERSION]``: open a WebSocket over TLS, send a text message every
0.1 s, print how many were sent before the connection broke (VERSION: the Sec-WebSocket-Version sent, ``-``
for none). ``h2connect HOST PATH``: an HTTP/2 extended CONNECT (``:protocol``), printing the frames that came back.
``bomb MIB``: write a gzip body of MIB MiB of
zeros to stdout, compressed a MiB at a time. The tests decide on what the upstream and the daemon saw; what
these print is only a diagnostic.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import sys
import time
import zlib


def _connect(host: str, port: int, tls: bool) -> socket.socket:
    s = socket.create_connection((host, port), timeout=3)
    if tls:
        ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        s = ctx.wrap_socket(s, server_hostname=host)
    return s


def raw(host: str, port: str, tls: str, request: str) -> str:
    payload = request.encode("latin-1").decode("unicode_escape").encode("latin-1")
    with _connect(host, int(port), tls == "tls") as s:
        s.sendall(payload)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except OSError:
            pass
    codes = [ln.split(" ")[1] for ln in data.decode("latin-1").split("\r\n") if ln.startswith("HTTP/1.1 ")]
    return "statuses " + ",".join(codes)


def _frame(text: str) -> bytes:
    data, mask = text.encode(), os.urandom(4)
    assert len(data) < 126
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def ws(host: str, path: str, seconds: str, version: str = "13") -> str:
    s = _connect(host, 443, True)
    key = base64.b64encode(os.urandom(16)).decode()
    v = f"Sec-WebSocket-Version: {version}\r\n" if version != "-" else ""
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"{v}Sec-WebSocket-Key: {key}\r\n\r\n").encode())
    head = s.recv(4096).split(b"\r\n", 1)[0].decode()
    print(head, flush=True)
    if " 101 " not in head + " ":
        return "no upgrade"
    sent, deadline = 0, time.monotonic() + float(seconds)
    try:
        while time.monotonic() < deadline:
            s.sendall(_frame(f"message {sent}"))
            sent += 1
            time.sleep(0.1)
    except OSError as e:
        return f"sent {sent} then {type(e).__name__}"
    return f"sent {sent}"


def _literal(name: str, value: str) -> bytes:
    """One HPACK "literal header field without indexing, new name" (no Huffman): short strings only."""
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2connect(host: str, path: str) -> str:
    """An HTTP/2 extended CONNECT (RFC 8441, ``:protocol websocket``); print the frame types that came back."""
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection((host, 443), timeout=3), server_hostname=host)
    if s.selected_alpn_protocol() != "h2":
        return f"alpn {s.selected_alpn_protocol()}"
    block = b"".join(_literal(k, v) for k, v in [(":method", "CONNECT"), (":protocol", "websocket"),
                                                 (":scheme", "https"), (":path", path), (":authority", host),
                                                 ("sec-websocket-version", "13")])
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0, b"") + _h2_frame(1, 0x4, 1, block))
    names = {0: "data", 1: "headers", 3: "rst_stream", 4: "settings", 6: "ping", 7: "goaway", 8: "window_update"}
    seen, data = [], b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError:
        pass
    while len(data) >= 9:
        size = int.from_bytes(data[:3], "big")
        seen.append(names.get(data[3], str(data[3])))
        data = data[9 + size:]
    return "frames " + ",".join(seen)


def bomb(mib: str) -> str:
    z = zlib.compressobj(9, wbits=31)
    zeros = b"\0" * (1024 * 1024)
    out = sys.stdout.buffer
    for _ in range(int(mib)):
        out.write(z.compress(zeros))
    out.write(z.flush())
    out.flush()
    return ""


if __name__ == "__main__":
    result = {"raw": raw, "ws": ws, "h2connect": h2connect, "bomb": bomb}[sys.argv[1]](*sys.argv[2:])
    if result:
        print(result, flush=True)
