"""Host-namespace nftables rules for one sandbox: rendered as text by a pure function, applied atomically.

Every TCP connection from the agent's interface lands on the enforcer's transparent listener (the explicit
proxy port is left alone), UDP/TCP 53 lands on the enforcer's DNS, the input chain admits only the enforcer
ports, and nothing is forwarded in either direction. IPv6 from the interface is never redirected and is rejected
(the enforcer listens on IPv4 only; sandboxes have IPv6 off unless configured on, and refused either way).
"""

from __future__ import annotations

import ctypes
import functools
import subprocess
import threading
from collections.abc import Iterable

from trustfence.agent.sandbox.spec import SandboxSpec

__all__ = ["SERVICES_TABLE", "NftError", "apply", "delete", "list_tables", "render", "render_services",
           "replace_here"]


class NftError(RuntimeError):
    pass


def render(spec: SandboxSpec, proxy_port: int, transparent_port: int, dns_port: int) -> str:
    i, h = spec.host_if, spec.host_addr
    return f"""table inet {spec.table} {{
	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		iifname "{i}" ip daddr {h} tcp dport {proxy_port} accept
		iifname "{i}" meta nfproto ipv4 udp dport 53 redirect to :{dns_port}
		iifname "{i}" meta nfproto ipv4 meta l4proto tcp redirect to :{transparent_port}
	}}
	chain input {{
		type filter hook input priority filter; policy accept;
		iifname "{i}" ct state established,related accept
		iifname "{i}" ip daddr {h} tcp dport {{ {proxy_port}, {transparent_port} }} accept
		iifname "{i}" ip daddr {h} udp dport {dns_port} accept
		iifname "{i}" meta nfproto ipv6 reject with icmpx admin-prohibited
		iifname "{i}" drop
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname "{i}" drop
		oifname "{i}" drop
	}}
}}
"""


SERVICES_TABLE = "trustfence_services"
"""The table inside each sandbox's own namespace that sends host services' loopback ports to the enforcer."""


def render_services(spec: SandboxSpec, ports: Iterable[int], via: str) -> str:
    """Inside the sandbox's namespace: TCP to its loopback (127.0.0.0/8) on a host service's port goes to
    ``via`` on the same port (an address no name resolves to), where the host table's redirect hands it to the
    transparent listener (``SO_ORIGINAL_DST`` keeps both, which name the service). Its loopback source becomes the agent's
    address, the only one the enforcer knows; the route there needs ``route_localnet`` on eth0. Every other
    loopback port stays the sandbox's own. The eBPF lock rewrites these connects first when it is attached."""
    listed = ", ".join(str(p) for p in sorted(set(ports)))
    return f"""table ip {SERVICES_TABLE} {{
	chain output {{
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.0/8 tcp dport {{ {listed} }} dnat to {via}
	}}
	chain postrouting {{
		type nat hook postrouting priority 100; policy accept;
		oifname "eth0" ip saddr 127.0.0.0/8 snat to {spec.agent_addr}
	}}
}}
"""


def replace_here(table: str, ruleset: str) -> None:
    """Replace ``table ip NAME`` (``ruleset``, or nothing when empty) in the calling thread's namespace, in one
    transaction. A context of its own: the shared one's socket stays in the daemon's namespace."""
    commands = f"add table ip {table}\ndelete table ip {table}\n{ruleset}"
    lib = _library()
    if lib is None:
        _run_program(commands)  # the child starts in this thread's namespace
    else:
        lib.run_once(commands)


class _Library:
    """libnftables, which ``nft`` itself is built on: the same parser and the same single transaction per
    buffer, without starting a process per call (``nft`` costs 5-25 ms a call).

    One context serves the process, under a lock (a context is not safe to share between threads), and stays
    open: closing its netlink socket waits for the kernel to free the last transaction (an RCU grace period,
    ~10 ms), while the transaction itself is committed when it is sent. The socket is in the namespace of the
    thread that first runs a command: the daemon's own (only ``net`` switches namespaces, on its own thread).
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._lock = threading.Lock()
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise OSError("cannot create an nftables context")
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)

    def run_once(self, commands: str) -> None:
        """Run on a context made and freed here, whose socket is in the calling thread's namespace."""
        lib = self._lib
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise OSError("cannot create an nftables context")
        try:
            lib.nft_ctx_buffer_error(ctx)
            if lib.nft_run_cmd_from_buffer(ctx, commands.encode()) != 0:
                err: bytes = lib.nft_ctx_get_error_buffer(ctx) or b""
                raise NftError(f"nft: {err.decode(errors='replace').strip()}")
        finally:
            lib.nft_ctx_free(ctx)

    def run(self, commands: str) -> str:
        with self._lock:
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
            out: bytes = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""  # reading one also empties it
            err: bytes = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            raise NftError(f"nft: {err.decode(errors='replace').strip()}")
        return out.decode(errors="replace")


@functools.cache
def _library() -> _Library | None:
    """None where libnftables cannot be loaded: the ``nft`` program is used then."""
    try:
        return _Library(ctypes.CDLL("libnftables.so.1"))
    except OSError:
        return None


def _run_program(commands: str) -> str:
    try:
        r = subprocess.run(["nft", "-f", "-"], input=commands, capture_output=True, text=True, timeout=30,
                           check=False)
    except FileNotFoundError:
        raise NftError("nft not found: install nftables") from None
    if r.returncode != 0:
        raise NftError(f"nft: {r.stderr.strip()}")
    return r.stdout


def _nft(commands: str) -> str:
    """Run nft commands (``nft -f -`` input) as one transaction; their output."""
    lib = _library()
    return _run_program(commands) if lib is None else lib.run(commands)


def apply(ruleset: str) -> None:
    """Load a whole table in one transaction: it is in place completely or not at all."""
    _nft(ruleset)


def delete(table: str) -> None:
    """Remove the table if it exists. Adding an existing table is a no-op and deleting a missing one an
    error, so add-then-delete in one transaction removes it either way with a single call."""
    _nft(f"add table inet {table}\ndelete table inet {table}\n")


def list_tables() -> list[str]:
    out = _nft("list tables inet\n")
    return [ln.split()[-1] for ln in out.splitlines() if ln.startswith("table inet ")]
