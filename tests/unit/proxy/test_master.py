"""serve_accepted: a connection accepted by the daemon (served there or handed to a worker) is served and
closed through its transport, whether the server returns or fails."""

from __future__ import annotations

import asyncio
import socket

import pytest

from trustfence.proxy.master import serve_accepted


class _Server:
    """Stands in for mitmproxy's ServerInstance: echoes one line, or fails before answering."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.writers: list[asyncio.StreamWriter] = []  # kept, as mitmproxy's handler keeps its own

    async def handle_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        line = await reader.readline()
        if self.fail:
            raise RuntimeError("the server failed")
        writer.write(line)
        await writer.drain()


@pytest.mark.parametrize("fail", [False, True], ids=["served", "server-failed"])
def test_the_connection_is_served_then_closed_and_nothing_watches_its_descriptor(fail: bool) -> None:
    async def main() -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        conn.setblocking(False)
        fd = conn.fileno()
        try:
            client.sendall(b"ping\n")
            server = _Server(fail)
            if fail:
                with pytest.raises(RuntimeError):
                    await serve_accepted(server, conn)  # type: ignore[arg-type]
            else:
                await serve_accepted(server, conn)  # type: ignore[arg-type]
            await asyncio.sleep(0.05)
            client.settimeout(5)
            assert client.recv(16) == (b"" if fail else b"ping\n")
            assert client.recv(16) == b""  # the agent sees the close
            assert conn.fileno() == -1
            # The loop watches nothing under the old number: a descriptor reused for the next connection (or
            # a listener) must not lose its reader when this connection's transport goes.
            assert fd not in asyncio.get_running_loop()._selector.get_map()  # type: ignore[attr-defined]
        finally:
            client.close()
            listener.close()

    asyncio.run(main())
