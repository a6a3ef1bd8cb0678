"""The enforced-MFA policy for local accounts (`DRIFTLINE_MFA__REQUIRED_ROLES`).

A password login of a user whose role requires MFA and who has no TOTP yet gets no session:
it answers 403 with a single-use enrolment token in the `X-MFA-Enrollment-Token` header,
good for `MfaPolicy.enrollment_ttl_s`. With it the user enrols
(`POST /v1/auth/mfa/required/enroll`, then `/confirm` with a code, which gives the backup
codes), then logs in with password and code. Nothing else can be done with the token.
Single sign-on logins are checked against the same roles in oidc.py (the IdP's amr/acr).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from driftline_core.audit import AuditEmitter
from driftline_core.auth import Principal
from driftline_core.events import Actor, Resource

from .identity import Identity, LoginRequest
from .responses import MfaEnabled, MfaEnrollment
from .sso_settings import MfaPolicy

__all__ = ["ENROLLMENT_HEADER", "RequiredMfa", "required_mfa_router"]

ENROLLMENT_HEADER = "X-MFA-Enrollment-Token"


class EnrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enrollment_token: str = Field(min_length=1, max_length=128)


class ConfirmIn(EnrollIn):
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


def _h(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RequiredMfa:
    PREFIX = "dl:mfa:enrol:"

    def __init__(
        self, policy: MfaPolicy, identity: Identity, redis: aioredis.Redis, audit: AuditEmitter
    ) -> None:
        self.policy = policy
        self._identity = identity
        self._r = redis
        self._audit = audit

    async def check(self, req: LoginRequest, row: asyncpg.Record) -> None:
        """Called by a password login that passed, for a user without TOTP: refuses it
        (403 with an enrolment token) when the user's role requires MFA."""
        if not self.policy.requires(row["role"]):
            return
        token = f"dle_{secrets.token_urlsafe(32)}"
        record = {
            "tenant_id": row["tenant_id"],
            "user_id": str(row["id"]),
            "username": row["username"],
            "role": row["role"],
        }
        await self._r.set(
            self.PREFIX + _h(token), json.dumps(record), ex=self.policy.enrollment_ttl_s
        )
        why = f"role {row['role']!r} requires multi-factor authentication"
        await self._audit.record(
            tenant_id=req.tenant_id,
            actor=Actor(type="user", id=f"user:{req.username}", ip=req.ip),
            action="auth.login",
            resource=Resource(type="user", id=req.username),
            outcome="denied",
            details={"reason": f"{why}; TOTP enrolment required"},
        )
        raise HTTPException(
            403,
            f"{why}: enrol TOTP first with the token in the {ENROLLMENT_HEADER} header "
            "(POST /v1/auth/mfa/required/enroll, then /v1/auth/mfa/required/confirm), "
            "then log in with a code",
            headers={ENROLLMENT_HEADER: token},
        )

    async def principal(self, token: str) -> Principal:
        raw = await self._r.get(self.PREFIX + _h(token))
        if raw is None:
            raise HTTPException(401, "the enrolment token is not valid (used or expired)")
        d: dict[str, Any] = json.loads(raw)
        return Principal(
            tenant_id=d["tenant_id"],
            key_id=d["user_id"],
            name=d["username"],
            scopes=frozenset(),
            kind="user",
            role=d["role"],
        )

    async def used(self, token: str) -> None:
        await self._r.delete(self.PREFIX + _h(token))


def required_mfa_router(required: RequiredMfa) -> APIRouter:
    r = APIRouter(prefix="/v1/auth/mfa/required", tags=["operators"])

    @r.post("/enroll", response_model=MfaEnrollment)
    async def enroll(body: EnrollIn) -> dict[str, Any]:
        """TOTP enrolment for a user whose role requires MFA (the login's token)."""
        who = await required.principal(body.enrollment_token)
        return await required._identity.enroll(who)

    @r.post("/confirm", response_model=MfaEnabled)
    async def confirm(body: ConfirmIn) -> dict[str, Any]:
        """Confirms the enrolment with a code: MFA is on, the backup codes are given, and
        the token is spent."""
        who = await required.principal(body.enrollment_token)
        done = await required._identity.confirm(who, body.code)
        await required.used(body.enrollment_token)
        return done

    return r
