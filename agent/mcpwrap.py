"""``tf mcp wrap``: an MCP server on stdio, run in a sandbox, with every call its client makes decided first.

The MCP client launches ``tf mcp wrap --name G -- SERVER ...`` instead of the server. The server runs exactly
as under ``tf run`` (``runner.run_agent``: its own HTTP egress goes through the enforcer), with its stdin and
stdout on pipes to this process, which relays newline-delimited JSON-RPC between them:

- client -> server: each ``tools/call``, ``resources/read`` and ``prompts/get`` (request or notification), each
  method MCP does not define, and each message that is not JSON-RPC 2.0, is decided by the daemon
  (``mcp.decide``) and recorded as a traffic row before anything is forwarded. An allowed call is forwarded
  as the client wrote it; a refused one never reaches the server, and the client gets a JSON-RPC error with
  the same id (``REFUSED``, the reason and the decision id in ``data``). A line that is not JSON gets a parse
  error (id null). In a batch each call is decided alone: the rest is forwarded, the refusals answered.
  Everything else (initialize, lists, notifications, responses to the server's own requests) passes unchanged.
  A line with a call to decide that is longer than the connectors' inspection bound is refused unread, as an
  HTTP body beyond it would be (``mcp.invalid``).
- server -> client: passed unchanged, line by line, except an answer to a request the server was never given
  (a refused or held call, one already answered): dropped, so the confined server cannot pass off a refused
  call as one that ran.

A call held for approval holds only itself: it is decided on a thread of its own, and the relay goes on.
The daemon cannot be asked (it stopped, it errs): the call is refused (fail closed).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

from trustfence.connectors.base import INSPECT_BYTES
from trustfence.connectors.mcp import RPC_METHODS

__all__ = ["DECIDED", "INVALID_REQUEST", "PARSE_ERROR", "REFUSED", "Relay", "needs_decision", "refusal"]

log = logging.getLogger("trustfence.mcp")

DECIDED = frozenset({"tools/call", "resources/read", "prompts/get"})
"""The methods whose every use is decided (the rest of MCP is decided only when it is not MCP at all)."""
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
REFUSED = -32001
"""The JSON-RPC error code of a call TrustFence refused (an implementation-defined server error)."""

Verdict = Mapping[str, Any]
Decide = Callable[[object, str, int], Verdict]
"""(message or None, why the frame is not a message or "", its size in bytes) -> the daemon's verdict."""


def needs_decision(message: object) -> bool:
    """Whether the daemon decides this message before it may reach the server."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return True
    method = message.get("method")
    if method is None:
        return "id" not in message or not ("result" in message or "error" in message)
    return not isinstance(method, str) or method in DECIDED or method not in RPC_METHODS


def error_response(rid: object, code: int, message: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data:
        err["data"] = dict(data)
    return {"jsonrpc": "2.0", "id": rid, "error": err}


def refusal(message: object, verdict: Verdict) -> dict[str, Any] | None:
    """The client's answer to a refused message; None for a notification (nothing may answer one)."""
    is_request = isinstance(message, dict) and "id" in message and "method" in message
    if isinstance(message, dict) and "method" in message and not is_request:
        return None
    rid = message.get("id") if is_request and isinstance(message, dict) else None
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        rid = None
    data = {k: verdict[k] for k in ("decision", "reason", "decision_id", "action", "allow_with", "approval",
                                    "retry_after") if verdict.get(k)}
    if verdict.get("action") == "mcp.invalid":
        return error_response(rid, INVALID_REQUEST, f"Invalid Request: {verdict.get('reason', '')}", data)
    return error_response(rid, REFUSED, f"TrustFence {verdict.get('decision', 'denied')} this call: "
                                        f"{verdict.get('reason', '')}", data)


