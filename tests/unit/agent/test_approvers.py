"""Who may answer a held request: never the agent's own uid; root; a member of the approver role; no role: root."""

from __future__ import annotations

import pwd

from trustfence.agent.ops.approvals import refusal
from trustfence.proxy.holds import Approval

NOBODY = pwd.getpwnam("nobody").pw_uid
ROOT_GROUP = "root"  # root's primary group exists everywhere; nobody is not in it


def _approval(role: str = "", agent_uid: int = 4242) -> Approval:
    return Approval("a1", "Bot", "github", "github.pr.merge", "PUT", "https://x/merge", "d", "r", "rule", "high",
                    0.0, 60.0, role, agent_uid)


def test_the_agents_uid_never_answers_whatever_else_holds() -> None:
    a = _approval(role=ROOT_GROUP, agent_uid=NOBODY)
    assert "can never answer it" in refusal(NOBODY, a, always=False)


def test_root_answers_and_writes_permissions() -> None:
    assert refusal(0, _approval(), always=False) == "" and refusal(0, _approval(), always=True) == ""


def test_no_role_means_root_only() -> None:
    assert "root only" in refusal(NOBODY, _approval(), always=False)


def test_non_members_do_not_answer_and_always_stays_roots() -> None:
    """(Members answering is shown end to end, with real users, in tests/system/test_control_plane.py.)"""
    a = _approval(role=ROOT_GROUP)
    assert "member of group root" in refusal(NOBODY, a, always=False)
    assert "member of group" in refusal(NOBODY, _approval(role="no-such-group-tf"), always=False)
    assert "root only" in refusal(NOBODY, a, always=True)
