"""The ``tf`` command's entry point, with a fast path for ``tf run``.

``tf run`` starts every agent (a CI pipeline runs it per step), so its start-up is part of the product: in its
plain form (``tf run --name NAME [--user USER] [--nftables-only] -- CMD ...``) with the daemon up, it talks to
the daemon directly instead of loading the full CLI, whose option parsing alone imports pydantic (~170 ms).
Everything else (help, any other spelling, starting the daemon, every other command) is the typer CLI in
``cli.py``, with the same messages and exit codes.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs ~5 ms of start-up; annotations are never evaluated here
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

__all__ = ["main", "plain_run"]


def plain_run(argv: Sequence[str]) -> tuple[str, str | None, bool, list[str]] | None:
    """(name, user, nftables_only, cmd) when ``argv`` is the plain form of ``run``, else None."""
    if not argv or argv[0] != "run" or "--" not in argv:
        return None
    split = list(argv).index("--")
    opts, cmd = list(argv[1:split]), list(argv[split + 1:])
    name: str | None = None
    user: str | None = None
    nftables_only = False
    it = iter(opts)
    for a in it:
        if a in ("--name", "--user"):
            value = next(it, None)
            if value is None or value.startswith("-"):
                return None
            name, user = (value, user) if a == "--name" else (name, value)
        elif a.startswith(("--name=", "--user=")):
            key, _, value = a.partition("=")
            name, user = (value, user) if key == "--name" else (name, value)
        elif a == "--nftables-only":
            nftables_only = True
        else:
            return None
    if not name or not cmd or user == "":
        return None
    return name, user, nftables_only, cmd


def _fail(message: str, code: int) -> NoReturn:
    print(f"tf: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's shutdown, which frees every module one by one (~15 ms): the agent has
    exited and the sandbox is gone, and only the standard streams could hold anything not yet written."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _fast_run(name: str, user: str | None, nftables_only: bool, cmd: list[str]) -> int | None:
    from trustfence.agent.ipc import Client, DaemonError, DaemonUnavailable
    from trustfence.agent.paths import paths
    from trustfence.agent.runner import RunError, resolve_user, run_agent

    try:
        client = Client(paths().socket)
    except DaemonUnavailable:
        return None  # the full CLI starts the daemon, and says so
    try:
        with client:
            agent = resolve_user(user, os.environ, str(client.call("ping")["default_user"]))
            return run_agent(client, name, agent, cmd, nftables_only)
    except DaemonError as e:
        _fail(str(e), e.code)
    except RunError as e:
        _fail(str(e), e.code)
    except KeyboardInterrupt:
        _fail("aborted", 130)


def main() -> None:
    plan = plain_run(sys.argv[1:])
    if plan is not None and os.geteuid() == 0:
        code = _fast_run(*plan)
        if code is not None:
            _exit_now(code)
    from trustfence.agent.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
