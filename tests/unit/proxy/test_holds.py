"""The approval queue: each approval answered once, bound to its request's digest, capped per gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from trustfence.proxy.holds import Approval, ApprovalError, ApprovalQueue, Held, request_digest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()


def held(q: ApprovalQueue, gateway: str = "Bot", digest: str = "d1") -> Approval | None:
    async def go() -> Approval | None:
        return q.open(Held(gateway, "tf-1", "stripe", "stripe.refund.create", "POST",
                           "https://api.stripe.com/v1/refunds", digest, "refunds need a human", "policy:refunds",
                           "high", 300))
    return asyncio.get_event_loop().run_until_complete(go())


def test_digest_binds_method_url_and_body() -> None:
    d = request_digest("POST", "https://api.stripe.com:443/v1/refunds", b"amount=100")
    assert d == request_digest("post", "https://api.stripe.com:443/v1/refunds", b"amount=100")
    assert d != request_digest("POST", "https://api.stripe.com:443/v1/refunds", b"amount=1000")
    assert d != request_digest("PUT", "https://api.stripe.com:443/v1/refunds", b"amount=100")
    assert d != request_digest("POST", "https://api.stripe.com:443/v1/refunds?x=1", b"amount=100")


def test_answered_once(loop: asyncio.AbstractEventLoop) -> None:
    q = ApprovalQueue()
    a = held(q)
    assert a is not None and a.state == "pending"
    q.answer(a.id, True, by=0, note="ok")
    assert a.state == "approved" and a.answer is not None and a.answer.result() is True
    with pytest.raises(ApprovalError, match="already approved"):
        q.answer(a.id, False, by=0)
    assert a.state == "approved"
    with pytest.raises(ApprovalError, match="no approval 'nope'"):
        q.answer("nope", True, by=0)


def test_expired_cannot_be_approved(loop: asyncio.AbstractEventLoop) -> None:
    q = ApprovalQueue()
    a = held(q)
    assert a is not None
    q.expire(a.id)
    with pytest.raises(ApprovalError, match="already expired"):
        q.answer(a.id, True, by=0)


def test_cap_per_gateway(loop: asyncio.AbstractEventLoop) -> None:
    q = ApprovalQueue(per_gateway=2)
    assert held(q) and held(q)
    assert held(q) is None
    assert held(q, gateway="Other") is not None  # another gateway has its own cap
    q.answer(q.listing("pending")[0].id, False, by=0)
    assert held(q) is not None  # an answered one frees a slot


def test_an_approval_releases_exactly_its_request_once(loop: asyncio.AbstractEventLoop) -> None:
    q = ApprovalQueue()
    a = held(q, digest="exact")
    assert a is not None
    assert q.take_approved("Bot", "exact") is None  # not approved yet
    q.answer(a.id, True, by=0)
    assert q.take_approved("Bot", "modified") is None
    assert q.take_approved("Other", "exact") is None
    assert q.take_approved("Bot", "exact") is a
    assert q.take_approved("Bot", "exact") is None  # once


def test_cancel_denies_what_matches(loop: asyncio.AbstractEventLoop) -> None:
    q = ApprovalQueue()
    a, b = held(q), held(q, gateway="Other")
    assert a is not None and b is not None
    assert q.cancel(lambda x: x.gateway == "Bot", "kill switch") == [a]
    assert a.state == "denied" and a.note == "kill switch" and b.state == "pending"


def test_answered_ones_are_trimmed_pending_never(loop: asyncio.AbstractEventLoop) -> None:
    q = ApprovalQueue(per_gateway=100, keep=3)
    first = [held(q) for _ in range(3)]
    for a in first[:2]:
        assert a is not None
        q.answer(a.id, False, by=0)
    for _ in range(2):
        held(q)
    assert len(q.listing()) == 3 and all(a.state == "pending" for a in q.listing())
