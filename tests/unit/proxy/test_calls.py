"""Calls decided without HTTP (stdio MCP): the enforcer's checks, in its order, on the same state."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from trustfence.connectors import Action
from trustfence.policy import Permission, compile_policy
from trustfence.proxy.calls import Call, Outcome, decide_call
from trustfence.proxy.holds import ApprovalQueue
from trustfence.proxy.remote import RemoteStore
from trustfence.proxy.state import EnforcerState, Gateway
from trustfence.proxy.switches import Scope, Switch, Switches
from trustfence.proxy.workerlink import Channel

GW = Gateway("Desk", "tf-1", "10.0.0.2", "10.0.0.1", uid=1234)


def state(*perms: tuple[str, str]) -> EnforcerState:
    s = EnforcerState(store=None)
    s.policy = compile_policy(Permission("Desk", "tools", a, d) for a, d in perms)  # type: ignore[arg-type]
    return s


def tool(name: str, **args: object) -> Call:
    return Call(Action(f"mcp.tools.{name}", "tools", "high", args), "tools/call", "stdio://tf-1/tools",
                f'{{"name":"{name}"}}'.encode())


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run(loop: asyncio.AbstractEventLoop, s: EnforcerState, call: Call) -> Outcome:
    return loop.run_until_complete(decide_call(s, GW, call))


def test_permissions_decide_and_a_deny_names_the_line_that_would_allow(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("mcp.tools.search", "allow"))
    allowed = run(loop, s, tool("search"))
    assert allowed.outcome == "allowed" and allowed.forward and allowed.decision is not None
    denied = run(loop, s, tool("delete_file"))
    assert denied.outcome == "denied" and not denied.forward
    assert denied.allow_with == ("tf permissions set --gateway Desk --connector tools "
                                 "--action 'mcp.tools.delete_file' --decision allow")


def test_rate_limit_comes_first_then_the_kill_switch(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("*", "allow"))
    s.limiter.configure(1, {}, ())
    s.switches = Switches((Switch(Scope("gateway", "Desk"), "incident", "2026-01-01T00:00:00Z"),))
    first = run(loop, s, tool("search"))
    assert first.outcome == "denied" and first.reason == "kill switch (gateway:Desk): incident"
    second = run(loop, s, tool("search"))
    assert second.outcome == "rate_limited" and second.retry_after > 0


def test_a_connector_kill_switch_stops_its_calls(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("*", "allow"))
    s.switches = Switches((Switch(Scope("connector", "tools"), "bad server", "2026-01-01T00:00:00Z"),))
    assert run(loop, s, tool("search")).reason == "kill switch (connector:tools): bad server"


def test_levels_soften_permission_decisions(loop: asyncio.AbstractEventLoop) -> None:
    s = state()
    s.levels = {"Desk": "soft_enforce"}
    o = run(loop, s, tool("delete_file"))
    assert o.outcome == "would_deny" and o.forward


def test_rejected_policy_files_deny_everything(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("*", "allow"))
    s.policy_error = "permissions.toml:3: bad"
    o = run(loop, s, tool("search"))
    assert o.outcome == "denied" and "permissions.toml:3: bad" in o.reason


def test_held_until_a_human_answers(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("mcp.tools.transfer", "require_approval"))

    async def go(approve: bool) -> Outcome:
        task = asyncio.ensure_future(decide_call(s, GW, tool("transfer")))
        for _ in range(50):
            await asyncio.sleep(0)
            if s.approvals.listing("pending"):
                break
        [a] = s.approvals.listing("pending")
        assert a.agent_uid == 1234 and a.action == "mcp.tools.transfer" and a.url == "stdio://tf-1/tools"
        assert not task.done()
        s.approvals.answer(a.id, approve, by=0)
        return await task

    approved = loop.run_until_complete(go(True))
    assert approved.outcome == "allowed" and "approved by" in approved.reason and approved.approval
    refused = loop.run_until_complete(go(False))
    assert refused.outcome == "denied" and "denied by" in refused.reason


def test_an_unanswered_hold_expires(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("mcp.tools.transfer", "require_approval"))
    s.approval_timeout = 0.05
    o = run(loop, s, tool("transfer"))
    assert o.outcome == "denied" and "expired" in o.reason


def test_a_full_approval_queue_rate_limits_a_call(loop: asyncio.AbstractEventLoop) -> None:
    s = state(("mcp.tools.transfer", "require_approval"))
    s.approvals = ApprovalQueue(per_gateway=0)
    o = run(loop, s, tool("transfer"))
    assert (o.outcome, o.reason) == ("rate_limited", "gateway Desk already holds 0 requests waiting for approval")
    assert (o.retry_after, o.allow_with, o.approval) == (30, "tf approvals list", "")
    assert not o.forward and s.approvals.listing() == []


def test_a_call_is_not_held_while_the_traffic_log_cannot_record_the_answer(
        loop: asyncio.AbstractEventLoop) -> None:
    here, there = socket.socketpair()
    try:
        store = RemoteStore(Channel(here, lambda msg: None))
        store.why = "disk full"
        s = state(("mcp.tools.transfer", "require_approval"))
        s.store = store  # type: ignore[assignment]
        o = run(loop, s, tool("transfer"))
        assert (o.outcome, o.reason) == ("denied", "traffic log unavailable: disk full; not held for approval")
        assert s.approvals.listing() == []
    finally:
        here.close()
        there.close()
