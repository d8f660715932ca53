"""Traffic analytics through the real daemon, as root: tf logs filters, tf sql locked down, tf export Parquet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

PULLS = "https://api.github.com/repos/acme/widgets/pulls"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host() as h:
        for args in ((PULLS,), ("-X", "DELETE", "https://api.github.com/repos/acme/widgets"), (f"{PULLS}/7",)):
            h.run("curl", "-sS", "-o", "/dev/null", *args)
        yield h


def test_logs_filters_csv_and_json(host: Host) -> None:
    r = host.tf("logs", "--json", "--decision", "denied")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and [x["action"] for x in rows] == ["github.repo.delete"]
    r = host.tf("logs", "--csv", "--action", "github.pr.*", "--since", "1h")
    got = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.returncode == 0 and [x["action"] for x in got] == ["github.pr.list", "github.pr.read"]
    # what a row says beyond the request: risk, the gateway's level and environment, the policies that applied
    assert [(x["risk"], x["level"], x["environment"], x["policies"], x["approval_id"]) for x in got] == [
        ("low", "full_enforce", "", "[]", "")] * 2
    assert host.tf("logs", "--json", "--search", "widgets/pulls/7").stdout.count("\n") == 1
    for bad, why in ((("-n", "-5"), "from 1 to 100000"), (("-n", "99999999"), "from 1 to 100000"),
                     (("--since", "yesterday"), "not a time"), (("--decision", "maybe"), "unknown decision"),
                     (("--action", "github.*.x"), "not valid")):
        r = host.tf("logs", *bad)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, (bad, r.stderr)


def test_sql_answers_one_select_and_refuses_the_rest(host: Host) -> None:
    r = host.tf("sql", "SELECT action, decision FROM traffic WHERE scheme = 'https' ORDER BY seq", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x) for x in r.stdout.splitlines()] == [
        {"action": "github.pr.list", "decision": "allowed"}, {"action": "github.repo.delete", "decision": "denied"},
        {"action": "github.pr.read", "decision": "allowed"}]
    assert host.tf("sql", "SELECT count(*) AS n FROM denials", "--format", "csv").stdout.split() == ["n", "1"]
    r = host.tf("sql", "SELECT risk, level FROM denials", "--format", "json")
    assert [json.loads(x) for x in r.stdout.splitlines()] == [{"risk": "critical", "level": "full_enforce"}]
    for bad in ("DELETE FROM traffic", "SELECT 1; SELECT 2", "SELECT * FROM read_csv('/etc/shadow')",
                f"SELECT * FROM read_text('{host.home}/vault.key')", "INSTALL httpfs", "ATTACH '/tmp/x.db'"):
        r = host.tf("sql", bad)
        assert r.returncode == 2 and "query refused" in r.stderr, (bad, r.stderr)
    assert host.tf("sql", "SELECT count(*) FROM traffic", "--format", "csv").stdout.split()[1] == "3"


def test_export_writes_parquet_once_per_row(host: Host, tmp_path: Path) -> None:
    out = tmp_path / "export"
    r = host.tf("export", "--parquet", str(out))
    assert r.returncode == 0 and "exported 3 row(s)" in r.stdout, r.stderr
    assert "nothing new" in host.tf("export", "--parquet", str(out)).stdout
    host.run("curl", "-sS", "-o", "/dev/null", PULLS)
    assert "exported 1 row(s)" in host.tf("export", "--parquet", str(out)).stdout
    seqs = duckdb.sql(f"SELECT seq FROM read_parquet('{out}/traffic/**/*.parquet') ORDER BY seq").fetchall()
    assert [s for (s,) in seqs] == [1, 2, 3, 4]
    r = host.tf("export", "--parquet", "/proc/no-such-place")
    assert r.returncode == 2 and "cannot write into /proc/no-such-place" in r.stderr
    events = [json.loads(x) for x in (host.home / "audit.jsonl").read_text().splitlines()]
    assert [e["after"]["rows"] for e in events if e["what"] == "traffic exported"] == [3, 0, 1]


def test_simulate_and_suggest_over_the_recorded_requests(host: Host, tmp_path: Path) -> None:
    doc = tmp_path / "candidate.toml"
    doc.write_text('[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.list"\n'
                   'decision = "allow"\n\n[[permission]]\ngateway = "Bot"\nconnector = "github"\n'
                   'action = "github.repo.*"\ndecision = "require_approval"\n')
    r = host.tf("permissions", "simulate", str(doc), "--json")
    assert r.returncode == 0, r.stderr
    sim = json.loads(r.stdout)
    moves = {(c["before"], c["after"]): c["count"] for c in sim["changes"]}
    assert moves[("allow", "deny")] >= 1  # github.pr.read: allowed by github.pr.* today, not by the candidate
    assert moves[("deny", "require_approval")] == 1  # the repo delete
    assert host.tf("permissions", "export").returncode == 0  # nothing was changed by simulating
    doc.write_text('[[permission]]\ngateway = "Bot"\nconnector = "nope"\naction = "*"\ndecision = "allow"\n')
    r = host.tf("permissions", "simulate", str(doc))
    assert r.returncode == 2 and f"{doc}:" in r.stderr and "unknown connector 'nope'" in r.stderr

    r = host.tf("permissions", "suggest", "--gateway", "Bot")
    assert r.returncode == 0, r.stderr
    suggested = tmp_path / "suggested.toml"
    suggested.write_text(r.stdout)
    assert 'action = "github.pr.list"' in r.stdout and 'action = "github.repo.delete"' in r.stdout
    assert 'action = "*"' not in r.stdout
    r = host.tf("permissions", "simulate", str(suggested), "--json")  # a document import would accept
    assert r.returncode == 0, r.stderr


def test_simulate_decides_conditions_on_the_parameters_each_row_recorded(host: Host, tmp_path: Path) -> None:
    doc = tmp_path / "with-policy.toml"
    doc.write_text(host.tf("permissions", "export").stdout + '\n[[policy]]\nid = "no-pr-7"\n'
                   'actions = ["github.pr.read"]\ndecision = "deny"\nreason = "not that one"\n'
                   '[policy.when]\nfield = "params.number"\noperator = "equals"\nvalue = "7"\n')
    sim = json.loads(host.tf("permissions", "simulate", str(doc), "--json").stdout)
    [change] = sim["changes"]  # only the read of pull 7 moves; the list of pulls has no number
    assert (change["before"], change["after"]) == ("allow", "deny") and change["count"] >= 1
    assert all(e["path"].endswith("/pulls/7") and "no-pr-7" in e["then"] for e in change["examples"])
