"""`/healthz` (the process answers), `/readyz` (its real dependencies answer), `/metrics`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from .metrics import CoreMetrics

__all__ = ["Check", "Health", "Readiness", "ops_router"]


class Health(BaseModel):
    status: str = Field(description="always ok: the process answers")
    service: str


class Readiness(BaseModel):
    status: str = Field(description="ready, or not ready (503)")
    service: str
    checks: dict[str, str] = Field(description="each check: ok, or why it failed")


@dataclass(frozen=True)
class Check:
    """A readiness probe of one dependency; `probe` raises if it is not usable. A check that
    is not `required` is reported in /readyz's body but does not make the process not ready
    (compliance-report's `leader`: a standby serves the API all the same)."""

    name: str
    probe: Callable[[], Awaitable[object]]
    timeout_s: float = 2.0
    required: bool = True


async def _run(check: Check, metrics: CoreMetrics) -> tuple[Check, str | None]:
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(check.probe(), check.timeout_s)
        error = None
    except Exception as e:  # readiness reports every failure, whatever its type
        error = f"{type(e).__name__}: {e}"[:300] or type(e).__name__
    metrics.readiness_seconds.labels(check.name).observe(time.perf_counter() - t0)
    metrics.dependency_up.labels(check.name).set(0 if error else 1)
    return check, error


def ops_router(checks: Sequence[Check], metrics: CoreMetrics) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Health)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": metrics.service}

    @router.get(
        "/readyz",
        response_model=None,
        responses={
            200: {"model": Readiness, "description": "every required dependency answers"},
            503: {"model": Readiness, "description": "a required dependency does not"},
        },
    )
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(_run(c, metrics) for c in checks))
        failing = {c.name: err for c, err in results if err and c.required}
        body = {
            "status": "ready" if not failing else "not ready",
            "service": metrics.service,
            "checks": {c.name: (err or "ok") for c, err in results},
        }
        return JSONResponse(body, status_code=503 if failing else 200)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
