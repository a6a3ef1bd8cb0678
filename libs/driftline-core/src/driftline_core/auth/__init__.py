"""The one authorisation dependency every service's API uses.

`Depends(auth.require("write"))` gives the caller's `Principal` or refuses:
- producers and automation send an API key (`dlk_<prefix>_<secret>`, issued by the ingestion
  service; other services verify it read-only);
- operators send an access token (EdDSA JWT from `/v1/auth/login`), whose session must still
  exist in Redis;
- the permission is checked against the key's scopes or the operator's role;
- every refusal (401 or 403) is audited with the reason.

Handlers scope every query by `principal.tenant_id`; another tenant's resource is answered
exactly like one that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..audit import AuditEmitter
from ..errors import DriftlineError
from ..events import Actor, Resource
from ..settings import AuthSettings
from .apikeys import ApiKeys, Principal
from .permissions import PERMISSIONS, ROLES, SCOPES, role_permissions
from .sessions import Session, Sessions
from .tokens import AccessClaims, InvalidToken, TokenService

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "SCOPES",
    "AccessClaims",
    "ApiKeys",
    "Authenticator",
    "InvalidToken",
    "Principal",
    "Session",
    "Sessions",
    "TokenService",
    "declared_admin_token",
    "declared_credentials",
    "operator_authenticator",
]

log = logging.getLogger(__name__)


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="an API key (dlk_...) or an operator's access token from /v1/auth/login",
)
_API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKey",
    description="an API key (dlk_...), instead of the Authorization header",
)


_BEARER_SECURITY, _API_KEY_SECURITY = Security(_BEARER), Security(_API_KEY)


def declared_credentials(
    _bearer: HTTPAuthorizationCredentials | None = _BEARER_SECURITY,
    _api_key: str | None = _API_KEY_SECURITY,
) -> None:
    """Declares the two ways to send credentials in the OpenAPI document (securitySchemes
    `bearer` and `apiKey`, either one per route); `bearer(request)` reads them."""


_ADMIN_TOKEN = APIKeyHeader(
    name="X-Admin-Token",
    auto_error=False,
    scheme_name="adminToken",
    description="the platform admin token (tenant creation, data-key rewrap, any tenant's reports)",
)


_ADMIN_TOKEN_SECURITY = Security(_ADMIN_TOKEN)


def declared_admin_token(_token: str | None = _ADMIN_TOKEN_SECURITY) -> None:
    """Declares the platform admin token (securityScheme `adminToken`) on a route that takes
    it; the route reads the header itself."""


_DECLARED = Depends(declared_credentials)


def bearer(request: Request) -> str:
    token = request.headers.get("x-api-key") or ""
    authz = request.headers.get("authorization", "")
    if not token and authz.lower().startswith("bearer "):
        token = authz[7:].strip()
    if not token and request.url.path.endswith("/cloudevents"):
        token = request.query_params.get("api_key", "")
    return token


class Authenticator:
    """API keys always; operator tokens when `tokens` and `sessions` are given."""

    def __init__(
        self,
        keys: ApiKeys,
        audit: AuditEmitter,
        tokens: TokenService | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.keys = keys
        self.audit = audit
        self.tokens = tokens
        self.sessions = sessions

    def require(self, permission: str) -> Callable[[Request], Awaitable[Principal]]:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")

        async def dependency(request: Request, _: None = _DECLARED) -> Principal:
            who = await self.authenticate(request)
            if not who.can(permission):
                await self._denied(request, who, f"lacks the {permission} permission")
                what = f"role {who.role}" if who.kind == "user" else "this API key"
                raise HTTPException(403, f"{what} does not grant the {permission!r} permission")
            request.state.principal = who
            return who

        return dependency

    async def authenticate(self, request: Request) -> Principal:
        token = bearer(request)
        if not token:
            await self._refuse(request, "no credentials", "an API key or access token is required")
        if token.startswith("dlk_"):
            who = await self.keys.verify(token)
            if who is None:
                await self._refuse(
                    request, "unknown or revoked API key", "the API key is not valid"
                )
            return who
        if self.tokens is None or self.sessions is None:
            await self._refuse(
                request, "operator token at a key-only endpoint", "use an API key here"
            )
        try:
            claims = self.tokens.verify(token)
        except InvalidToken as e:
            await self._refuse(request, str(e), str(e))
        if not await self.sessions.active(claims.session_id):
            await self._refuse(
                request, "session revoked or expired", "the session was revoked or has expired"
            )
        return Principal(
            tenant_id=claims.tenant_id,
            key_id=claims.user_id,
            name=claims.username,
            scopes=role_permissions(claims.role),
            kind="user",
            role=claims.role,
            session_id=claims.session_id,
        )

    async def _refuse(self, request: Request, why: str, message: str) -> NoReturn:
        await self._denied(request, None, why)
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})

    async def _denied(self, request: Request, who: Principal | None, why: str) -> None:
        ip = request.client.host if request.client else None
        actor = who.actor(ip) if who else Actor(type="api_key", id="anonymous", ip=ip)
        try:
            await self.audit.record(
                tenant_id=who.tenant_id if who else "unknown",
                actor=actor,
                action=f"http.{request.method.lower()}",
                outcome="denied",
                resource=Resource(type="endpoint", id=request.url.path),
                details={"reason": why},
            )
        except DriftlineError:
            log.warning("could not audit a denied request", extra={"path": request.url.path})


def operator_authenticator(
    settings: AuthSettings, keys: ApiKeys, audit: AuditEmitter, redis: aioredis.Redis
) -> Authenticator:
    """API keys and operator tokens (the usual choice for a service's API)."""
    return Authenticator(
        keys, audit, TokenService(settings), Sessions(redis, settings.refresh_ttl_s)
    )
