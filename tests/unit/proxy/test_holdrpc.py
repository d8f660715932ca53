"""A worker's hold, kept in the daemon's queue: answered there, capped per sandbox across processes, expiring."""

from __future__ import annotations

import asyncio
from typing import Any

from trustfence.proxy.approvals import Approvals
from trustfence.proxy.holdrpc import hold
from trustfence.proxy.limits import SandboxLimits
from trustfence.proxy.state import EnforcerState


def ask(**kw: Any) -> dict[str, Any]:
    return {"gateway": "Bot", "sandbox": "tf-1", "connector": "github", "action": "github.pr.merge",
            "method": "PUT", "url": "https://api.github.com/x", "digest": "d1", "reason": "needs a human",
            "rule_id": "r1", "risk": "high", "timeout": 5.0, "approver_role": "", "agent_uid": 1000,
            "respond_async": False, **kw}


def test_a_hold_is_released_by_the_daemons_answer_and_counts_against_the_sandbox() -> None:
    async def main() -> None:
        state = EnforcerState(store=None, limits=SandboxLimits(max_held=1))
        approvals = Approvals(state)
        first = asyncio.create_task(hold(state, approvals, ask()))
        await asyncio.sleep(0.01)
        (pending,) = state.approvals.listing("pending")
        assert approvals._held == {"tf-1": 1}
        capped = await hold(state, approvals, ask(digest="d2"))  # the daemon's own holds count the same
        assert capped["kind"] == "deny" and capped["status"] == 429 and "max_held_per_sandbox" in capped["reason"]
        state.approvals.answer(pending.id, True, by=0)
        got = await first
        assert got["kind"] == "release" and got["approval"]["id"] == pending.id and approvals._held == {}
        assert got["approval"]["released"] is True

    asyncio.run(main())


def test_denied_expired_and_respond_async() -> None:
    async def main() -> None:
        state = EnforcerState(store=None)
        approvals = Approvals(state)
        expired = await hold(state, approvals, ask(timeout=0.05))
        assert expired["kind"] == "deny" and "expired" in expired["reason"]
        pending = await hold(state, approvals, ask(respond_async=True, digest="d3"))
        assert pending["kind"] == "pending"
        state.approvals.answer(pending["approval"]["id"], True, by=0)
        again = await hold(state, approvals, ask(digest="d3"))  # the same request sent again: released once
        assert again["kind"] == "release"
        task = asyncio.create_task(hold(state, approvals, ask(digest="d4")))
        await asyncio.sleep(0.01)
        (a,) = state.approvals.listing("pending")
        state.approvals.answer(a.id, False, by=0, note="no")
        denied = await task
        assert denied["kind"] == "deny" and "denied by" in denied["reason"] and denied["reason"].endswith(": no")

    asyncio.run(main())
