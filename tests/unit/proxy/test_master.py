"""Worker processes' listening sockets share the daemon listener's port in one SO_REUSEPORT group."""

from __future__ import annotations

import socket
import time

from trustfence.proxy.master import reuseport_peer


def _accepted(sock: socket.socket) -> int:
    sock.setblocking(False)
    n = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


def test_connections_are_spread_over_the_listener_and_its_peer() -> None:
    # The daemon's listener, bound and listening without SO_REUSEPORT as asyncio's server (mitmproxy's) is.
    own = socket.create_server(("127.0.0.1", 0))
    assert not own.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    peer = reuseport_peer(own)
    try:
        assert peer.getsockname() == own.getsockname()
        clients = [socket.create_connection(peer.getsockname()) for _ in range(64)]
        time.sleep(0.1)
        here, there = _accepted(own), _accepted(peer)
        assert here + there == 64 and here > 0 and there > 0  # both served (all on one: p = 2**-63)
        peer.close()  # a worker that dies: its socket leaves the group, new connections go to the rest
        later = [socket.create_connection(own.getsockname()) for _ in range(16)]
        time.sleep(0.1)
        assert _accepted(own) == 16
        for c in clients + later:
            c.close()
    finally:
        own.close()
        peer.close()
