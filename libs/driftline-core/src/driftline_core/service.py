"""What every Driftline service shares: a FastAPI app whose lifespan starts its adapters
(retrying while a dependency is still coming up), ops routes, and a uvicorn runner."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from .errors import is_retriable
from .observability.health import Check, ops_router
from .observability.http import HTTPMetricsMiddleware, route_of
from .observability.metrics import CoreMetrics
from .openapi import install_openapi
from .problems import install_problem_handlers, problem_response
from .settings import DriftlineSettings
from .strings import refuse_unstorable_request

__all__ = ["Component", "create_service_app", "problem_handler", "serve", "start_all"]

log = logging.getLogger(__name__)


class Component(Protocol):
    """An adapter with a lifecycle (producer, database, Redis, InfluxDB client ...)."""

    async def start(self) -> Any: ...
    async def stop(self) -> None: ...


async def start_all(components: Sequence[Component], *, timeout_s: float = 60.0) -> None:
    """Start components in order, retrying retriable failures for up to `timeout_s`."""
    for c in components:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(is_retriable),
            wait=wait_exponential(multiplier=0.25, max=5),
            stop=stop_after_delay(timeout_s),
            reraise=True,
        ):
            with attempt:
                await c.start()


UNHANDLED_MARKER = "unhandled error answered 500"  # the log line the fuzz tests look for


def unavailable_response(exc: Exception) -> JSONResponse:
    """A store the request needed is away (PostgreSQL, Redis or Kafka refused the connection,
    is shutting down or timed out: `is_retriable`): 503 with Retry-After, so the client
    retries, instead of a 500 (a PostgreSQL outage under load gave 446 of them at
    ingestion's API-key lookup; tests/faults/test_postgres_outage.py)."""
    log.warning("a dependency is unavailable: answered 503", extra={"error": repr(exc)[:300]})
    return JSONResponse(
        {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": f"a dependency is unavailable, retry: {type(exc).__name__}",
        },
        status_code=503,
        media_type="application/problem+json",
        headers={"Retry-After": "1"},
    )


def problem_handler(
    metrics: CoreMetrics,
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The one last-resort handler of every service: an error no route turned into a 4xx or
    503 is answered as an RFC 9457 problem (500) with a correlation id, logged with that id
    and its traceback, and counted (`driftline_http_unhandled_errors_total`). Reaching it is
    a defect: the fuzz tests fail if the counter moved."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if is_retriable(exc):  # a store away is no defect of the service: the client retries
            return unavailable_response(exc)
        correlation = uuid.uuid4().hex
        route = route_of(request.scope)
        metrics.http_unhandled.labels(route, type(exc).__name__).inc()
        log.error(
            UNHANDLED_MARKER,
            exc_info=exc,
            extra={"correlation_id": correlation, "route": route, "method": request.method},
        )
        return problem_response(
            500,
            "an unexpected error; quote the correlation id to the operators",
            {"X-Correlation-Id": correlation},
            correlation_id=correlation,
        )

    return handle


def create_service_app(
    *,
    title: str,
    metrics: CoreMetrics,
    checks: Sequence[Check],
    components: Sequence[Component],
    routers: Sequence[APIRouter] = (),
    on_started: Sequence[Callable[[], Awaitable[None]]] = (),
    on_stopping: Sequence[Callable[[], Awaitable[None]]] = (),
    startup_timeout_s: float = 60.0,
    plain_error_prefixes: Sequence[str] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await start_all(components, timeout_s=startup_timeout_s)
        for hook in on_started:
            await hook()
        log.info("service started", extra={"service": metrics.service})
        try:
            yield
        finally:
            for hook in on_stopping:
                await hook()
            for c in reversed(components):
                try:
                    await c.stop()
                except Exception:  # keep stopping the rest; say what failed
                    log.exception("component failed to stop", extra={"component": repr(c)})
            log.info("service stopped", extra={"service": metrics.service})

    # every route: a path or query parameter with a control character, or a JSON body with
    # NUL or a surrogate, is a 422 naming the field, before it can reach a store (strings.py)
    app = FastAPI(title=title, lifespan=lifespan, dependencies=[Depends(refuse_unstorable_request)])
    app.add_exception_handler(Exception, problem_handler(metrics))
    install_problem_handlers(app, plain_error_prefixes)  # every 4xx a problem (problems.py)
    install_openapi(app)  # ...and so declared in the OpenAPI document (openapi.py)
    app.add_middleware(HTTPMetricsMiddleware, metrics=metrics)
    app.include_router(ops_router(checks, metrics))
    for r in routers:
        app.include_router(r)
    return app


def server_config(app: FastAPI, settings: DriftlineSettings) -> uvicorn.Config:
    """uvicorn's configuration from settings: HTTPS when a certificate and key are set."""
    h = settings.http
    return uvicorn.Config(
        app,
        host=h.host,
        port=h.port,
        log_config=None,
        access_log=False,
        ssl_certfile=h.ssl_certfile,
        ssl_keyfile=h.ssl_keyfile,
        timeout_graceful_shutdown=10,
    )


def serve(app: FastAPI, settings: DriftlineSettings) -> None:
    uvicorn.Server(server_config(app, settings)).run()
