"""fail_closed: what every enforcement hook shares — settled flows left alone, any failure a 403."""

from __future__ import annotations

import json

from mitmproxy import http
from mitmproxy.test import tflow
from trustfence.proxy.responses import fail_closed, settled


class Exploding:
    def __init__(self) -> None:
        self.calls = 0

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        self.calls += 1
        raise RuntimeError("boom")


def test_a_failing_hook_denies_instead_of_forwarding() -> None:
    flow, hook = tflow.tflow(), Exploding()
    hook.request(flow)
    assert hook.calls == 1
    assert flow.response is not None and flow.response.status_code == 403
    assert "internal error in Exploding: RuntimeError" in json.loads(flow.response.get_text() or "")["reason"]


def test_settled_flows_are_left_alone() -> None:
    answered = tflow.tflow(resp=True)
    failed = tflow.tflow(err=True)
    gone = tflow.tflow()
    gone.live = False
    hook = Exploding()
    before = answered.response.status_code if answered.response else None
    for flow in (answered, failed, gone):
        assert settled(flow)
        hook.request(flow)
    assert hook.calls == 0
    assert answered.response is not None and answered.response.status_code == before
    assert failed.response is None and gone.response is None
    assert not settled(tflow.tflow())
