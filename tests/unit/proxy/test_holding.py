"""Holding a request for a human: the one sequence the enforcer, a worker's ask and a stdio call all follow."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

from trustfence.proxy.holding import HoldAnswer, hold
from trustfence.proxy.holds import Approval, ApprovalQueue, Held
from trustfence.proxy.limits import SandboxLimits
from trustfence.proxy.remote import RemoteStore
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.workerlink import Channel

WHAT = Held("Bot", "tf-1", "github", "github.pr.merge", "PUT", "https://api.github.com/x", "d1", "needs a human",
            "r1", "high", 5.0, "", 1000)


def held(**kw: object) -> Held:
    return replace(WHAT, **kw)  # type: ignore[arg-type]


def test_a_hold_is_released_by_the_answer_and_counts_against_the_sandbox() -> None:
    async def main() -> None:
        state = EnforcerState(store=None, limits=SandboxLimits(max_held=1))
        count: dict[str, int] = {}
        opened: list[Approval] = []
        first = asyncio.create_task(hold(state, count, WHAT, opened.append))
        await asyncio.sleep(0.01)
        (pending,) = state.approvals.listing("pending")
        assert count == {"tf-1": 1} and [a.id for a in opened] == [pending.id]  # told before the wait ends
        capped = await hold(state, count, held(digest="d2"))
        assert capped == HoldAnswer("deny", "sandbox tf-1 already holds 1 requests waiting for approval "
                                            "(max_held_per_sandbox under [enforcer] in config.toml)", 429,
                                    "rate_limited", "tf approvals list", 30, restate=True)
        state.approvals.answer(pending.id, True, by=0)
        got = await first
        assert got.kind == "release" and got.approval is pending and count == {}
        assert pending.released and state.approvals.take_approved("Bot", "d1") is None  # released once

    asyncio.run(main())


def test_denied_expired_and_respond_async() -> None:
    async def main() -> None:
        state = EnforcerState(store=None)
        expired = await hold(state, {}, held(timeout=0.05))
        assert expired.kind == "deny" and expired.status == 403 and expired.outcome == "denied"
        assert expired.approval is not None and expired.approval.state == "expired"
        assert expired.reason == f"approval {expired.approval.id} expired after 0 s without an answer"
        assert expired.allow_with == "tf approvals list --gateway Bot"
        pending = await hold(state, {}, held(respond_async=True, digest="d3"))
        assert pending.kind == "pending" and pending.approval is not None
        state.approvals.answer(pending.approval.id, True, by=0)
        again = await hold(state, {}, held(digest="d3"))  # the same request sent again: released once
        assert again.kind == "release" and again.approval is pending.approval
        task = asyncio.create_task(hold(state, {}, held(digest="d4")))
        await asyncio.sleep(0.01)
        (a,) = state.approvals.listing("pending")
        state.approvals.answer(a.id, False, by=None, note="no")
        denied = await task
        assert denied == HoldAnswer("deny", f"approval {a.id} denied by the daemon: no",
                                    allow_with=f"tf approvals show {a.id}", approval=a)

    asyncio.run(main())


def test_a_full_gateway_queue_refuses_with_429_and_retry_after() -> None:
    async def main() -> None:
        state = EnforcerState(store=None, approvals=ApprovalQueue(per_gateway=1))
        first = await hold(state, {}, held(respond_async=True))
        assert first.kind == "pending"
        full = await hold(state, {}, held(digest="d2"))
        assert full == HoldAnswer("deny", "gateway Bot already holds 1 requests waiting for approval", 429,
                                  allow_with="tf approvals list", retry_after=30)
        assert len(state.approvals.listing()) == 1

    asyncio.run(main())


def test_what_does_not_wait_on_a_connection_is_not_counted_per_sandbox() -> None:
    async def main() -> None:
        state = EnforcerState(store=None, limits=SandboxLimits(max_held=1))
        count: dict[str, int] = {}
        waiting = [asyncio.create_task(hold(state, count, WHAT))]
        await asyncio.sleep(0.01)
        assert count == {"tf-1": 1}  # the sandbox's one held request: full
        assert (await hold(state, count, held(respond_async=True, digest="d2"))).kind == "pending"
        waiting += [asyncio.create_task(hold(state, None, held(digest=d))) for d in ("d3", "d4")]  # no cap
        await asyncio.sleep(0.01)
        assert len(state.approvals.listing("pending")) == 4 and count == {"tf-1": 1}
        for a in state.approvals.listing("pending"):
            state.approvals.answer(a.id, True, by=0)
        assert [(await t).kind for t in waiting] == ["release"] * 3 and count == {}

    asyncio.run(main())


def test_nothing_is_held_while_the_traffic_log_cannot_record_the_answer() -> None:
    async def main() -> None:
        here, there = socket.socketpair()
        try:
            store = RemoteStore(Channel(here, lambda msg: None))
            store.why = "disk full"
            state = EnforcerState(store=store)  # type: ignore[arg-type]
            got = await hold(state, {}, WHAT)
            assert got == HoldAnswer("unrecordable", "traffic log unavailable: disk full; not held for approval",
                                     503, restate=True)
            assert state.approvals.listing() == []
        finally:
            here.close()
            there.close()

    asyncio.run(main())


def test_an_answer_crosses_a_workers_link_as_plain_values() -> None:
    async def main() -> None:
        state = EnforcerState(store=None)
        answer = await hold(state, {}, held(respond_async=True))
        plain = answer.as_dict()
        assert plain["approval"] is not None and "answer" not in plain["approval"]  # the future stays here
        back = HoldAnswer.from_dict(plain)
        assert answer.approval is not None and back.approval is not None
        assert back.approval.as_dict() == answer.approval.as_dict()
        assert replace(back, approval=None) == replace(answer, approval=None)
        refused = HoldAnswer("deny", "why", 429, "rate_limited", "tf approvals list", 30, restate=True)
        assert HoldAnswer.from_dict(refused.as_dict()) == refused

    asyncio.run(main())
