"""/api/platform: for the console's Platform view, each service's readiness (its /readyz
body), its consumer lag and its dead letters by reason (from its /metrics), read when a
browser asks, one request per service at a time, in parallel. A service that does not
answer is listed as unreachable, never left out."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Depends
from prometheus_client.parser import text_string_to_metric_families

from driftline_core.auth import Authenticator, Principal

from .proxy import Proxy

__all__ = ["parse_metrics", "platform_router"]


def parse_metrics(text: str) -> dict[str, list[dict[str, Any]]]:
    """Consumer lag per group and topic (summed over partitions) and dead letters per source
    topic and reason, from a Prometheus text exposition."""
    lag: dict[tuple[str, str], float] = {}
    dlq: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "driftline_consumer_lag_records":
                key = (s.labels.get("group", ""), s.labels.get("topic", ""))
                lag[key] = lag.get(key, 0.0) + s.value
            elif s.name == "driftline_dlq_records_total":
                key = (s.labels.get("source_topic", ""), s.labels.get("error_type", ""))
                dlq[key] = dlq.get(key, 0.0) + s.value
    return {
        "consumer_lag": [
            {"group": g, "topic": t, "lag": int(v)} for (g, t), v in sorted(lag.items())
        ],
        "dead_letters": [
            {"source_topic": t, "reason": r, "count": int(v)} for (t, r), v in sorted(dlq.items())
        ],
    }


async def _service(client: httpx.AsyncClient, name: str, base: str, wait_s: float) -> Any:
    out: dict[str, Any] = {"service": name}
    try:
        ready = await client.get(f"{base}/readyz", timeout=wait_s)
        body = ready.json()
        out |= {
            "reachable": True,
            "ready": ready.status_code == 200,
            "status": body.get("status"),
            "checks": body.get("checks", {}),
        }
        metrics = await client.get(f"{base}/metrics", timeout=wait_s)
        out |= parse_metrics(metrics.text) if metrics.status_code == 200 else {}
    except (httpx.HTTPError, ValueError) as e:
        out |= {"reachable": out.get("reachable", False), "error": f"{type(e).__name__}: {e}"}
        out.setdefault("ready", False)
    out.setdefault("consumer_lag", [])
    out.setdefault("dead_letters", [])
    return out


def platform_router(auth: Authenticator, proxy: Proxy, timeout_s: float) -> APIRouter:
    r = APIRouter(tags=["console"])
    reader = Depends(auth.require("read"))

    @r.get("/api/platform")
    async def platform(_: Principal = reader) -> dict[str, Any]:
        found = await asyncio.gather(
            *(_service(proxy.client, n, u, timeout_s) for n, u in proxy.upstreams.items())
        )
        return {"services": list(found)}

    return r
