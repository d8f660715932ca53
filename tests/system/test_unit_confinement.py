"""The unit's capability bounding set is enough for the daemon's whole work, and nothing in it is spare: a
daemon confined to exactly ``CAPABILITIES`` (and no_new_privs) builds a sandbox, enforces, records and tears
down, while one without a capability of the set cannot."""

from __future__ import annotations

import glob

import pytest

from tests.system.conftest import Host, running_host
from trustfence.agent.unit import CAPABILITIES

pytestmark = pytest.mark.system

PULLS = "https://api.github.com/repos/acme/widgets/pulls"


def _confine(caps: list[str]) -> tuple[str, ...]:
    """The bounding set ``caps`` and no_new_privs, as the unit gives them."""
    keep = ",".join(f"+{c.removeprefix('CAP_').lower()}" for c in caps)
    return ("setpriv", f"--bounding-set=-all,{keep}", "--inh-caps=-all", "--no-new-privs", "--")


def test_the_bounding_set_is_enough_for_a_sandbox() -> None:
    def confine(h: Host) -> None:
        h.daemon_prefix = _confine([c for c, _ in CAPABILITIES])

    with running_host(before_start=confine) as h:
        r = h.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", PULLS, "-d", "{}")
        assert r.stdout == "201", r.stdout + r.stderr
        no = h.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                   "https://api.github.com/repos/acme/widgets")
        assert no.stdout == "403"
        assert [(e["method"], e["path"]) for e in h.outside.received()] == [("POST", "/repos/acme/widgets/pulls")]
        rows = [r for r in h.logs() if r["method"] != "CONNECT"]
        assert [(r["action"], r["decision"]) for r in rows] == [("github.pr.create", "allowed"),
                                                                ("github.repo.delete", "denied")]
        assert rows[0]["comm"] == "curl" and rows[0]["pid"]  # the tracepoint attached: the process is named

        # what an agent leaves in its home (a private directory, an unreadable file) goes with the sandbox: its
        # /tmp (and the home in it) is a tmpfs of its own mount namespace, nothing of it is on the host
        mark = f"tfleft-{h.tag}"
        left = h.run("sh", "-c", f'mkdir -m 700 "$HOME/{mark}" && touch "$HOME/{mark}/f" && '
                     f'chmod 000 "$HOME/{mark}/f" "$HOME/{mark}"')
        assert left.returncode == 0, left.stderr
        assert glob.glob(f"/tmp/**/{mark}", recursive=True) == []
