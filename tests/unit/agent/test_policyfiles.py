"""The policy files as the daemon reads them: one exported document round-trips; bad input names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.agent.paths import Paths
from trustfence.agent.policyfiles import export, load, parse_document, split_document
from trustfence.connectors import ConnectorSet, build_connector
from trustfence.policy import PolicyFileError

CONNECTORS = ConnectorSet([build_connector("stripe", "stripe"), build_connector("github", "github")])
PERMS = '[[permission]]\ngateway = "Bot"\nconnector = "stripe"\naction = "*"\ndecision = "allow"\n'
POLICY = ('[[policy]]\nid = "big"\nconnectors = ["stripe"]\nactions = ["stripe.refund.*"]\ndecision = "deny"\n'
          'when = { field = "params.amount", operator = "gt", value = 10000 }\n')


def test_export_then_parse_is_the_same_policy(tmp_path: Path) -> None:
    p = Paths(tmp_path)
    p.permissions.write_text(PERMS)
    p.policies.write_text(POLICY)
    policy = load(p, CONNECTORS)
    again = parse_document(export(policy), tmp_path / "doc.toml", CONNECTORS)
    assert again.permissions == policy.permissions and again.policies == policy.policies
    assert export(again) == export(policy)


def test_split_keeps_line_numbers() -> None:
    perms, pols = split_document(PERMS + "\n" + POLICY)
    assert len(perms.splitlines()) == len(pols.splitlines()) == len((PERMS + "\n" + POLICY).splitlines())
    assert "[[policy]]" not in perms and "[[permission]]" not in pols


def test_policy_on_an_unknown_connector_names_its_line(tmp_path: Path) -> None:
    p = Paths(tmp_path)
    p.policies.write_text("# header\n" + POLICY.replace('"stripe"]', '"stripey"]'))
    with pytest.raises(PolicyFileError) as e:
        load(p, CONNECTORS)
    assert e.value.line == 3 and "unknown connector 'stripey'" in str(e.value)


def test_bad_permission_in_a_document_names_the_document_and_line(tmp_path: Path) -> None:
    doc = POLICY + "\n" + PERMS.replace('"allow"', '"maybe"')
    with pytest.raises(Exception) as e:
        parse_document(doc, tmp_path / "doc.toml", CONNECTORS)
    assert str(e.value).startswith(f"{tmp_path / 'doc.toml'}:8: ") and "maybe" in str(e.value)
