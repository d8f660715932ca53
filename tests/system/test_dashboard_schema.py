"""Schemathesis over the dashboard's OpenAPI schema, against a real daemon: for every operation, generated
requests (valid and not) get no 5xx with an owner's API token, and every one of them without a session or
token is refused with 401 before anything else looks at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

PASSWORD = "correct horse battery"
STREAM = "/api/traffic/stream"  # an open-ended event stream: checked on its own below, not fuzzed


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host() as h:
        yield h


@pytest.fixture(scope="module")
def token(host: Host) -> str:
    setup = json.loads(host.tf("dashboard", "setup", "--json").stdout)["token"]
    c = httpx.Client(base_url=host.dashboard, timeout=30)
    assert c.post("/setup", data={"token": setup, "name": "olive", "password": PASSWORD}).status_code == 303
    csrf = c.get("/api/me").json()["csrf"]
    return str(c.post("/api/tokens", json={"label": "schemathesis"}, headers={"X-CSRF-Token": csrf}).json()["token"])


def operations(host: Host, token: str) -> list[Any]:
    doc = httpx.get(host.dashboard + "/api/openapi.json", headers={"Authorization": f"Bearer {token}"}).json()
    assert len(doc["paths"]) >= 15
    # /api/v1 is the agents' API (agent keys, advisory mode), tested on its own
    schema = schemathesis.openapi.from_dict(doc).exclude(path=STREAM).exclude(path_regex="^/api/v1")
    return [r.ok() for r in schema.get_all_operations()]


# Each operation gets its own Hypothesis run, valid and invalid inputs alike (schemathesis' own pytest plugin
# reaches into pytest internals that pytest 9 changed, so the strategies are driven here).
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_server_error_and_nothing_without_credentials(host: Host, token: str, mode: GenerationMode) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    calls: list[str] = []
    for operation in operations(host, token):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            anonymous = case.call(base_url=host.dashboard, timeout=30)
            assert anonymous.status_code == 401, (case.method, case.formatted_path, anonymous.text[:300])
            case.call_and_validate(base_url=host.dashboard, timeout=30, headers=bearer, checks=[not_a_server_error])
            calls.append(case.operation.label)

        try:
            run()
        except Unsatisfiable:  # an operation without parameters has no invalid form
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(set(calls)) >= (15 if mode is GenerationMode.POSITIVE else 8)  # the operations were exercised


def test_the_event_stream_refuses_a_caller_without_credentials(host: Host) -> None:
    assert httpx.get(host.dashboard + STREAM, timeout=30).status_code == 401
    r = httpx.get(host.dashboard + STREAM, headers={"Authorization": "Bearer tfd_guessed"}, timeout=30)
    assert r.status_code == 401
