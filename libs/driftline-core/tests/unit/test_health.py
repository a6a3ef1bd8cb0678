"""/healthz, /readyz and /metrics, with fake dependency probes (no network)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from driftline_core.errors import UnavailableError
from driftline_core.observability import Check, CoreMetrics, ops_router


def app_with(*checks: Check) -> tuple[FastAPI, CoreMetrics]:
    metrics = CoreMetrics(CollectorRegistry(), "svc")
    app = FastAPI()
    app.include_router(ops_router(checks, metrics))
    return app, metrics


async def ok() -> None:
    return None


async def down() -> None:
    raise UnavailableError("connection refused")


async def get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path)


async def test_ready_when_every_dependency_answers():
    app, _ = app_with(Check("kafka", ok), Check("postgres", ok))
    r = await get(app, "/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"kafka": "ok", "postgres": "ok"}


async def test_not_ready_names_the_failing_dependency_and_why():
    app, metrics = app_with(Check("kafka", ok), Check("redis", down))
    r = await get(app, "/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["redis"] == "UnavailableError: connection refused"
    assert metrics.dependency_up.labels("redis")._value.get() == 0
    assert metrics.dependency_up.labels("kafka")._value.get() == 1


async def test_a_hanging_dependency_times_out_instead_of_hanging_readiness():
    import asyncio

    async def hang() -> None:
        await asyncio.sleep(60)

    app, _ = app_with(Check("influxdb", hang, timeout_s=0.05))
    r = await get(app, "/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["influxdb"].startswith("TimeoutError")


async def test_liveness_does_not_depend_on_dependencies_and_metrics_are_exposed():
    app, _ = app_with(Check("redis", down))
    assert (await get(app, "/healthz")).status_code == 200
    body = (await get(app, "/metrics")).text
    assert 'driftline_service_info{service="svc"} 1.0' in body
