"""Operator access tokens: short-lived JWTs signed with Ed25519 (`alg: EdDSA`).

Only EdDSA is accepted (so `alg: none` and algorithm-confusion tokens are refused), with the
issuer, audience, expiry and session id all required. The ingestion service holds the
private key and issues tokens at login; every service verifies with the public key, then
checks the session in Redis, so a revoked session stops working at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigurationError, DriftlineError
from ..settings import DEV_JWT_SEED, AuthSettings
from .permissions import ROLES

__all__ = ["AccessClaims", "InvalidToken", "TokenService"]

ALGORITHM = "EdDSA"


class InvalidToken(DriftlineError):
    code = "invalid_token"


@dataclass(frozen=True)
class AccessClaims:
    tenant_id: str
    user_id: str
    username: str
    role: str
    session_id: str
    expires_at: int


class TokenService:
    def __init__(self, settings: AuthSettings) -> None:
        self._s = settings
        self._private: Ed25519PrivateKey | None = None
        if settings.jwt_private_key_file:
            key = serialization.load_pem_private_key(
                Path(settings.jwt_private_key_file).read_bytes(), password=None
            )
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigurationError("DRIFTLINE_AUTH__JWT_PRIVATE_KEY_FILE must be Ed25519")
            self._private = key
        elif not settings.jwt_public_key_file:
            self._private = Ed25519PrivateKey.from_private_bytes(DEV_JWT_SEED)
        if settings.jwt_public_key_file:
            pub = serialization.load_pem_public_key(Path(settings.jwt_public_key_file).read_bytes())
            if not isinstance(pub, Ed25519PublicKey):
                raise ConfigurationError("DRIFTLINE_AUTH__JWT_PUBLIC_KEY_FILE must be Ed25519")
            self._public = pub
        else:
            assert self._private is not None
            self._public = self._private.public_key()

    @property
    def can_issue(self) -> bool:
        return self._private is not None

    def issue(
        self,
        *,
        tenant_id: str,
        user_id: str,
        username: str,
        role: str,
        session_id: str,
        ttl_s: int | None = None,
    ) -> tuple[str, int]:
        """Returns (token, expiry as Unix seconds)."""
        if self._private is None:
            raise ConfigurationError("this service has no JWT private key; it cannot issue")
        now = int(time.time())
        exp = now + (self._s.access_ttl_s if ttl_s is None else ttl_s)
        claims = {
            "iss": self._s.jwt_issuer,
            "aud": self._s.jwt_audience,
            "sub": user_id,
            "tid": tenant_id,
            "name": username,
            "role": role,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private, algorithm=ALGORITHM), exp

    def verify(self, token: str) -> AccessClaims:
        try:
            c = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=self._s.jwt_audience,
                issuer=self._s.jwt_issuer,
                leeway=self._s.jwt_leeway_s,
                options={"require": ["exp", "iat", "sub", "tid", "sid", "role", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise InvalidToken("the access token has expired") from e
        except jwt.InvalidTokenError as e:
            raise InvalidToken(f"the access token is not valid: {e}") from e
        if c["role"] not in ROLES:
            raise InvalidToken(f"unknown role {c['role']!r}")
        return AccessClaims(
            tenant_id=str(c["tid"]),
            user_id=str(c["sub"]),
            username=str(c.get("name", c["sub"])),
            role=str(c["role"]),
            session_id=str(c["sid"]),
            expires_at=int(c["exp"]),
        )
