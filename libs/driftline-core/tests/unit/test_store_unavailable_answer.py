"""A store the request needed is away (PostgreSQL stopped, Redis refusing connections): the
last-resort handler answers 503 with Retry-After, not a 500, and does not count it as an
unhandled error (tests/faults/test_postgres_outage.py found 446 x 500 at ingestion's
API-key lookup while PostgreSQL was stopped)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from driftline_core.observability.metrics import CoreMetrics
from driftline_core.service import create_service_app

AWAY = {
    "postgres-shutting-down": asyncpg.exceptions.CannotConnectNowError(
        "the database system is shutting down"
    ),
    "connection-refused": ConnectionRefusedError(111, "Connection refused"),
    "connection-lost": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
}


@pytest.mark.parametrize("error", list(AWAY.values()), ids=list(AWAY))
async def test_a_store_away_is_a_503_with_retry_after(error: Exception) -> None:
    r = APIRouter()

    @r.get("/v1/lookup")
    async def lookup() -> dict[str, str]:
        raise error

    metrics = CoreMetrics(CollectorRegistry(), "test")
    app = create_service_app(title="t", metrics=metrics, checks=[], components=[], routers=[r])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        res = await c.get("/v1/lookup")
    assert res.status_code == 503
    assert res.headers["retry-after"] == "1"
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json()["status"] == 503
    assert metrics.http_unhandled.labels("/v1/lookup", type(error).__name__)._value.get() == 0
