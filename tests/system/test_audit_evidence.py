"""The audit chain as evidence, as root with a real daemon and real files: a log cut short, deleted, restarted
on a shorter copy or re-sealed without the key is found by ``tf audit verify`` (exit 1) and by the daemon at
start, which refuses to begin a new chain over it until ``tf audit reset --reason`` (itself the new chain's
first event). Also: ``tf run`` says so when the daemon dies under it, and a denial names who denied."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from trustfence.store.audit import _digest

from tests.system.conftest import TF, Host, running_host

pytestmark = pytest.mark.system


@pytest.fixture()
def host() -> Iterator[Host]:
    with running_host() as h:
        for i in range(4):
            r = h.tf("permissions", "set", "--gateway", "Bot", "--connector", "github", "--action",
                     f"github.issue.{['list', 'read', 'create', 'update'][i]}", "--decision", "allow")
            assert r.returncode == 0, r.stderr
        yield h


def lines(h: Host) -> list[str]:
    return (h.home / "audit.jsonl").read_text().splitlines(keepends=True)


def refuses_to_start(h: Host) -> str:
    """Stop the daemon, start it again in the foreground: it must exit at once, and say why."""
    h.stop_daemon()
    r = h.tf("daemon", timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert not (h.home / "daemon.sock").exists() or h.tf("audit", "verify").returncode == 1
    return r.stderr


def verify(h: Host) -> subprocess.CompletedProcess[str]:
    return h.tf("audit", "verify")


def test_an_intact_chain_verifies_and_its_public_key_checks_a_copy_off_host(host: Host, tmp_path: Path) -> None:
    r = verify(host)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "signed checkpoint" in r.stdout
    pem = host.tf("audit", "pubkey").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "key.pub").write_text(pem)
    copy = tmp_path / "audit-copy.jsonl"
    copy.write_text("".join(lines(host)))
    off = host.tf("audit", "verify", "--file", str(copy), "--pubkey", str(tmp_path / "key.pub"))
    assert off.returncode == 0, off.stdout + off.stderr


def test_removed_last_lines_are_found_by_verify_and_by_tf_audit(host: Host) -> None:
    kept = lines(host)[:-2]
    (host.home / "audit.jsonl").write_text("".join(kept))
    r = verify(host)
    assert r.returncode == 1 and "but its head was anchored at seq" in r.stdout, r.stdout
    assert host.tf("audit").returncode == 1


def test_a_restart_on_a_shorter_file_is_refused_until_reset(host: Host) -> None:
    host.stop_daemon()
    (host.home / "audit.jsonl").write_text("".join(lines(host)[:3]))
    err = refuses_to_start(host)
    assert "audit log error" in err and "anchored at seq" in err and "tf audit reset" in err
    assert "Traceback" not in err
    off = verify(host)  # the daemon is not running: checked from the files
    assert off.returncode == 1 and "event(s) removed" in off.stdout, off.stdout + off.stderr
    reset = host.tf("audit", "reset", "--reason", "restored from a backup")
    assert reset.returncode == 0, reset.stderr
    host.start_daemon()
    assert verify(host).returncode == 0
    first = json.loads(lines(host)[0])
    assert first["what"] == "audit reset" and first["after"] == {"reason": "restored from a backup"}
    assert any("anchored at seq" in p for p in first["before"]["problems"])
    assert Path(first["before"]["kept_as"]).read_text().count("\n") == 3  # the evidence, kept as it was found


def test_a_deleted_log_is_not_replaced_by_a_new_chain(host: Host) -> None:
    (host.home / "audit.jsonl").unlink()
    assert verify(host).returncode == 1
    err = refuses_to_start(host)
    assert "audit.jsonl is missing, but its head was anchored" in err, err
    assert not (host.home / "audit.jsonl").exists()  # nothing started over it, not even at stop


def test_a_chain_resealed_without_the_key_is_found(host: Host) -> None:
    host.stop_daemon()
    events = [json.loads(x) for x in lines(host)]
    victim = next(e for e in events if e["what"] == "permission set")
    victim["after"] = {"gateway": "Bot", "connector": "github", "action": "*", "decision": "allow"}
    prev = "0" * 64
    for e in events:  # every hash recomputed: the chain itself holds, only the key is missing
        e["prev"] = prev
        e["hash"] = prev = _digest(prev, e)
    (host.home / "audit.jsonl").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    r = verify(host)
    assert r.returncode == 1 and ("re-sealed" in r.stdout or "not the one anchored" in r.stdout), r.stdout
    err = refuses_to_start(host)
    assert "cannot be continued" in err


def test_a_cut_last_line_is_reported_with_its_number_and_never_appended_to(host: Host) -> None:
    host.stop_daemon()
    text = "".join(lines(host))
    n = len(lines(host))
    (host.home / "audit.jsonl").write_text(text[:-25])
    before = (host.home / "audit.jsonl").read_bytes()
    err = refuses_to_start(host)
    assert f"audit.jsonl:{n}: not an audit event" in err
    assert (host.home / "audit.jsonl").read_bytes() == before


def test_tf_run_says_when_the_daemon_dies_under_it() -> None:
    with running_host() as h:
        run = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c", "echo up; sleep 60"], env=h.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert run.stdout is not None and run.stdout.readline().strip() == "up"
            os.kill(h.daemon_pid(), signal.SIGKILL)
            t0 = time.monotonic()
            _, err = run.communicate(timeout=30)
            assert run.returncode == 125, err
            assert "the daemon stopped while the agent ran; the sandbox is gone" in err
            assert "Traceback" not in err and "BrokenPipe" not in err
            assert time.monotonic() - t0 < 15  # the agent was stopped, not waited for
        finally:
            run.kill()
            h.start_daemon()  # collects what the killed daemon left