def _key(rid: object) -> str:
    """A request id as compared: ``1`` and ``"1"`` are different ids."""
    return json.dumps(rid, sort_keys=True)


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class Relay:
    """Client lines in, server lines and client answers out. ``spawn`` runs a line's decisions (a thread in
    the wrap; inline in tests); ``to_server``/``to_client`` write one whole line each."""

    def __init__(self, decide: Decide, to_server: Callable[[bytes], None], to_client: Callable[[bytes], None],
                 spawn: Callable[[Callable[[], None]], None] | None = None) -> None:
        self._decide, self._to_server_line, self._to_client = decide, to_server, to_client
        self._spawn = spawn or (lambda work: work())
        self._lock = threading.Lock()
        self._open: set[str] = set()  # ids of the client's requests the server was given and has not answered

    def from_client(self, line: bytes) -> None:
        """One line the client wrote: forwarded, refused, or for a batch each message either way."""
        text = line.strip()
        if not text:
            return
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            self._spawn(lambda: self._unparsable(len(line)))
            return
        messages = data if isinstance(data, list) and data else [data]
        if not any(needs_decision(m) for m in messages):
            self._to_server(line if line.endswith(b"\n") else line + b"\n")
            return
        self._spawn(lambda: self._decide_line(line, data, messages))

    def from_server(self, line: bytes) -> None:
        """One line the server wrote, to the client unchanged; except an answer to a request the server was
        never given (a refused or held call, or one already answered): a confined server cannot make the client
        believe a call ran that TrustFence refused or still holds."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            self._to_client(line)
            return
        messages = data if isinstance(data, list) else [data]
        answers = [m for m in messages if isinstance(m, dict) and "method" not in m and "id" in m]
        with self._lock:
            forged = [m for m in answers if _key(m["id"]) not in self._open]
            self._open.difference_update(_key(m["id"]) for m in answers)
        if not forged:
            self._to_client(line)
            return
        log.warning("dropped %d answer(s) from the server to requests it was never given: %s", len(forged),
                    ", ".join(_key(m["id"]) for m in forged)[:200])
        kept = [m for m in messages if not any(m is f for f in forged)]
        if kept:
            self._to_client(_dump(kept if isinstance(data, list) else kept[0]))

    def _to_server(self, line: bytes) -> None:
        """Forward a line; the requests in it are the ones the server may answer."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            data = None
        with self._lock:
            for m in data if isinstance(data, list) else [data]:
                if isinstance(m, dict) and "method" in m and "id" in m:
                    self._open.add(_key(m["id"]))
        self._to_server_line(line)

    def _unparsable(self, size: int) -> None:
        verdict = self._ask(None, "not JSON", size)
        data = {k: verdict[k] for k in ("decision_id",) if verdict.get(k)}
        self._to_client(_dump(error_response(None, PARSE_ERROR, "Parse error: the line is not JSON", data)))

    def _decide_line(self, line: bytes, data: object, messages: list[object]) -> None:
        kept, answers = [], []
        for m in messages:
            if not needs_decision(m):
                kept.append(m)
                continue
            if len(line) > INSPECT_BYTES:  # as a body beyond the bound over HTTP: not read, refused as invalid
                verdict = self._ask(None, f"a line of {len(line)} bytes is beyond the inspection bound "
                                          f"({INSPECT_BYTES} bytes)", len(line))
            else:
                verdict = self._ask(m, "empty batch" if data == [] else "", 0)
            if verdict.get("forward"):
                kept.append(m)
            elif (answer := refusal(m, verdict)) is not None:
                answers.append(answer)
        batch = isinstance(data, list) and bool(data)
        if len(kept) == len(messages):
            self._to_server(line if line.endswith(b"\n") else line + b"\n")
        elif kept:
            self._to_server(_dump(kept if batch else kept[0]))
        if answers:
            self._to_client(_dump(answers if batch else answers[0]))

    def _ask(self, message: object, error: str, size: int) -> Verdict:
        try:
            return self._decide(message, error, size)
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the call is not forwarded
            log.error("a call could not be decided: %s", e)
            return {"forward": False, "decision": "denied", "reason": f"TrustFence could not decide this call: {e}"}


class Lines:
    """Whole lines to one file descriptor, from any thread; a closed peer ends the writing silently."""

    def __init__(self, fd: int) -> None:
        self.fd, self._lock, self.closed = fd, threading.Lock(), False

    def write(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view and not self.closed:
                try:
                    view = view[os.write(self.fd, view):]
                except OSError:  # the reader is gone (EPIPE): its side ended
                    self.closed = True

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                os.close(self.fd)


def pump(source: IO[bytes], each: Callable[[bytes], None]) -> None:
    """Every line of ``source`` to ``each``, until end of file or a read error."""
    try:
        for line in iter(source.readline, b""):
            each(line)
    except (OSError, ValueError):
        pass
