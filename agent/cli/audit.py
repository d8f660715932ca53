"""``tf audit``: every change to what is enforced, and whether that record is whole.

``tf audit verify`` checks the chain against its anchors (the signed head file and the traffic database) and
its signed checkpoints, and reports the traffic log's sequence gaps; it works with the daemon stopped too
(as root), which is when it matters most: a daemon that found a problem at start refuses to run.
``--file`` and ``--pubkey`` check a copy somewhere else against a public key saved from ``tf audit pubkey``.
``tf audit reset`` is the only way past a broken or missing chain, and is itself the new chain's first event.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from trustfence.agent.cli.common import CliError, call, client, out, print_json, require_root
from trustfence.agent.ipc import Client, DaemonUnavailable
from trustfence.agent.paths import Paths, paths

__all__ = ["audit_app"]

audit_app = typer.Typer(help="Changes to what is enforced (tf audit), and checks of that record.")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    what: Annotated[Optional[str], typer.Option("--what", help="event type text: 'connector', 'kill switch'")] = None,
    who: Annotated[Optional[str], typer.Option("--who", help="text in who made it: 'uid 0', 'file edit'")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="15m, 7d or an ISO 8601 time")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="15m, 7d or an ISO 8601 time")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV: seq, ts, who, what, before, after (JSON).")] = False,
) -> None:
    """Who changed what, before and after (hash-chained, anchored, signed; exit 1 if the record is not whole)."""
    if ctx.invoked_subcommand is not None:
        return
    if as_json and as_csv:
        raise CliError("choose one of --json and --csv")
    r = call("audit", limit=limit, what=what, who=who, since=since, until=until)
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer is not None:
        writer.writerow(["seq", "ts", "who", "what", "before", "after"])
    for e in r["events"]:
        if writer is not None:
            writer.writerow([e.get("seq"), e.get("ts"), e.get("who"), e.get("what"), json.dumps(e.get("before")),
                             json.dumps(e.get("after"))])
        elif as_json:
            print(json.dumps(e))
        else:
            print(f"{e['ts']}  {e['who']:<16} {e['what']}  before={json.dumps(e['before'])} "
                  f"after={json.dumps(e['after'])}")
    if r["broken"]:
        raise CliError(f"the audit log was tampered with: {r['broken']}", code=1)


def _running(p: Paths) -> bool:
    try:
        Client(p.socket, timeout=5).close()
        return True
    except DaemonUnavailable:
        return False


def _local_verify(p: Paths) -> dict[str, Any]:
    """What the daemon's verify says, read from the files (the daemon is not running)."""
    require_root("tf audit verify without a running daemon")
    from trustfence.store import Signer, report_of
    from trustfence.store.anchor import file_anchor, file_gaps

    db = str(p.database)
    r = report_of(p.audit, Signer(p.audit.with_name("audit.key"), p.audit.with_name("audit.head")),
                  file_anchor(db) if p.database.exists() else None)
    gaps = file_gaps(db) if p.database.exists() else []
    return {"events": r.events, "last_seq": r.last_seq, "checkpoints": r.checkpoints, "unsigned": r.unsigned,
            "problems": r.problems, "traffic_missing": gaps[0][2] if gaps else 0,
            "traffic_gaps": [[a, b] for a, b, _ in gaps]}


def _offline(file: Path, pubkey: Path) -> dict[str, Any]:
    from trustfence.store import check, load_public

    try:
        key = load_public(pubkey.read_bytes())
    except (OSError, ValueError) as e:
        raise CliError(f"cannot read the public key {pubkey}: {e}") from None
    r = check(file, key, [], every=20)
    if not file.exists():
        r.problems.append(f"{file}: no such file")
    return {"events": r.events, "last_seq": r.last_seq, "checkpoints": r.checkpoints, "unsigned": r.unsigned,
            "problems": r.problems}


@audit_app.command("verify")
def verify(
    file: Annotated[Optional[Path], typer.Option("--file", help="Check this copy (with --pubkey), not the host's.")] = None,
    pubkey: Annotated[Optional[Path], typer.Option("--pubkey", help="PEM from tf audit pubkey.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the audit chain (anchors, signatures) and the traffic log's sequence; exit 1 on any problem."""
    if (file is None) != (pubkey is None):
        raise CliError("--file and --pubkey go together (an off-host check of a copy)")
    p = paths()
    if file is not None and pubkey is not None:
        r = _offline(file, pubkey)
    elif _running(p):
        r = call("audit.verify")
        r.pop("ok", None)
    else:
        r = _local_verify(p)
    if as_json:
        print_json(r)
    else:
        out.print(f"audit: {r['events']} event(s), last seq {r['last_seq']}, {r['checkpoints']} signed "
                  f"checkpoint(s), {r['unsigned']} event(s) since the last", highlight=False)
        if r.get("traffic_missing"):
            runs = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in r["traffic_gaps"])
            out.print(f"traffic log: {r['traffic_missing']} sequence number(s) missing ({runs})", highlight=False)
        for problem in r["problems"]:
            out.print(f"PROBLEM: {problem}", highlight=False, markup=False)
    if r["problems"] or r.get("traffic_missing"):
        raise typer.Exit(1)


@audit_app.command("pubkey")
def pubkey() -> None:
    """The public key the audit log's checkpoints are signed with (PEM): keep a copy off this host."""
    p = paths()
    if _running(p):
        with client(start=False) as c:
            print(c.call("audit.pubkey")["pem"], end="")
        return
    require_root("tf audit pubkey without a running daemon")
    from trustfence.store import Signer

    signer = Signer(p.audit.with_name("audit.key"), p.audit.with_name("audit.head"))
    if not signer.exists():
        raise CliError(f"no audit key yet ({signer.key_path}): the daemon makes it at its first start")
    print(signer.public_pem(), end="")


@audit_app.command("reset")
def reset(reason: Annotated[str, typer.Option("--reason", help="Why the old chain is set aside (recorded).")]) -> None:
    """Keep the current audit log as evidence and start a new chain (the daemon must be stopped)."""
    require_root("tf audit reset")
    if not reason.strip():
        raise CliError("--reason must say why")
    p = paths()
    if _running(p):
        raise CliError("the daemon is running: stop it first (tf daemon stop), then reset")
    from trustfence.store import AuditLog
    from trustfence.store.anchor import file_anchor, file_write_anchor

    db = str(p.database)
    uid = int(os.environ.get("SUDO_UID") or os.getuid())
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "?"
    _, event = AuditLog.reset(p.audit, f"uid {uid} ({name})", reason,
                              db_head=file_anchor(db) if p.database.exists() else None,
                              anchor=lambda seq, digest: file_write_anchor(db, seq, digest))
    kept = event["before"]["kept_as"]
    out.print(f"audit log reset: a new chain starts at {p.audit}"
              + (f"; the old one is kept as {kept}" if kept else ""), highlight=False)
    for problem in event["before"]["problems"]:
        out.print(f"  it had: {problem}", highlight=False, markup=False)
