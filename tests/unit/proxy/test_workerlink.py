"""The daemon-worker link on a real socketpair: calls answered out of order, one-way messages in order, a
closed link failing what waits, listening sockets handed over."""

from __future__ import annotations

import asyncio
import select
import socket
from typing import Any

import pytest
from trustfence.proxy.workerlink import Channel, LinkError, hand_conn, take_conns


async def _pair(on_b: Any) -> tuple[Channel, Channel, list[tuple[Any, ...]]]:
    a_sock, b_sock = socket.socketpair()
    got: list[tuple[Any, ...]] = []
    a = Channel(a_sock, got.append)
    b = Channel(b_sock, lambda msg: on_b(b, msg))
    await a.open()
    await b.open()
    asyncio.create_task(a.run())
    asyncio.create_task(b.run())
    return a, b, got


def test_calls_are_answered_by_id_and_messages_keep_their_order() -> None:
    async def main() -> None:
        seen: list[Any] = []

        async def on_b(b: Channel, msg: tuple[Any, ...]) -> None:
            if msg[0] == "call":
                n, name, args = msg[1], msg[2], msg[3]
                if name == "slow":  # answered after the fast one that came later
                    asyncio.get_running_loop().call_later(0.05, b.reply, n, True, args[0] * 2)
                elif name == "refuse":
                    b.reply(n, False, "no room")
                else:
                    b.reply(n, True, args[0] + 1)
            else:
                seen.append(msg[1])

        a, b, _ = await _pair(on_b)
        slow = asyncio.create_task(a.call("slow", 21))
        assert await a.call("fast", 1) == 2
        assert await slow == 42
        with pytest.raises(LinkError, match="no room"):
            await a.call("refuse")
        for i in range(100):
            a.send("submit", i)
        await a.call("fast", 0)  # after every message sent before it
        assert seen == list(range(100))
        a.close()
        b.close()

    asyncio.run(main())


def test_a_closed_link_fails_what_waits_and_refuses_what_is_sent() -> None:
    async def main() -> None:
        a, b, _ = await _pair(lambda b, msg: None)  # never answers
        waiting = asyncio.create_task(a.call("hold", {}))
        await asyncio.sleep(0.05)
        b.close()
        with pytest.raises(LinkError):
            await asyncio.wait_for(waiting, 5)
        await asyncio.wait_for(a.closed.wait(), 5)
        with pytest.raises(LinkError):
            a.send("submit", 1)

    asyncio.run(main())


def test_an_accepted_connection_is_handed_over_with_its_listeners_mode() -> None:
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    there.setblocking(False)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    try:
        assert take_conns(there) == []  # nothing handed yet: no wait
        hand_conn(here, "transparent@10.9.0.1:8081", conn)
        conn.close()  # the other end holds its own descriptor: the connection stays open
        ((spec, got),) = take_conns(there)
        assert spec == "transparent@10.9.0.1:8081" and got.getpeername() == client.getsockname()
        client.sendall(b"ping")
        select.select([got], [], [], 5)
        assert got.recv(4) == b"ping"
        got.close()
        here.close()  # the daemon gone
        with pytest.raises(LinkError):
            take_conns(there)
    finally:
        client.close()
        listener.close()
        here.close()
        there.close()
