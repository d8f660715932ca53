"""Every change of what is enforced or who may do what is an audit event naming who made it, with before and
after; tf audit filters them by type and time and prints CSV or JSON lines. Through the real daemon, as root."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

HOOK = "https://hooks.slack.com/services/T0/B0/secret-webhook-path"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(connectors=f'[connectors.github]\ntype = "github"\n\n[approvals]\nnotify_url = "{HOOK}"\n'
                      ) as h:
        for args in (("connector", "add", "generic", "--name", "crm", "--domains", "api.crm.example"),
                     ("gateway", "level", "Bot", "soft_enforce"),
                     ("kill-switch", "activate", "--scope", "connector:crm", "--reason", "test"),
                     ("kill-switch", "deactivate", "--scope", "connector:crm", "--reason", "ok"),
                     ("connector", "remove", "crm"), ("vault", "rotate")):
            r = h.tf(*args)
            assert r.returncode == 0, (args, r.stderr)
        yield h


def events(h: Host, *args: str) -> list[dict[str, Any]]:
    r = h.tf("audit", "--json", "--limit", "1000", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_configuration_changes_are_events_with_who_before_and_after(host: Host) -> None:
    whats = [e["what"] for e in events(host)]
    for expected in ("daemon started", "connector crm added", "gateway Bot level soft_enforce",
                     "kill switch activated", "kill switch deactivated", "connector crm removed", "vault key rotated"):
        assert expected in whats, (expected, whats)
    [added] = events(host, "--what", "connector crm added")
    assert added["who"] == "uid 0" and added["before"] == {"connectors": {"crm": None}}
    assert added["after"]["connectors"]["crm"]["domains"] == ["api.crm.example"]
    [level] = events(host, "--what", "level")
    assert level["before"]["gateways"] == {"Bot": None} and level["after"]["gateways"]["Bot"]["level"] == "soft_enforce"
    assert HOOK not in (host.home / "audit.jsonl").read_text()  # a secret is recorded as set, never as its value


def test_filters_by_type_who_and_time_and_csv(host: Host) -> None:
    assert {e["what"] for e in events(host, "--what", "KILL SWITCH")} == {"kill switch activated",
                                                                         "kill switch deactivated"}
    assert events(host, "--since", "1h") == events(host)
    assert events(host, "--until", "1h") == []
    assert all(e["who"] == "daemon" for e in events(host, "--who", "daemon"))
    r = host.tf("audit", "--csv", "--what", "connector")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.returncode == 0 and [x["what"] for x in rows] == ["connector crm added", "connector crm removed"]
    assert json.loads(rows[0]["after"])["connectors"]["crm"]["type"] == "generic"
    bad = host.tf("audit", "--since", "yesterday")
    assert bad.returncode == 2 and "not a time" in bad.stderr
