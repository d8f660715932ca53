"""``python -m trustfence.demo`` (``sudo make demo``): the whole path on a throwaway state directory.

A fake GitHub API runs in a namespace of its own; a daemon with its own tag and state starts; the bundled
agent runs under ``tf run``; ``tf logs`` shows what happened. Everything is removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from trustfence.demo.outside import Outside

TF = [sys.executable, "-m", "trustfence.agent.cli"]


def main() -> int:
    if os.geteuid() != 0:
        print("the demo creates namespaces and firewall rules: run it as root (sudo make demo)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tf-demo-"))
    os.chmod(tmp, 0o711)
    tag = "d" + secrets.token_hex(2)
    outside = Outside(f"{tag}o", subnet_octet=secrets.randbelow(250) + 1)
    env = {**os.environ, "TF_HOME": str(tmp / "state")}
    env.pop("SUDO_UID", None)

    def tf(*args: str, show: bool = True, stdin: str | None = None) -> int:
        if show:
            print(f"\n$ tf {shlex.join(args)}" + (" < token.txt" if stdin else ""), flush=True)
        return subprocess.run([*TF, *args], env=env, input=stdin, text=True, timeout=300, cwd=tmp).returncode

    try:
        print("Starting a fake api.github.com (real HTTPS, its own test CA) in namespace", outside.name)
        outside.start()
        env |= {"TF_UPSTREAM_RESOLVE": outside.resolve_spec(), "TF_UPSTREAM_CA": str(outside.ca)}
        tf("init")
        _set_tag(tmp / "state" / "config.toml", tag)
        token = "ghp_demoRealKey" + secrets.token_hex(12)  # stands in for your real GitHub token
        tf("connector", "add", "github", "--token-stdin", stdin=token + "\n")
        tf("permissions", "set", "--gateway", "DemoBot", "--connector", "github", "--action", "github.pr.*",
           "--decision", "allow")
        tf("permissions", "set", "--gateway", "DemoBot", "--connector", "github", "--action", "github.pr.merge",
           "--decision", "deny")
        agent = tmp / "agent.py"
        shutil.copy(Path(__file__).with_name("agent.py"), agent)
        os.chmod(agent, 0o644)
        # Run from its directory: the sandbox's /tmp is its own, and what it shows of the host's is the working
        # directory (the state directory inside it stays hidden).
        rc = tf("run", "--name", "DemoBot", "--", "/usr/bin/python3", agent.name)
        tf("logs")
        got = outside.received()
        print(f"\nThe upstream received {len(got)} request(s): " + ", ".join(f"{r['method']} {r['path']}" for r in got))
        with_key = sum(r["headers"].get("authorization") == f"Bearer {token}" for r in got)
        print(f"{with_key} of them carried the real key from the vault, injected by the enforcer after the allow.")
        if with_key != len(got):
            rc = rc or 1
        return rc
    finally:
        tf("daemon", "stop", show=False)
        outside.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _set_tag(config: Path, tag: str) -> None:
    text = config.read_text()
    lines = [f'tag = "{tag}"' if ln.startswith("tag = ") else ln for ln in text.splitlines()]
    config.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
