"""Wiring of the console service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` the ASGI app: /healthz /readyz /metrics, /api/live (SSE),
/api/platform, /api/history/{model_id}, the reverse proxy under /api/<service>/, and the
single-page app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, Authenticator, Principal, operator_authenticator
from driftline_core.db import Database
from driftline_core.influx.reader import InfluxQLReader
from driftline_core.observability.health import Check
from driftline_core.service import create_service_app
from driftline_core.wiring import Deps, build_deps

from .history import history_router
from .live import Hub, LiveFeed, live_check, sse
from .platform import platform_router
from .proxy import Proxy, proxy_router
from .settings import ConsoleSettings
from .static import static_router

__all__ = ["SERVICE", "ConsoleDeps", "build", "create_app"]

SERVICE = "console"


@dataclass
class ConsoleDeps:
    core: Deps
    keys_db: Database
    keys: ApiKeys
    audit: AuditEmitter
    proxy: Proxy
    hub: Hub
    feed: LiveFeed
    influx: InfluxQLReader


def build(settings: ConsoleSettings) -> ConsoleDeps:
    core = build_deps(settings, service=SERVICE, redis=True)
    registry = core.metrics.registry
    # API keys and operators are the ingestion service's tables: read-only here, as in
    # every other service (the console checks the caller of /api/live and /api/platform)
    keys_db = Database(settings.postgres, "ingestion", application="driftline-console")
    hub = Hub(settings.console.live_queue, registry)
    feed = LiveFeed(settings.kafka, hub, registry)
    core.extra_checks.append(live_check(feed))
    return ConsoleDeps(
        core,
        keys_db,
        ApiKeys(keys_db, settings.auth.api_key_cache_ttl_s, schema="ingestion"),
        AuditEmitter(core.producer, SERVICE),
        Proxy(settings.console, registry),
        hub,
        feed,
        InfluxQLReader(settings.influx),  # the stored windows behind /api/history
    )


def live_router(auth: Authenticator, hub: Hub, keepalive_s: float) -> APIRouter:
    r = APIRouter(tags=["console"])
    reader = Depends(auth.require("read"))

    @r.get("/api/live")
    async def live(request: Request, who: Principal = reader) -> StreamingResponse:
        sub = hub.subscribe(who.tenant_id)

        async def still_allowed() -> bool:
            """The stream ends once its credentials would be refused (the access token
            expired, the session or the key was revoked): the browser reconnects with
            fresh ones."""
            try:
                again = await auth.authenticate(request)
            except HTTPException:
                return False
            return again.tenant_id == who.tenant_id

        async def body() -> AsyncIterator[bytes]:
            async for chunk in sse(hub, sub, keepalive_s):
                if chunk.startswith(b": keepalive") and not await still_allowed():
                    yield b"event: expired\ndata: {}\n\n"
                    return
                yield chunk

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return r


def create_app(settings: ConsoleSettings, deps: ConsoleDeps) -> FastAPI:
    assert deps.core.redis is not None
    auth = operator_authenticator(settings.auth, deps.keys, deps.audit, deps.core.redis.client)
    opts = settings.console
    return create_service_app(
        title="Driftline console",
        metrics=deps.core.metrics,
        checks=[*deps.core.checks(), Check("postgres", deps.keys_db.ping)],
        components=[*deps.core.components(), deps.keys_db, deps.proxy, deps.feed],
        on_stopping=[deps.influx.close],
        routers=[
            live_router(auth, deps.hub, opts.keepalive_s),
            platform_router(auth, deps.proxy, opts.platform_timeout_s),
            history_router(auth, deps.influx),
            proxy_router(deps.proxy),
            static_router(Path(opts.dist_dir)),
        ],
        startup_timeout_s=settings.startup_timeout_s,
    )
