"""Action requests kept in memory: what a request that can no longer be executed still holds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from trustfence.agent.advisory.keys import RegisteredAgent
from trustfence.agent.advisory.requests import ActionRequest, Requests
from trustfence.agent.advisory.spec import parse_spec
from trustfence.agent.advisory.tokens import Signer
from trustfence.connectors import Action
from trustfence.policy import Permission, compile_policy
from trustfence.proxy.state import EnforcerState
from trustfence.store import Store

AGENT = RegisteredAgent("bot", "Advisor", "0" * 64, 0.0)
BIG = {"owner": "o", "repo": "r", "number": 1, "notes": [1.5] * 12_000}  # 60 KB of JSON, ~1 MB in memory


def _submit(requests: Requests) -> ActionRequest:
    spec = parse_spec(b'{"action_spec": {"type": "github.pr.read", "parameters": %s}}'
                      % json.dumps(BIG).encode())

    async def go() -> ActionRequest:
        req = await requests.submit(AGENT, spec, Action("github.pr.read", "github", "low", dict(spec.parameters)),
                                    "127.0.0.1")
        await requests.wait(req, 5)
        return req

    return asyncio.run(go())


def test_a_denied_request_keeps_its_answer_but_not_its_parameters(tmp_path: Path) -> None:
    requests = Requests(EnforcerState(store=None), Signer(tmp_path / "k"))  # no permission: denied
    req = _submit(requests)
    assert req.status == "denied" and req.view()["decision"]["action"] == "github.pr.read"
    assert req.spec.parameters == {} and req.action.params == {}


def test_an_allowed_request_keeps_its_parameters_until_its_token_expires(tmp_path: Path) -> None:
    store = Store(tmp_path / "traffic.duckdb")
    try:
        state = EnforcerState(store=store)
        state.policy = compile_policy([Permission("Advisor", "github", "github.pr.read", "allow")])
        requests = Requests(state, Signer(tmp_path / "k"))
        req = _submit(requests)
        assert req.status == "allowed" and req.token and req.spec.parameters == BIG
        requests._trim()
        assert req.spec.parameters == BIG
        req.expires -= 10_000
        requests._trim()
        assert req.spec.parameters == {} and req.action.params == {}
        assert req.view()["status"] == "allowed"
    finally:
        store.close()
