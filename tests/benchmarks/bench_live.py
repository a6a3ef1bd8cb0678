"""Live-series latency (issue 16: an accepted event is visible in InfluxDB within 1 s at
p99): a real ingestion process, a background load of batches of 100 events for another
model, and probe events sent one at a time over HTTP; each probe's latency is from the HTTP
answer (accepted) until InfluxDB's `sum("events")` of the probe model counts it (polled every
5 ms). Figures: live_metrics_latency_ms_p50 / p99 / max."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import orjson
from bench_ingest import SCHEMA, events, free_port
from common import record, table

from driftline_core.settings import InfluxSettings

PROBES = 100


async def influx_count(c: httpx.AsyncClient, db: str, tenant: str) -> float:
    q = f"SELECT sum(\"events\") FROM live_model WHERE tenant = '{tenant}' AND model = 'probe'"
    r = await c.get("/query", params={"db": db, "q": q})
    series = r.json()["results"][0].get("series")
    return float(series[0]["values"][0][1]) if series else 0.0


async def main() -> None:
    port = free_port()
    env = {
        **os.environ,
        "DRIFTLINE_HTTP__PORT": str(port),
        "DRIFTLINE_INGESTION__RATE_PER_S": "1e9",
        "DRIFTLINE_INGESTION__BURST": "1000000000",
        "DRIFTLINE_LOG_LEVEL": "WARNING",
    }
    exe = str(Path(sys.executable).with_name("driftline-ingestion"))
    proc = subprocess.Popen([exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    influx = InfluxSettings()
    latencies: list[float] = []
    load_events = 0
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await c.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            tid = f"live{uuid.uuid4().hex[:8]}"
            r = await c.post(
                "/v1/auth/tenants",
                json={"id": tid, "name": tid},
                headers={"X-Admin-Token": "driftline-dev-admin"},
            )
            key = r.json()["api_key"]
            c.headers["Authorization"] = f"Bearer {key}"
            for model in ("bench", "probe"):
                r = await c.post(
                    "/v1/models",
                    json={
                        "id": model,
                        "name": model,
                        "task": "regression",
                        "feature_schema": SCHEMA,
                    },
                )
                assert r.status_code == 201, r.text
            rng = np.random.default_rng(1)
            stop = asyncio.Event()

            async def load() -> None:
                nonlocal load_events
                while not stop.is_set():
                    body = orjson.dumps(events(100, rng))
                    r = await c.post(
                        "/v1/events/predictions",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    assert r.status_code == 202, r.text
                    load_events += 100

            loaders = [asyncio.create_task(load()) for _ in range(2)]
            async with httpx.AsyncClient(base_url=influx.url, timeout=10) as ic:
                for i in range(PROBES):
                    ev = events(1, rng)[0]
                    ev["model_id"] = "probe"
                    r = await c.post("/v1/events/predictions", json=[ev])
                    accepted = time.perf_counter()
                    assert r.status_code == 202, r.text
                    while await influx_count(ic, influx.database, tid) < i + 1:
                        assert time.perf_counter() - accepted < 30, "probe never visible"
                        await asyncio.sleep(0.005)
                    latencies.append((time.perf_counter() - accepted) * 1000)
            stop.set()
            await asyncio.gather(*loaders)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lat = np.asarray(latencies)
    figures = {
        "live_metrics_latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "live_metrics_latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
        "live_metrics_latency_ms_max": round(float(lat.max()), 1),
        "live_metrics_probes": PROBES,
        "live_metrics_background_events": load_events,
    }
    record("live_metrics", figures)
    table("Live series: accepted event visible in InfluxDB", figures)


if __name__ == "__main__":
    asyncio.run(main())
