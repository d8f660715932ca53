"""Decision tokens: bound to the request, the spec's digest and the agent; short-lived; the key stays put."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustfence.agent.advisory.tokens import TTL, Claims, Signer, TokenRefused


def _token(signer: Signer, rid: str = "r1", digest: str = "d1", agent: str = "bot", ttl: int = TTL) -> str:
    return signer.issue(Claims(rid, digest, agent, int(time.time()) + ttl))


def test_a_token_checks_out_for_its_own_request_digest_and_agent(tmp_path: Path) -> None:
    s = Signer(tmp_path / "k")
    claims = s.check(_token(s), request_id="r1", digest="d1", agent="bot")
    assert (claims.request_id, claims.digest, claims.agent) == ("r1", "d1", "bot")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@pytest.mark.parametrize(("kw", "status", "words"), [
    ({"request_id": "r2"}, 409, "for action request r1"),
    ({"digest": "other"}, 409, "another action"),
    ({"agent": "mallory"}, 401, "another agent"),
])
def test_a_token_for_anything_else_is_refused(tmp_path: Path, kw: dict[str, str], status: int, words: str) -> None:
    s = Signer(tmp_path / "k")
    with pytest.raises(TokenRefused) as e:
        s.check(_token(s), **{"request_id": "r1", "digest": "d1", "agent": "bot", **kw})
    assert e.value.status == status and words in str(e.value)


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    s = Signer(tmp_path / "k")
    with pytest.raises(TokenRefused, match="expired") as e:
        s.check(_token(s, ttl=-5), request_id="r1", digest="d1", agent="bot")
    assert e.value.status == 401


def test_a_token_signed_by_another_key_or_with_none_is_refused(tmp_path: Path) -> None:
    s = Signer(tmp_path / "k")
    payload = {"iss": "trustfence", "aud": "trustfence-execute", "sub": "bot", "rid": "r1", "dig": "d1",
               "iat": int(time.time()), "exp": int(time.time()) + 60}
    forged = jwt.encode(payload, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    unsigned = jwt.encode(payload, None, algorithm="none")
    tampered = _token(s)[:-4] + ("AAAA" if not _token(s).endswith("AAAA") else "BBBB")
    for token in (forged, unsigned, tampered, "not a token"):
        with pytest.raises(TokenRefused) as e:
            s.check(token, request_id="r1", digest="d1", agent="bot")
        assert e.value.status == 401


def test_the_key_is_made_once_and_reused(tmp_path: Path) -> None:
    token = _token(Signer(tmp_path / "k"))
    Signer(tmp_path / "k").check(token, request_id="r1", digest="d1", agent="bot")  # a restarted daemon's key
