"""Authentication for every service's API: `Depends(auth.require("read"))` gives the
caller's `Principal` (tenant, scopes) or refuses with 401/403, and every denial is audited.
Producers and operators use tenant-scoped API keys (`dlk_<prefix>_<secret>`), issued by the
ingestion service; other services verify them read-only (see `ApiKeys`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from ..audit import AuditEmitter
from ..errors import DriftlineError
from ..events import Actor, Resource
from .apikeys import SCOPES, ApiKeys, Principal

__all__ = ["SCOPES", "ApiKeys", "Authenticator", "Principal"]

log = logging.getLogger(__name__)


class Authenticator:
    """`Depends(auth.require("ingest"))` gives the caller's Principal or refuses (401/403)."""

    def __init__(self, keys: ApiKeys, audit: AuditEmitter) -> None:
        self.keys = keys
        self.audit = audit

    def require(self, scope: str) -> Callable[[Request], Awaitable[Principal]]:
        async def dependency(request: Request) -> Principal:
            token = request.headers.get("x-api-key") or ""
            authz = request.headers.get("authorization", "")
            if not token and authz.lower().startswith("bearer "):
                token = authz[7:].strip()
            if not token and request.url.path.endswith("/cloudevents"):
                token = request.query_params.get("api_key", "")
            if not token:
                await self._denied(request, None, "no API key")
                raise HTTPException(
                    401,
                    "an API key is required (Authorization: Bearer ...)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            who = await self.keys.verify(token)
            if who is None:
                await self._denied(request, None, "unknown or revoked API key")
                raise HTTPException(
                    401,
                    "the API key is not valid (unknown or revoked)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if scope not in who.scopes and "admin" not in who.scopes:
                await self._denied(request, who, f"missing scope {scope}")
                raise HTTPException(403, f"this API key lacks the {scope!r} scope")
            return who

        return dependency

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
