"""Agent-side probes for the bypass suite: run inside a sandbox by Debian's /usr/bin/python3 (stdlib only).

``python3 probes.py NAME ARG...`` tries one way out and prints one outcome word (plus detail): ``refused``
(the kernel said no), ``closed`` (connected, then closed without a reply), ``reply <first line>``, ``sent``
(a datagram left the socket call), ``error <reason>``. The suite decides what each outcome must be and checks
its listeners; a probe only reports.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys

TIMEOUT = 3.0


def _first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode("latin-1", "replace")


def _exchange(s: socket.socket, payload: bytes) -> str:
    s.sendall(payload)
    try:
        data = s.recv(4096)
    except (TimeoutError, socket.timeout):
        return "timeout"
    except ConnectionResetError:
        return "closed"
    return f"reply {_first_line(data)}" if data else "closed"


def _unescape(text: str) -> bytes:
    """Shell-friendly payloads: ``\\r\\n`` in an argument stands for CR LF."""
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def tcp(host: str, port: str, payload: str = "leak\\r\\n\\r\\n") -> str:
    return _tcp(host, int(port), _unescape(payload))


def _tcp(host: str, port: int, payload: bytes) -> str:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((host, port))
    except PermissionError:
        return "refused EPERM"
    except OSError as e:
        return f"refused {type(e).__name__}"
    with s:
        try:
            return _exchange(s, payload)
        except OSError as e:
            return f"closed {type(e).__name__}"


def udp(host: str, port: str) -> str:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"leak", (host, int(port)))
        except PermissionError:
            return "refused EPERM"
        except OSError as e:
            return f"refused {type(e).__name__}"
    return "sent"


def raw() -> str:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close()
    except PermissionError:
        return "refused EPERM"
    return "opened"


def icmp(host: str) -> str:
    """An echo request from an unprivileged ICMP socket (what ping uses without capabilities)."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except OSError as e:
        return f"refused {type(e).__name__}"
    with s:
        try:
            s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", (host, 0))
        except OSError as e:
            return f"refused {type(e).__name__}"
    return "sent"


def unix(path: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
        except OSError as e:
            return f"refused {type(e).__name__}"
    return "connected"


def _tls(host: str, port: int, sni: str, sock: socket.socket | None = None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    s = sock or socket.create_connection((host, port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return ctx.wrap_socket(s, server_hostname=sni)


def tls_raw(host: str, sni: str, request: str) -> str:
    """Send a hand-made HTTP/1.1 byte string over TLS (smuggling shapes); report every status line seen."""
    try:
        s = _tls(host, 443, sni)
    except OSError as e:
        return f"refused {type(e).__name__}"
    with s:
        s.sendall(_unescape(request))
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except (TimeoutError, socket.timeout, OSError):
            pass
    statuses = [ln.split(" ")[1] for ln in data.decode("latin-1").split("\r\n") if ln.startswith("HTTP/1.1 ")]
    return "reply " + ",".join(statuses) if statuses else "closed"


def nested_connect(proxy: str, port: str, outer: str, inner: str) -> str:
    """CONNECT ``outer`` through the proxy, then inside that TLS tunnel CONNECT ``inner``."""
    s = socket.create_connection((proxy, int(port)), timeout=TIMEOUT)
    s.sendall(f"CONNECT {outer} HTTP/1.1\r\nHost: {outer}\r\n\r\n".encode())
    head = s.recv(4096)
    if b" 200" not in head.split(b"\r\n", 1)[0]:
        return f"outer {_first_line(head)}"
    t = _tls(proxy, 0, outer.rsplit(":", 1)[0], sock=s)
    with t:
        try:
            return _exchange(t, f"CONNECT {inner} HTTP/1.1\r\nHost: {inner}\r\n\r\n".encode())
        except OSError as e:
            return f"closed {type(e).__name__}"


def dns_tcp(server: str, name: str) -> str:
    """A DNS query over TCP (length-prefixed), as a resolver falling back from UDP would send it."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    msg = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x01\x00\x01"
    return _tcp(server, 53, len(msg).to_bytes(2, "big") + msg)


def mapped(host: str, port: str) -> str:
    return tcp(f"::ffff:{host}", port)


def resolve6(name: str) -> str:
    try:
        found = socket.getaddrinfo(name, 443, socket.AF_INET6, socket.SOCK_STREAM)
    except socket.gaierror as e:
        return f"error {e.strerror}"
    return "resolved " + " ".join(sorted({str(f[4][0]) for f in found}))


if __name__ == "__main__":
    fn = globals()[sys.argv[1]]
    print(fn(*sys.argv[2:]), flush=True)
