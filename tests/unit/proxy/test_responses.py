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


def test_a_deny_carries_its_reason_in_the_status_line_too() -> None:
    from trustfence.proxy.responses import deny, status_reason

    flow = tflow.tflow()
    deny(flow, "package evil is not on the allow list of connector pypi (/etc/x.txt)")
    assert flow.response is not None and flow.response.status_code == 403
    assert flow.response.reason == ("Forbidden (TrustFence: package evil is not on the allow list of connector pypi "
                                    "(/etc/x.txt))")
    hostile = status_reason("Forbidden", "a\r\nX-Injected: 1\x00é" + "z" * 1000)
    assert "\r" not in hostile and "\n" not in hostile and "\x00" not in hostile and "é" not in hostile
    assert len(hostile) < 400 and hostile.endswith("...)")
