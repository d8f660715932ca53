"""Decision tokens: what an allowed advisory action carries to ``POST /api/v1/actions/{id}/execute``.

A token is a JWT signed with the daemon's Ed25519 key (EdDSA, by PyJWT over ``cryptography``), generated once
into ``<state dir>/advisory-token.key`` (0600). It is bound to the action request's id (``rid``), the SHA-256 of
the action spec's canonical JSON (``dig``) and the agent (``sub``), and lives ``TTL`` seconds. ``check``
refuses anything else with the status and reason the API answers: a forged or expired token is 401, a token
of another agent 401, one for another action 409. That a token is spent once is the action request's record,
not the token's: see ``requests``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustfence.agent.advisory.errors import ApiError
from trustfence.agent.files import create_private

__all__ = ["AUDIENCE", "TTL", "Claims", "Signer", "TokenRefused"]

TTL = 300
"""Seconds a decision token stays valid after it is issued."""

AUDIENCE = "trustfence-execute"
ISSUER = "trustfence"


class TokenRefused(ApiError):
    """A token that does not let its bearer execute this action: ``status`` (401 or 409) and the reason."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token says: the action request, the spec's digest, the agent, and when it stops being valid."""

    request_id: str
    digest: str
    agent: str
    expires: int


class Signer:
    """Issues and checks decision tokens with the key in ``path`` (made on first use, then only read)."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            create_private(path, pem)  # of two racing creators, one wins and both read its key
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        self._key = key
        self._public = key.public_key()

    def issue(self, claims: Claims, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": claims.agent, "rid": claims.request_id,
                                   "dig": claims.digest, "iat": issued, "exp": claims.expires}
        return jwt.encode(payload, self._key, algorithm="EdDSA")

    def check(self, token: str, *, request_id: str, digest: str, agent: str) -> Claims:
        """The token's claims if it lets ``agent`` execute request ``request_id`` with spec ``digest``."""
        try:
            data = jwt.decode(token, self._public, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER,
                              options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            raise TokenRefused(401, "the decision token expired; ask again (POST /api/v1/actions)") from None
        except jwt.InvalidTokenError as e:
            raise TokenRefused(401, f"the decision token is not valid: {e}") from None
        claims = Claims(str(data.get("rid", "")), str(data.get("dig", "")), str(data["sub"]), int(data["exp"]))
        if claims.agent != agent:
            raise TokenRefused(401, "the decision token was issued to another agent")
        if claims.request_id != request_id:
            raise TokenRefused(409, f"the decision token is for action request {claims.request_id}, "
                                    f"not {request_id}")
        if claims.digest != digest:
            raise TokenRefused(409, "the decision token is for another action than the one requested")
        return claims
