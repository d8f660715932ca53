"""The channel between the daemon and one enforcer worker process: framed messages and calls over a socketpair.

Both ends are root processes of one installation (the daemon spawned the worker and handed it its end), so a
message is a pickled tuple behind a 4-byte length. A call carries an id and is answered once, in any order;
everything else is one-way and kept in order. Accepted agent connections travel on a second socketpair
(SEQPACKET, ``socket.send_fds``), one per packet with the mode spec of the listener that accepted it
(``hand_conn``, ``take_conns``); the worker's ``("closed",)`` tells the daemon one of them ended.

Message shapes (``kind`` first)::

    ("call", id, name, args)      worker -> daemon: origin, take_conn, admit_gateway, admit_action, begin, hold
    ("reply", id, ok, value)      daemon -> worker: the answer (ok False: value is the error text)
    ("submit", row)               worker -> daemon: a final traffic row (fire and forget, in order)
    ("give_conn", sandbox)        worker -> daemon: a connection counted by take_conn closed
    ("state", fields)             daemon -> worker: EnforcerState fields that changed, whole values
    ("closed",)                   worker -> daemon: a connection handed to it ended
    ("refused", n)                worker -> daemon: n more requests refused as unrecordable (tf status)
    ("call", id, "cut", (switch,)) daemon -> worker: close the live connections a kill switch covers; how many
    ("call", id, "ping", ())      daemon -> worker: answered at once; unanswered for long, the worker is killed
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Channel", "LinkError", "hand_conn", "take_conns"]

_HEADER = struct.Struct("!I")
_MAX = 256 << 20  # a state message with the whole compiled policy stays far below this
_SPEC_MAX = 512  # bytes of a mode spec ("transparent@ADDR:PORT")
_READ = 1 << 16  # bytes read at a time: every whole message in them is handled before the next read


class LinkError(RuntimeError):
    """The other end is gone, or refused a call (the message says why)."""


class Channel:
    """One end of the link on the running loop: ``send`` one-way messages, ``call`` and await the reply;
    everything else received goes to ``on_message``."""

    def __init__(self, sock: socket.socket, on_message: Callable[[tuple[Any, ...]], Awaitable[None] | None]) -> None:
        self.sock = sock
        self.on_message = on_message
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []  # framed messages queued in this turn of the loop, written by flush
        self.closed = asyncio.Event()

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(sock=self.sock, limit=1 << 20)

    def send(self, *msg: Any) -> None:
        """Queue one message (never blocks); raises LinkError once the link is closed.

        Messages queued in one turn of the event loop leave together, in order, in one write at its end: under
        load a worker's calls and rows for many requests cost one system call and one wake-up on each side."""
        if self._writer is None or self.closed.is_set() or self._writer.is_closing():
            raise LinkError("the link to the other process is closed")
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        self._out.append(_HEADER.pack(len(data)))
        self._out.append(data)
        if len(self._out) == 2:  # the first of this turn: write them all once the turn's callbacks have run
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued (at the end of each turn; at once for a final traffic row, which must not wait
        behind the response the agent is about to get: a worker killed in between would leave it unrecorded)."""
        out, self._out = self._out, []
        if out and self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(out))

    async def call(self, name: str, *args: Any) -> Any:
        """Ask the other end; its answer, or LinkError (refused, or the link closed before the answer)."""
        n = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[n] = fut
        try:
            self.send("call", n, name, args)
            return await fut
        finally:
            self._waiting.pop(n, None)

    def reply(self, n: int, ok: bool, value: Any) -> None:
        try:
            self.send("reply", n, ok, value)
        except LinkError:
            pass  # the caller is gone: nothing waits for this answer

    async def run(self) -> None:
        """Read until the other end closes; then every waiting call fails with LinkError."""
        assert self._reader is not None
        buf = bytearray()  # what arrived: whole messages are taken from its front, as many as there are
        try:
            while chunk := await self._reader.read(_READ):
                buf += chunk
                while len(buf) >= _HEADER.size:
                    (size,) = _HEADER.unpack_from(buf)
                    if size > _MAX:
                        raise LinkError(f"message of {size} bytes")
                    end = _HEADER.size + size
                    if len(buf) < end:
                        break
                    msg = pickle.loads(buf[_HEADER.size:end])
                    del buf[:end]
                    await self._handle(msg)
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()

    async def _handle(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "reply":
            fut = self._waiting.get(msg[1])
            if fut is not None and not fut.done():
                if msg[2]:
                    fut.set_result(msg[3])
                else:
                    fut.set_exception(LinkError(str(msg[3])))
            return
        result = self.on_message(msg)
        if result is not None:
            await result

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(LinkError("the link to the other process closed"))
        if self._writer is not None:
            self.flush()  # what was queued before the close still goes, as a write would have
            self._writer.close()


def hand_conn(sock: socket.socket, spec: str, conn: socket.socket) -> None:
    """Hand the accepted connection ``conn`` to the worker at the other end of ``sock`` (non-blocking): it
    stays open here too, the caller closes its own. Raises OSError (BlockingIOError when the worker is
    behind)."""
    socket.send_fds(sock, [spec.encode()], [conn.fileno()])


def take_conns(sock: socket.socket) -> list[tuple[str, socket.socket]]:
    """The connections handed so far (non-blocking ``sock``), each with its listener's mode spec; raises
    LinkError once the daemon's end is closed."""
    out: list[tuple[str, socket.socket]] = []
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, _SPEC_MAX, 1)
        except (BlockingIOError, InterruptedError):
            return out
        except OSError as e:
            if out:
                return out  # the next call raises
            raise LinkError(f"the daemon's connection channel failed: {e}") from None
        if not data and not fds:
            if out:
                return out
            raise LinkError("the daemon closed its connection channel")
        for fd in fds:
            conn = socket.socket(fileno=fd)
            conn.setblocking(False)
            out.append((data.decode(), conn))
