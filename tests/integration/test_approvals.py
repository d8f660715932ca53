"""Approvals through the real enforcer: a held request waits without blocking others, and only what a human
approved reaches the upstream, once."""

from __future__ import annotations

import concurrent.futures
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.agent.brakes import KillSwitches
from trustfence.policy import Permission
from trustfence.proxy.holds import Approval

MERGE = "https://api.github.com/repos/acme/widgets/pulls/7/merge"
PULLS = "https://api.github.com/repos/acme/widgets/pulls"


def client(enf: RunningEnforcer, tmp_path: Path, timeout: float = 30) -> httpx.Client:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}", verify=ssl.create_default_context(cafile=str(ca)),
                        timeout=timeout)


@pytest.fixture
def held(enforcer: RunningEnforcer) -> Iterator[RunningEnforcer]:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.merge", "require_approval"),
                             Permission("Bot", "github", "github.pr.list", "allow"))
    yield enforcer


def pending(enf: RunningEnforcer, n: int = 1) -> list[Approval]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = enf.on_loop(lambda: enf.state.approvals.listing("pending"))
        if len(got) >= n:
            return got
        time.sleep(0.05)
    raise AssertionError("no request was held")


def in_background(fn: Callable[[], httpx.Response]) -> concurrent.futures.Future[httpx.Response]:
    return concurrent.futures.ThreadPoolExecutor(1).submit(fn)


def test_held_request_waits_without_blocking_others_and_is_sent_once_approved(
        held: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    with client(held, tmp_path) as c, client(held, tmp_path) as other:
        merge = in_background(lambda: c.put(MERGE, json={"merge_method": "squash"}))
        [a] = pending(held)
        assert a.action == "github.pr.merge" and a.gateway == "Bot"
        assert other.get(PULLS).status_code == 200  # other traffic goes on meanwhile
        assert [g["path"] for g in fake_upstream.received()] == ["/repos/acme/widgets/pulls"]
        held.on_loop(lambda: held.state.approvals.answer(a.id, True, by=0, note="ship it"))
        r = merge.result(10)
    assert r.status_code == 200 and r.headers["x-trustfence-decision"] == "allowed"
    assert [g["path"] for g in fake_upstream.received()].count("/repos/acme/widgets/pulls/7/merge") == 1
    row = [x for x in held.rows() if x["action"] == "github.pr.merge"]
    assert len(row) == 1 and row[0]["decision"] == "allowed" and f"approval {a.id}: ship it" in row[0]["reason"]
    assert row[0]["approval_id"] == a.id  # the row names the approval it was held under
    assert [x["approval_id"] for x in held.rows() if x["action"] == "github.pr.list"] == [""]


def test_denied_approval_answers_403_and_nothing_is_sent(held: RunningEnforcer, fake_upstream: Upstream,
                                                          tmp_path: Path) -> None:
    with client(held, tmp_path) as c:
        merge = in_background(lambda: c.put(MERGE, json={}))
        [a] = pending(held)
        held.on_loop(lambda: held.state.approvals.answer(a.id, False, by=0, note="not on a Friday"))
        r = merge.result(10)
    assert r.status_code == 403 and "not on a Friday" in r.json()["reason"]
    assert fake_upstream.received() == []


def test_expired_approval_answers_403_and_cannot_be_approved_later(
        held: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    held.state.approval_timeout = 0.5
    with client(held, tmp_path) as c:
        r = c.put(MERGE, json={})
    assert r.status_code == 403 and "expired" in r.json()["reason"]
    [a] = held.on_loop(lambda: held.state.approvals.listing("expired"))
    with pytest.raises(Exception, match="already expired"):
        held.on_loop(lambda: held.state.approvals.answer(a.id, True, by=0))
    assert fake_upstream.received() == []


def test_cap_per_gateway_answers_429(held: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    held.state.approvals.per_gateway = 1
    with client(held, tmp_path) as c, client(held, tmp_path) as c2:
        first = in_background(lambda: c.put(MERGE, json={}))
        [a] = pending(held)
        r = c2.put(MERGE, json={"n": 2})
        assert r.status_code == 429 and r.headers["retry-after"] and "already holds 1" in r.json()["reason"]
        held.on_loop(lambda: held.state.approvals.answer(a.id, False, by=0))
        assert first.result(10).status_code == 403
    assert fake_upstream.received() == []


def test_respond_async_releases_exactly_the_approved_request_once(
        held: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    prefer = {"Prefer": "respond-async"}
    with client(held, tmp_path) as c:
        r = c.put(MERGE, json={"sha": "abc"}, headers=prefer)
        assert r.status_code == 202 and r.headers["x-trustfence-decision"] == "pending_approval"
        approval_id = r.json()["approval_id"]
        held.on_loop(lambda: held.state.approvals.answer(approval_id, True, by=0))
        changed = c.put(MERGE, json={"sha": "evil"}, headers=prefer)  # modified after approval: held anew
        assert changed.status_code == 202 and changed.json()["approval_id"] != approval_id
        same = c.put(MERGE, json={"sha": "abc"}, headers=prefer)
        assert same.status_code == 200 and same.headers["x-trustfence-decision"] == "allowed"
        again = c.put(MERGE, json={"sha": "abc"}, headers=prefer)  # released once: a replay waits again
        assert again.status_code == 202
    bodies = [g["body"] for g in fake_upstream.received()]
    assert bodies == ['{"sha":"abc"}']


def test_kill_switch_denies_held_approvals(held: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    assert held.master is not None
    switches = KillSwitches(tmp_path / "kill-switches.json", held.state, held.master.cut)
    with client(held, tmp_path) as c:
        merge = in_background(lambda: c.put(MERGE, json={}))
        [a] = pending(held)
        held.on_loop(lambda: switches.activate("gateway:Bot", "incident", "test", ["Bot"], ["github"]))
        with pytest.raises(httpx.HTTPError):
            merge.result(10).raise_for_status()
    assert a.state == "denied" and "incident" in a.note
    assert fake_upstream.received() == []
