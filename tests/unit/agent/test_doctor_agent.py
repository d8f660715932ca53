"""tf doctor --agent: which probe stands for a command, and what its output means."""

from __future__ import annotations

import json

from trustfence.agent.doctor_agent import Probe, probe_for, verdict

P = Probe("python", "/v/bin/python", [])


def test_the_probe_follows_the_command_to_its_program() -> None:
    probe = probe_for(["env", "A=1", "python3", "agent.py"], "/usr/bin", "/")
    assert probe is not None and probe.kind == "python" and probe.argv[0] == "/usr/bin/python3"
    assert probe_for(["true"], "/usr/bin:/bin", "/") is None
    assert probe_for(["no-such-program"], "/usr/bin", "/") is None


def test_every_source_trusted_is_ok() -> None:
    out = json.dumps({"source": "certifi", "file": "/v/certifi/cacert.pem", "ok": True})
    v = verdict(P, out + "\nnoise\n")
    assert v.ok and v.lines == ["ok   certifi (/v/certifi/cacert.pem)"] and v.fix == ""


def test_a_refused_source_names_its_file_in_the_fix() -> None:
    out = "\n".join(json.dumps(r) for r in ({"source": "default", "ok": True},
                                             {"source": "certifi", "file": "/x/cacert.pem", "ok": False,
                                              "error": "CERTIFICATE_VERIFY_FAILED"}))
    v = verdict(P, out)
    assert not v.ok and "add /x/cacert.pem to [sandbox] ca_overlays" in v.fix
    assert v.lines[1] == "FAIL certifi (/x/cacert.pem): CERTIFICATE_VERIFY_FAILED"


def test_no_output_is_no_claim() -> None:
    v = verdict(P, "")
    assert not v.ok and "printed no result" in v.lines[0]
