"""Redis and InfluxDB stopped under load (issue 18 item 6): the whole system on data servers
of the run's own (a private Redis and InfluxDB started by the local stack's launcher on free
ports, tests/e2e/harness.py `PrivateServer`; never the shared ones) and its own broker; the
fault suite's load over HTTP; Redis stopped for `OUTAGE_S` and started again, then InfluxDB
stopped for `OUTAGE_S` (the writers spool) and started again (the spool must replay).

Checked: every 202-acknowledged event is counted exactly once in the window counts drift
detection published, each window once; every window also reaches InfluxDB's drift_window
series with the same count (the spool replayed what the outage held); no dead letter
without a reason; every service ready at the end."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faultlib import MODEL_ID, OUTAGE_S, RATE, WINDOW_S, Load, model_with_grace, record
from harness import System, Tenant, poll, unique_by_id

pytestmark = pytest.mark.timeout(1200)

SETTLE_S = 6.0
# a batch is tried for up to DEADLINE_S (the outage, then the services' reconnection on a
# loaded machine), and windows wait GRACE_S (grace and idle close) for what was acknowledged
# late with its original time: longer than any acknowledgement can take, or an acknowledged
# event would be dead-lettered as too late instead of counted (as test_postgres_outage)
DEADLINE_S = OUTAGE_S + 50
GRACE_S = int(DEADLINE_S) + 20
MODEL_LATE = model_with_grace(GRACE_S)


@pytest.fixture
async def system(stack, tmp_path: Path):
    if os.environ.get("DRIFTLINE_TEST_STACK", "local") != "local":
        pytest.skip("stopping data servers needs the run's own (the local stack's launcher)")
    # windows close by the watermark, and an idle stream closes them after idle_close_s:
    # both must outlast the outage, or events taken in after it (the client retried them,
    # with their original time) arrive for a closed window and are dropped as too late
    s = System(
        stack,
        tmp_path / "sys",
        idle_close_s=GRACE_S,
        private_servers=("redis", "influxdb"),
    )
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


async def test_redis_then_influxdb_stopped_under_load(system: System) -> None:
    tenant = await Tenant.create(system, "stores")
    rng = np.random.default_rng(7)
    await tenant.register(MODEL_LATE)
    await tenant.add_version(MODEL_ID, "1")
    await tenant.upload_reference(
        MODEL_ID,
        [{"x0": float(rng.normal()), "x1": float(rng.normal(5, 2))} for _ in range(2000)],
    )
    load = Load(tenant, [system.url("ingestion")], deadline_s=DEADLINE_S)
    loader = asyncio.create_task(load.run())
    phases: list[dict[str, Any]] = []

    async def outage(name: str) -> None:
        await asyncio.sleep(SETTLE_S)
        srv = system.servers[name]
        t0 = time.time()
        acked0, retries0 = len(load.acked), sum(load.failures.values())
        await asyncio.to_thread(srv.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(srv.start)
        for key in system.services:
            await system.wait_ready(key, timeout=120)
        recovered = time.time() - t0 - OUTAGE_S
        await asyncio.sleep(SETTLE_S)
        phases.append(
            {
                "fault": f"{name} stopped {OUTAGE_S:.0f} s",
                "start": t0,
                "end": time.time(),
                "ready_after_restart_s": round(recovered, 2),
                "acked_during": len(load.acked) - acked0,
                "client_retries_during": sum(load.failures.values()) - retries0,
                "slowest_ack_s": load.slowest_ack_s(t0 - SETTLE_S, time.time()),
            }
        )

    try:
        await outage("redis")
        await outage("influxdb")
        await asyncio.sleep(SETTLE_S)
    finally:
        load.stop.set()
        await asyncio.wait_for(loader, 120)

    expected: Counter[float] = Counter((ts // WINDOW_S) * WINDOW_S for ts in load.acked.values())

    def mine(r: dict[str, Any]) -> bool:
        return r.get("tenant_id") == tenant.tenant_id

    def whole(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rs if r.get("model_id") == MODEL_ID and not r.get("segment")]

    def start_of(r: dict[str, Any]) -> float:
        return datetime.fromisoformat(r["window"]["start"]).timestamp()

    def complete(rs: list[dict[str, Any]]) -> bool:
        return {start_of(r) for r in whole(rs)} >= set(expected)

    drift = whole(
        unique_by_id(
            await system.topic("driftline.drift.v1").read(
                where=mine, until=complete, timeout=GRACE_S + 180
            )
        )
    )
    per_window: dict[float, list[int]] = defaultdict(list)
    for r in drift:
        per_window[start_of(r)].append(int(r["window"]["events"]))
    counted = {w: sum(v) for w, v in per_window.items()}
    twice = {w: v for w, v in per_window.items() if len(v) > 1}
    wrong = {
        w: (expected.get(w, 0), counted.get(w))
        for w in set(expected) | set(counted)
        if expected.get(w, 0) != counted.get(w, 0)
    }

    async def influx_windows() -> dict[float, int] | None:
        rows = await system.influx(
            "SELECT events FROM drift_window "
            f"WHERE tenant = '{tenant.tenant_id}' AND model = '{MODEL_ID}' AND segment = ''"
        )
        # the point's time is the window's end
        got = {r["time"] / 1000 - WINDOW_S: int(r["events"]) for r in rows}
        return got if set(got) >= set(counted) else None

    influx = await poll(influx_windows, timeout=120, interval=1, what="the spool replayed")
    influx_wrong = {w: (n, influx.get(w)) for w, n in counted.items() if influx.get(w) != n}
    dlq = await system.topic("driftline.dlq.v1").read(where=mine, timeout=20)
    for ph in phases:
        ws = [w for w in expected if ph["start"] - WINDOW_S < w <= ph["end"]]
        ph["windows"] = len(ws)
        ph["acked_in_windows"] = sum(expected[w] for w in ws)
        ph["counted_in_windows"] = sum(counted.get(w, 0) for w in ws)
        ph["influx_in_windows"] = sum(influx.get(w, 0) for w in ws)
        ph["ok"] = all(w not in wrong and w not in twice and w not in influx_wrong for w in ws)
    figures = {
        "rate_per_s": RATE,
        "outage_s": OUTAGE_S,
        "events_sent": load.sent,
        "events_acknowledged": len(load.acked),
        "events_counted": sum(counted.values()),
        "events_in_influx": sum(influx.values()),
        "batches_given_up": load.gave_up,
        "batches_given_up_when": load.given_up,
        "batches_acknowledged_as_duplicates": load.acked_as_duplicates,
        "client_retries": dict(load.failures),
        "windows": len(expected),
        "windows_published_twice": len(twice),
        "windows_miscounted": {str(int(w)): v for w, v in wrong.items()},
        "influx_windows_wrong": {str(int(w)): v for w, v in influx_wrong.items()},
        "dlq_records": len(dlq),
        "dlq_reasons": dict(Counter(str(d.get("error_type")) for d in dlq)),
        "phases": phases,
    }
    record("datastore-outages", figures)
    assert load.gave_up == 0, figures
    assert not wrong, figures
    assert not twice, figures
    assert not influx_wrong, figures
    assert all(d.get("reason") for d in dlq), dlq[:3]
    assert all(ph["ok"] for ph in phases), phases
