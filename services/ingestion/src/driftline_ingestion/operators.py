"""`/v1/auth/*` for operators: users, login, refresh, MFA, sessions; and the tenant's key
lifecycle (data-key rotation, KEK re-wrap, erasure) for tenant admins and the platform admin.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from driftline_core.audit import AuditEmitter
from driftline_core.auth import Authenticator, Principal, declared_credentials
from driftline_core.crypto import DataKeyring
from driftline_core.events import Actor, Resource

from .identity import Identity, LoginRequest
from .responses import (
    DataKeyRotated,
    DataKeyVersion,
    Grant,
    KeysRewrapped,
    MfaEnabled,
    MfaEnrollment,
    PrincipalOut,
    SessionOut,
    SessionsRevoked,
    TenantErased,
    UserOut,
)
from .settings import IngestionOptions
from .strings import refuse_unstorable_request

__all__ = ["operators_router"]

TENANT = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Role = Literal["admin", "ml-engineer", "auditor", "viewer"]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
    password: str = Field(min_length=1, max_length=1024)
    role: Role


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    disabled: bool | None = None
    reset_mfa: bool = False
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(pattern=TENANT)
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, pattern=r"^\s*\d{6}\s*$")
    backup_code: str | None = Field(default=None, max_length=32)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class CodeIn(BaseModel):
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(description="the tenant id again, to confirm")
    reason: str = Field(min_length=1, max_length=2000)


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def operators_router(
    auth: Authenticator,
    identity: Identity,
    keyring: DataKeyring,
    audit: AuditEmitter,
    opts: IngestionOptions,
) -> APIRouter:
    r = APIRouter(
        prefix="/v1/auth",
        tags=["operators"],
        dependencies=[Depends(refuse_unstorable_request)],  # strings.py
    )
    admin, anyone = Depends(auth.require("admin")), Depends(auth.require("read"))
    sessions = identity.sessions

    # --- users ----------------------------------------------------------------------------

    @r.post("/users", status_code=201, response_model=UserOut)
    async def create_user(body: UserIn, who: Principal = admin) -> dict[str, Any]:
        return await identity.create_user(who, body.username, body.password, body.role)

    @r.get("/users", response_model=list[UserOut])
    async def list_users(who: Principal = admin) -> list[dict[str, Any]]:
        found = await identity.list_users(who.tenant_id)
        # a read of personal data (names, roles): compliance reports count these
        await audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action="user.list",
            resource=Resource(type="user", id="*"),
            details={"returned": len(found)},
        )
        return found

    @r.patch("/users/{user_id}", response_model=UserOut)
    async def update_user(user_id: str, body: UserPatch, who: Principal = admin) -> dict[str, Any]:
        return await identity.update_user(
            who,
            user_id,
            role=body.role,
            disabled=body.disabled,
            reset_mfa=body.reset_mfa,
            password=body.password,
        )

    # --- login, refresh, logout -----------------------------------------------------------

    @r.post("/login", response_model=Grant)
    async def login(body: LoginIn, request: Request) -> dict[str, Any]:
        return await identity.login(
            LoginRequest(
                tenant_id=body.tenant,
                username=body.username,
                password=body.password,
                totp=body.totp,
                backup_code=body.backup_code,
                ip=_ip(request),
                user_agent=request.headers.get("user-agent", ""),
            )
        )

    @r.post("/refresh", response_model=Grant)
    async def refresh(body: RefreshIn) -> dict[str, Any]:
        return await identity.refresh(body.refresh_token)

    @r.get("/me", response_model=PrincipalOut)
    async def me(who: Principal = anyone) -> dict[str, Any]:
        return {
            "tenant_id": who.tenant_id,
            "kind": who.kind,
            "id": who.key_id,
            "name": who.name,
            "role": who.role,
            "permissions": sorted(who.scopes),
            "session_id": who.session_id,
        }

    @r.post("/logout", status_code=204)
    async def logout(who: Principal = anyone) -> Response:
        if who.session_id:
            await sessions.revoke(who.tenant_id, who.session_id)
            await _session_audit(who, "session.revoke", who.session_id)
        return Response(status_code=204)

    # --- MFA ------------------------------------------------------------------------------

    @r.post("/mfa/enroll", response_model=MfaEnrollment)
    async def enroll(who: Principal = anyone) -> dict[str, Any]:
        return await identity.enroll(who)

    @r.post("/mfa/confirm", response_model=MfaEnabled)
    async def confirm(body: CodeIn, who: Principal = anyone) -> dict[str, Any]:
        return await identity.confirm(who, body.code)

    # --- sessions -------------------------------------------------------------------------

    def _target_user(who: Principal, user_id: str | None) -> str | None:
        """Operators see their own sessions; admins any user's (or all, with no user). An
        API key is no operator and has no sessions: without the admin scope it sees none."""
        if who.kind != "user" and not who.can("admin"):
            raise HTTPException(
                403, "sessions are operators': an API key needs the admin scope for them"
            )
        if user_id is not None and user_id != who.key_id and not who.can("admin"):
            raise HTTPException(403, "only an admin sees other users' sessions")
        if user_id is None and who.kind == "user":
            return who.key_id
        return user_id

    @r.get("/sessions", response_model=list[SessionOut])
    async def list_sessions(
        user_id: str | None = Query(default=None), who: Principal = anyone
    ) -> list[dict[str, Any]]:
        target = _target_user(who, user_id)
        found = await sessions.list(who.tenant_id, target)
        # a read of personal data (addresses, devices): compliance reports count these
        await _session_audit(who, "session.list", target or "*", returned=len(found))
        return [{**s.public(), "current": s.session_id == who.session_id} for s in found]

    @r.delete("/sessions/{session_id}", status_code=204)
    async def revoke_session(session_id: str, who: Principal = anyone) -> Response:
        s = await sessions.get(session_id)
        mine = s is not None and s.tenant_id == who.tenant_id and s.user_id == who.key_id
        if s is None or s.tenant_id != who.tenant_id or not (mine or who.can("admin")):
            raise HTTPException(404, f"no session {session_id!r}")
        await sessions.revoke(who.tenant_id, session_id)
        await _session_audit(who, "session.revoke", session_id)
        return Response(status_code=204)

    @r.delete("/sessions", response_model=SessionsRevoked)
    async def revoke_all(
        user_id: str | None = Query(default=None), who: Principal = anyone
    ) -> dict[str, int]:
        target = _target_user(who, user_id)
        if target is None:
            raise HTTPException(400, "name the user (user_id) whose sessions to revoke")
        n = await sessions.revoke_user(who.tenant_id, target)
        await _session_audit(who, "session.revoke_all", target, revoked=n)
        return {"revoked": n}

    async def _session_audit(who: Principal, action: str, rid: str, **details: Any) -> None:
        await audit.record(
            tenant_id=who.tenant_id,
            actor=who.actor(),
            action=action,
            resource=Resource(type="session", id=rid),
            details=details,
        )

    # --- tenant data keys and erasure -----------------------------------------------------

    async def tenant_admin(
        tenant_id: str,
        request: Request,
        x_admin_token: str = Header(default=""),
        _creds: None = Depends(declared_credentials),  # or the tenant admin's credentials
    ) -> Actor:
        """The platform admin (X-Admin-Token) for any tenant, or the tenant's own admin."""
        if x_admin_token:
            expected = opts.admin_token.get_secret_value()
            if hmac.compare_digest(x_admin_token.encode(), expected.encode()):
                return Actor(type="system", id="platform-admin", ip=_ip(request))
            raise HTTPException(401, "the platform admin token is not valid")
        who = await auth.require("admin")(request)
        if who.tenant_id != tenant_id:
            raise HTTPException(404, f"no tenant {tenant_id!r}")
        return who.actor(_ip(request))

    def platform(request: Request, x_admin_token: str = Header(default="")) -> Actor:
        expected = opts.admin_token.get_secret_value()
        if not hmac.compare_digest(x_admin_token.encode(), expected.encode()):
            raise HTTPException(401, "the platform admin token (X-Admin-Token) is required")
        return Actor(type="system", id="platform-admin", ip=_ip(request))

    as_tenant_admin, as_platform = Depends(tenant_admin), Depends(platform)

    # the store's columns as they are (rewrapped_at, destroyed_at: PostgreSQL's store only)
    @r.get(
        "/tenants/{tenant_id}/data-keys",
        response_model=list[DataKeyVersion],
        response_model_exclude_unset=True,
    )
    async def data_keys(tenant_id: str, actor: Actor = as_tenant_admin) -> list[dict[str, Any]]:
        return await keyring.versions(tenant_id)

    @r.post("/tenants/{tenant_id}/data-keys/rotate", response_model=DataKeyRotated)
    async def rotate(tenant_id: str, actor: Actor = as_tenant_admin) -> dict[str, Any]:
        return await identity.rotate(tenant_id, actor)

    @r.post("/tenants/{tenant_id}/erase", response_model=TenantErased)
    async def erase(
        tenant_id: str, body: EraseIn, actor: Actor = as_tenant_admin
    ) -> dict[str, Any]:
        if body.confirm != tenant_id:
            raise HTTPException(422, "confirm must repeat the tenant id")
        return await identity.erase(tenant_id, actor, body.reason)

    @r.post("/data-keys/rewrap", response_model=KeysRewrapped)
    async def rewrap(actor: Actor = as_platform) -> dict[str, Any]:
        n = await keyring.rewrap()
        await audit.record(
            tenant_id="platform",
            actor=actor,
            action="data_key.rewrap",
            resource=Resource(type="kek", id="current"),
            details={"rewrapped": n},
        )
        return {"rewrapped": n}

    return r
