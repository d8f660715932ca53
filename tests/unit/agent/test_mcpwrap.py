"""The stdio relay's framing: what is decided, what passes unchanged, what a refused call is answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from trustfence.agent.mcpwrap import INVALID_REQUEST, PARSE_ERROR, REFUSED, Relay, needs_decision, refusal
from trustfence.agent.ops import OpError
from trustfence.agent.ops.mcp import choose_connector


def call(rid: object, tool: str, **args: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": args}}


class Wire:
    """A relay whose daemon allows the tools in ``allowed`` and nothing else, and what each side received."""

    def __init__(self, allowed: tuple[str, ...] = ("search",)) -> None:
        self.asked: list[tuple[object, str, int]] = []
        self.server: list[bytes] = []
        self.client: list[Any] = []
        self.allowed = allowed
        self.relay = Relay(self.decide, self.server.append, lambda b: self.client.append(json.loads(b)))

    def decide(self, message: object, error: str, size: int) -> dict[str, Any]:
        self.asked.append((message, error, size))
        if error or not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return {"forward": False, "decision": "denied", "reason": f"malformed: {error}",
                    "action": "mcp.invalid", "decision_id": "d-bad"}
        name = str(message.get("params", {}).get("name", ""))
        ok = name in self.allowed
        return {"forward": ok, "decision": "allowed" if ok else "denied", "reason": "rule",
                "action": f"mcp.tools.{name}", "decision_id": f"d-{name}", "allow_with": "tf permissions set ..."}


@pytest.mark.parametrize(("message", "decided"), [
    (call(1, "search"), True),
    ({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "file:///x"}}, True),
    ({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "review"}}, True),
    ({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "x"}}, True),  # a notification still runs it
    ({"jsonrpc": "2.0", "id": 4, "method": "vendor/exec"}, True),  # not MCP: decided (mcp.rpc.other)
    ({"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {}}, False),
    ({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, False),
    ({"jsonrpc": "2.0", "method": "notifications/initialized"}, False),
    ({"jsonrpc": "2.0", "id": 7, "result": {}}, False),  # the client's answer to the server's own request
    ({"jsonrpc": "1.0", "id": 8, "method": "tools/list"}, True),  # not JSON-RPC 2.0: refused as invalid
    ({"jsonrpc": "2.0", "id": 9}, True),
    (42, True),
])
def test_what_is_decided(message: object, decided: bool) -> None:
    assert needs_decision(message) is decided


def test_allowed_call_is_forwarded_byte_for_byte_and_a_denied_one_never_is() -> None:
    w = Wire()
    allowed = json.dumps(call(1, "search", q="x")).encode() + b"\n"
    w.relay.from_client(allowed)
    w.relay.from_client(json.dumps(call("two", "delete_file", path="/")).encode() + b"\n")
    assert w.server == [allowed]
    [answer] = w.client
    assert answer["id"] == "two" and answer["error"]["code"] == REFUSED
    assert answer["error"]["data"] == {"decision": "denied", "reason": "rule", "decision_id": "d-delete_file",
                                       "action": "mcp.tools.delete_file", "allow_with": "tf permissions set ..."}


def test_notifications_and_lists_pass_unchanged_without_asking() -> None:
    w = Wire()
    lines = [b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n', b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
             b'{"jsonrpc":"2.0","id":"s1","result":{"roots":[]}}\n', b"\n"]
    for line in lines:
        w.relay.from_client(line)
    assert w.asked == [] and w.client == []
    assert w.server == [lines[0], lines[1] + b"\n", lines[2]]


def test_a_refused_notification_is_dropped_unanswered() -> None:
    w = Wire()
    w.relay.from_client(b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_file"}}\n')
    assert w.server == [] and w.client == [] and len(w.asked) == 1


def test_not_json_gets_a_parse_error_and_is_recorded_never_forwarded() -> None:
    w = Wire()
    line = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call"\n'
    w.relay.from_client(line)
    assert w.server == []
    assert w.asked == [(None, "not JSON", len(line))]
    assert w.client == [{"jsonrpc": "2.0", "id": None, "error": {
        "code": PARSE_ERROR, "message": "Parse error: the line is not JSON", "data": {"decision_id": "d-bad"}}}]


def test_batch_each_call_decided_the_rest_forwarded_refusals_answered_as_a_batch() -> None:
    w = Wire()
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
    w.relay.from_client(json.dumps([call(1, "search"), call(2, "delete_file"), note, 7]).encode())
    assert [json.loads(b) for b in w.server] == [[call(1, "search"), note]]
    assert [(m["id"], m["error"]["code"]) for m in w.client[0]] == [(2, REFUSED), (None, INVALID_REQUEST)]


def test_a_batch_wholly_allowed_goes_as_written() -> None:
    w = Wire()
    line = json.dumps([call(1, "search"), call(2, "search")]).encode() + b"\n"
    w.relay.from_client(line)
    assert w.server == [line] and w.client == []


def test_a_daemon_that_cannot_answer_refuses_the_call() -> None:
    def broken(message: object, error: str, size: int) -> dict[str, Any]:
        raise ConnectionRefusedError("no daemon")

    server: list[bytes] = []
    client: list[bytes] = []
    Relay(broken, server.append, client.append).from_client(json.dumps(call(1, "search")).encode())
    assert server == []
    answer = json.loads(client[0])
    assert answer["error"]["code"] == REFUSED and "could not decide" in answer["error"]["data"]["reason"]


def test_refusal_keeps_only_a_valid_id() -> None:
    verdict = {"decision": "rate_limited", "reason": "rate limit: 5 per minute", "retry_after": 12}
    r = refusal({"jsonrpc": "2.0", "id": True, "method": "tools/call"}, verdict)
    assert r is not None and r["id"] is None
    assert r["error"]["message"] == "TrustFence rate_limited this call: rate limit: 5 per minute"
    assert r["error"]["data"]["retry_after"] == 12


def test_connector_choice() -> None:
    assert choose_connector(["tools"], "", ["/usr/bin/python3", "x.py"]) == "tools"
    assert choose_connector(["a", "files"], "", ["/usr/bin/python3", "/srv/files.py"]) == "files"
    assert choose_connector(["a", "b"], "b", []) == "b"
    with pytest.raises(OpError, match="pass --connector NAME; mcp connectors: a, b"):
        choose_connector(["a", "b"], "", ["server"])
    with pytest.raises(OpError, match="no mcp connector 'c'"):
        choose_connector(["a", "b"], "c", [])
    with pytest.raises(OpError, match="none; add one"):
        choose_connector([], "", ["server"])


def test_the_server_answers_only_what_it_was_given() -> None:
    """A confined server cannot pass off a refused call as one that ran, nor answer one call twice."""
    w = Wire()
    w.relay.from_client(json.dumps(call(1, "search")).encode())
    w.relay.from_client(json.dumps(call(2, "delete_file")).encode())  # refused: the client got an error
    assert [m["id"] for m in w.client] == [2]
    for rid in (2, 1, 1, "1"):
        w.relay.from_server(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"content": []}}).encode() + b"\n")
    assert [m["id"] for m in w.client] == [2, 1]  # the forged answer to 2, the second to 1 and "1": dropped
    w.relay.from_server(b'{"jsonrpc":"2.0","id":"s1","method":"roots/list"}\n')  # the server's own request
    w.relay.from_server(b'{"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n')
    assert [m.get("method") for m in w.client[2:]] == ["roots/list", "notifications/progress"]


def test_a_server_batch_loses_only_its_forged_answers() -> None:
    w = Wire()
    w.relay.from_client(json.dumps(call(1, "search")).encode())
    w.relay.from_server(json.dumps([{"jsonrpc": "2.0", "id": 1, "result": {}},
                                    {"jsonrpc": "2.0", "id": 9, "result": {}}]).encode())
    assert w.client == [[{"jsonrpc": "2.0", "id": 1, "result": {}}]]


def test_a_call_beyond_the_inspection_bound_is_refused_unread() -> None:
    from trustfence.connectors.base import INSPECT_BYTES

    w = Wire(allowed=("write",))
    line = json.dumps(call(1, "write", text="x" * INSPECT_BYTES)).encode()
    w.relay.from_client(line)
    why = f"a line of {len(line)} bytes is beyond the inspection bound ({INSPECT_BYTES} bytes)"
    assert w.server == [] and w.asked == [(None, why, len(line))]
    assert w.client[0]["id"] == 1 and w.client[0]["error"]["code"] == INVALID_REQUEST
