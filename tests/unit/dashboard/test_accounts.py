"""Accounts, sessions and the login limit as plain values: argon2 hashes, the setup token used once, roles."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from trustfence.dashboard.accounts import AccountError, Accounts, at_least
from trustfence.dashboard.guard import LoginLimiter, Refused, Sessions

PW = "correct horse battery"


def test_roles_inherit_from_the_lower_ones() -> None:
    assert at_least("owner", "viewer") and at_least("admin", "member") and at_least("member", "member")
    assert not at_least("member", "admin") and not at_least("viewer", "member") and not at_least("root", "viewer")


def test_the_setup_token_makes_an_owner_once_and_only_its_digest_is_stored(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    token, _ = a.new_setup_token()
    assert token not in (tmp_path / "u.json").read_text()
    with pytest.raises(AccountError, match="wrong or was already used"):
        a.redeem_setup(token[:-1] + ("y" if token.endswith("x") else "x"), "olive", PW)  # never the token itself
    owner = a.redeem_setup(token, "olive", PW)
    assert owner.role == "owner"
    with pytest.raises(AccountError, match="already used"):
        a.redeem_setup(token, "mallory", PW)
    saved = Accounts(tmp_path / "u.json")  # what the next daemon start reads
    assert list(saved.users) == ["olive"] and saved.setup is None
    assert os.stat(tmp_path / "u.json").st_mode & 0o777 == 0o600


def test_an_expired_setup_token_is_refused(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    token, _ = a.new_setup_token()
    assert a.setup is not None
    a.setup["expires"] = time.time() - 1
    with pytest.raises(AccountError, match="expired"):
        a.redeem_setup(token, "olive", PW)
    assert a.users == {}


def test_passwords_are_argon2id_and_checked(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("vera", PW)
    stored = json.loads((tmp_path / "u.json").read_text())["users"][0]
    assert stored["role"] == "viewer" and stored["hash"].startswith("$argon2id$") and PW not in json.dumps(stored)
    assert a.check("vera", PW) is not None
    assert a.check("vera", PW + "!") is None and a.check("nobody", PW) is None


@pytest.mark.parametrize(("name", "password", "role", "why"), [
    ("Vera", PW, "viewer", "user name"), ("vera", "short", "viewer", "12 characters"),
    ("vera", PW, "root", "role must be one of"),
])
def test_bad_users_are_refused_with_the_reason(tmp_path: Path, name: str, password: str, role: str, why: str) -> None:
    a = Accounts(tmp_path / "u.json")
    with pytest.raises(AccountError, match=why):
        a.add(name, password, role)
    assert a.users == {} and not (tmp_path / "u.json").exists()


def test_the_last_owner_keeps_the_role(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.redeem_setup(a.new_setup_token()[0], "olive", PW)
    with pytest.raises(AccountError, match="last owner"):
        a.set_role("olive", "viewer")
    a.add("otto", PW, "owner")
    assert a.set_role("olive", "viewer") == "owner"


def test_sessions_carry_the_csrf_token_and_the_current_role(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("mia", PW, "member")
    s = Sessions(a)
    sid = s.start(a.users["mia"])
    p = s.principal(sid, None)
    assert p is not None and p.csrf
    p.check_csrf(p.csrf)
    with pytest.raises(Refused, match="CSRF"):
        p.check_csrf("stale")
    with pytest.raises(Refused, match="owner"):
        p.need("owner", "the kill switch")
    a.set_role("mia", "viewer")  # a demotion holds at once, for a session already open
    p = s.principal(sid, None)
    assert p is not None
    with pytest.raises(Refused):
        p.need("member", "answering an approval")
    s.end(sid)
    assert s.principal(sid, None) is None and s.principal("forged", None) is None


def test_an_api_token_acts_as_its_user_and_needs_no_csrf(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("ci", PW, "admin")
    token = a.new_token("ci", "pipeline")
    assert token not in (tmp_path / "u.json").read_text()
    p = Sessions(a).principal(None, token)
    assert p is not None and p.user.name == "ci" and p.via == "token"
    p.check_csrf(None)
    assert Sessions(a).principal(None, token + "x") is None


def test_failed_sign_ins_lock_that_name_for_the_window() -> None:
    lim = LoginLimiter(per_name=3, overall=5, window=60)
    for _ in range(3):
        assert lim.locked("mia") == 0
        lim.failed("mia")
    assert 0 < lim.locked("mia") <= 60
    assert lim.locked("vera") == 0
    lim.failed("x")
    lim.failed("y")  # five failures in all: everyone waits
    assert lim.locked("vera") > 0


@pytest.mark.parametrize("text", ["{not json", '{"users": [{"name": "x"}]}', '{"users": 5}'])
def test_an_unreadable_accounts_file_is_an_error_not_an_empty_list(tmp_path: Path, text: str) -> None:
    (tmp_path / "u.json").write_text(text)
    with pytest.raises((ValueError, KeyError, TypeError)):
        Accounts(tmp_path / "u.json")  # the daemon then serves no dashboard, and says why


def test_a_slack_member_id_maps_to_one_user_and_survives_a_restart(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("mia", PW, "member")
    a.add("vera", PW, "viewer")
    assert a.set_slack("mia", "U0MIA") == ""
    with pytest.raises(AccountError, match="already answers as mia"):
        a.set_slack("vera", "U0MIA")
    with pytest.raises(AccountError, match="looks like U012AB3CD"):
        a.set_slack("vera", "not-an-id")
    with pytest.raises(AccountError, match="no user"):
        a.set_slack("nobody", "U0X")
    saved = Accounts(tmp_path / "u.json")
    assert saved.by_slack("U0MIA") is not None and saved.by_slack("U0MIA").name == "mia"  # type: ignore[union-attr]
    assert saved.by_slack("") is None and saved.by_slack("U0VERA") is None
    assert a.set_slack("mia", "") == "U0MIA" and a.by_slack("U0MIA") is None


def test_deleting_a_user_drops_its_tokens_and_the_last_owner_stays(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("olive", PW, "owner")
    a.add("mia", PW, "member")
    token = a.new_token("mia", "ci")
    assert a.by_token(token) is not None
    a.remove("mia")
    assert a.by_token(token) is None and "mia" not in Accounts(tmp_path / "u.json").users
    with pytest.raises(AccountError, match="last owner"):
        a.remove("olive")
    with pytest.raises(AccountError, match="no user"):
        a.remove("mia")


def test_a_revoked_token_no_longer_signs_in_and_listing_never_shows_it(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("olive", PW, "owner")
    token = a.new_token("olive", "ci")
    (listed,) = a.token_list()
    assert token not in json.dumps(listed) and listed["label"] == "ci" and len(listed["id"]) == 16
    with pytest.raises(AccountError, match="no API token"):
        a.revoke_token(listed["id"][:8])
    assert a.revoke_token(listed["id"])["user"] == "olive"
    assert a.by_token(token) is None and a.token_list() == []


def test_a_deleted_users_session_does_not_come_back_with_a_new_user_of_that_name(tmp_path: Path) -> None:
    a = Accounts(tmp_path / "u.json")
    a.add("olive", PW, "owner")
    a.add("bob", PW, "admin")
    sessions = Sessions(a)
    sid = sessions.start(a.users["bob"])
    p = sessions.principal(sid, None)
    assert p is not None and p.user.role == "admin"
    a.remove("bob")
    assert sessions.principal(sid, None) is None
    a.add("bob", "another long password", "viewer")  # someone else, later, under the same name
    assert sessions.principal(sid, None) is None
    assert sessions.principal(sessions.start(a.users["bob"]), None) is not None
