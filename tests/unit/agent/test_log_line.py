"""A tf logs line names what a connector read from the request (a package and its version, a push's refs)."""

from __future__ import annotations

import json

from trustfence.agent.cli.main import _log_line, _params_text

ROW = {"ts": "2026-12-02T09:00:00", "gateway": "Bot", "decision": "denied", "status": 403, "method": "GET",
       "action": "pypi.package.download", "host": "files.pythonhosted.org", "path": "/packages/tf_evil-1.0.whl",
       "comm": "pip", "pid": 12, "reason": "not on the allow list"}


def test_params_are_shown_as_name_value_pairs() -> None:
    line = _log_line({**ROW, "params": json.dumps({"name": "tf-evil", "version": "1.0"})})
    assert "pypi.package.download    name=tf-evil version=1.0  GET" in line and "pip[12]" in line


def test_lists_are_json_and_long_params_are_cut_to_one_line() -> None:
    assert _params_text(json.dumps({"refs": ["refs/heads/main"], "force": True})) == \
        'refs=["refs/heads/main"] force=True'
    assert len(_params_text(json.dumps({"q": "x" * 500}))) == 160


def test_no_or_unreadable_params_show_nothing() -> None:
    assert _params_text("") == _params_text(None) == _params_text("not json") == _params_text("[1]") == ""
    assert "GET" in _log_line({**ROW, "params": ""})


def test_a_refused_handshake_prints_its_fix_on_a_line_of_its_own() -> None:
    row = {**ROW, "decision": "error", "status": 0, "method": "", "action": "", "path": "", "comm": "curl",
           "reason": "client does not trust the enforcer's CA",
           "params": json.dumps({"error": "tlsv1 alert unknown ca", "fix": "add it to [sandbox] ca_overlays"})}
    first, second = _log_line(row).split("\n")
    assert "client does not trust the enforcer's CA" in first and "tlsv1" not in first
    assert second == "    fix: add it to [sandbox] ca_overlays"
