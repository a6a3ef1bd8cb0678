"""No accepted event is lost to ordering between topics (issue 14, defect 3), end to end:
every service as its own process (harness.py). A model is registered, its reference
uploaded, and 2,000 events follow at once, with the shortest gap each path allows:

- over HTTP, the moment the reference upload answers (labels right behind them);
- over the Kafka SDK with the producer already connected, the moment the upload answers;
- over the Kafka SDK *before* the model is even registered (the registry event comes last).

Before the fix, drift detection skipped events of models its catalogue did not know yet:
none of them were counted and nothing reached the DLQ. Now each model's windows count
exactly its 2,000 events, the labels give a performance window of 2,000, and the run
leaves no dead letter of the tenant."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from harness import System, Tenant, unique_by_id

from driftline import KafkaLogger

pytestmark = pytest.mark.timeout(600)

N = 2000
CLASSES = {"classes": [0, 1], "positive_class": 1}


def spec(model_id: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id,
        "task": "classification",
        "feature_schema": {
            "features": [
                {"name": "x0", "kind": "numeric"},
                {"name": "x1", "kind": "numeric"},
                {"name": "c", "kind": "categorical"},
            ]
        },
        "classes": CLASSES,
        "monitoring": {"window": {"seconds": 60, "grace_seconds": 5}},
    }


def rows(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    x0, x1 = rng.normal(0, 1, n), rng.normal(5, 2, n)
    c = rng.choice(["a", "b", "c"], n)
    return [{"x0": float(x0[i]), "x1": float(x1[i]), "c": str(c[i])} for i in range(n)]


def events(seed: int, start: float) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    feats = rows(rng, N)
    p = np.clip(rng.random(N), 0.01, 0.99)
    ts = start + np.sort(rng.uniform(0, 50, N))
    return [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": datetime.fromtimestamp(float(t), UTC).isoformat(),
            "features": f,
            "prediction": int(s >= 0.5),
            "probabilities": {"1": float(s), "0": 1 - float(s)},
        }
        for f, s, t in zip(feats, p.tolist(), ts.tolist(), strict=True)
    ]


async def counted(system: System, tenant: Tenant, model_id: str) -> int:
    def mine(v: dict[str, Any]) -> bool:
        return bool(
            v.get("tenant_id") == tenant.tenant_id
            and v.get("model_id") == model_id
            and not v.get("segment")
        )

    def total(rs: list[dict[str, Any]]) -> int:
        return sum(int(r["window"]["events"]) for r in unique_by_id(rs))

    got = await system.topic("driftline.drift.v1").read(
        where=mine, until=lambda rs: total(rs) >= N, timeout=120
    )
    return total(got)


async def test_events_right_after_a_reference_upload_are_all_counted(
    system: System, tenant: Tenant
):
    start = (time.time() // 60 - 15) * 60
    reference = rows(np.random.default_rng(1), 5000)
    http_events, kafka_events, early_events = events(2, start), events(3, start), events(4, start)

    # over Kafka before the registry event: the events go first
    async with KafkaLogger(tenant.tenant_id, system.kafka_settings) as k:
        await k.log_predictions("early", "1", early_events)
    await tenant.register(spec("early"), reference)

    # over HTTP, as soon as the upload answers; the labels right behind
    await tenant.register(spec("via-http"), reference)
    ids = await tenant.log_http("via-http", "1", http_events)
    labels = [
        {
            "prediction_event_id": i,
            "actual": e["prediction"] if k % 5 else 1 - e["prediction"],
            "timestamp": datetime.fromtimestamp(start + 600 + k * 0.02, UTC).isoformat(),
        }
        for k, (i, e) in enumerate(zip(ids, http_events, strict=True))
    ]
    await tenant.log_actuals("via-http", labels)

    # over Kafka with the producer connected, as soon as the upload answers
    async with KafkaLogger(tenant.tenant_id, system.kafka_settings) as k:
        await tenant.register(spec("via-kafka"), reference)
        await k.log_predictions("via-kafka", "1", kafka_events)

    assert len(ids) == N
    for model_id in ("via-http", "via-kafka", "early"):
        assert await counted(system, tenant, model_id) == N, model_id

    def perf(v: dict[str, Any]) -> bool:
        return bool(
            v.get("tenant_id") == tenant.tenant_id
            and v.get("model_id") == "via-http"
            and v.get("kind") == "window_metrics"
            and not v.get("segment")
        )

    windows = unique_by_id(
        await system.topic("driftline.performance.v1").read(
            where=perf, until=lambda rs: sum(r["labelled"] for r in rs) >= N, timeout=120
        )
    )
    assert sum(r["labelled"] for r in windows) == N
    accuracy = sum(r["metrics"]["accuracy"] * r["labelled"] for r in windows) / N
    assert accuracy == pytest.approx(0.8, abs=1e-12)  # every fifth label is wrong

    letters = await system.topic("driftline.dlq.v1").read(
        where=lambda v: v.get("tenant_id") == tenant.tenant_id
    )
    assert letters == []
