"""The one last-resort handler every service app has: an error no route handled is an RFC
9457 problem (500) with a correlation id that is also in the log line, and it is counted."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from driftline_core.observability.metrics import CoreMetrics
from driftline_core.service import UNHANDLED_MARKER, create_service_app


async def test_an_unhandled_error_is_a_counted_problem_with_a_logged_correlation_id(caplog):
    r = APIRouter()

    @r.get("/v1/boom/{x}")
    async def boom(x: str) -> dict[str, str]:
        raise ZeroDivisionError(x)

    @r.get("/v1/fine")
    async def fine() -> dict[str, str]:
        return {"ok": "yes"}

    metrics = CoreMetrics(CollectorRegistry(), "test")
    app = create_service_app(title="t", metrics=metrics, checks=[], components=[], routers=[r])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    caplog.set_level(logging.ERROR, logger="driftline_core.service")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/v1/fine")).status_code == 200
        res = await c.get("/v1/boom/1")
    assert res.status_code == 500
    assert res.headers["content-type"] == "application/problem+json"
    body = res.json()
    assert (body["status"], body["title"]) == (500, "Internal Server Error")
    assert body["correlation_id"] == res.headers["x-correlation-id"]
    assert "ZeroDivisionError" not in res.text  # no internals in the answer
    [line] = [rec for rec in caplog.records if rec.getMessage() == UNHANDLED_MARKER]
    assert line.__dict__["correlation_id"] == body["correlation_id"]
    assert metrics.http_unhandled.labels("/v1/boom/{x}", "ZeroDivisionError")._value.get() == 1
    assert metrics.http_requests.labels("GET", "/v1/boom/{x}", "500")._value.get() == 1
