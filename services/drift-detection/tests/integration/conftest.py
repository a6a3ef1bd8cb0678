"""A drift pipeline in-process on its own topics, schema and InfluxDB database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx
import numpy as np
import pytest

from driftline_core.db import Database
from driftline_core.events import RegistryChange
from driftline_core.influx import InfluxQLReader, InfluxWriter
from driftline_core.kafka import ConsumerLoop, EventProducer
from driftline_core.redis_store import RedisStore
from driftline_drift_detection.app import MIGRATIONS
from driftline_drift_detection.catalog import ModelCatalog
from driftline_drift_detection.labels import PerformanceProcessor, PredictionStash
from driftline_drift_detection.processor import DriftProcessor
from driftline_drift_detection.settings import DriftOptions
from driftline_drift_detection.stream import CheckpointedProcessor
from driftline_stats.detector import FeatureReference

NUMERIC = [f"x{i}" for i in range(6)]
CATEGORIES = ["a", "b", "c"]


def features(
    rng: np.random.Generator, n: int, shift: float = 0.0, link: float | None = None
) -> list[dict[str, object]]:
    cols = {
        f: rng.normal(i, 1 + i / 4, n) + (shift if f == "x0" else 0.0)
        for i, f in enumerate(NUMERIC)
    }
    if link is not None:  # x1 moves with x0 (same marginals whatever the link)
        z0 = (cols["x0"] - shift) / 1.0
        cols["x1"] = 1 + 1.25 * (link * z0 + np.sqrt(1 - link**2) * rng.normal(size=n))
    cat = rng.choice(CATEGORIES, n, p=[0.5, 0.3, 0.2])
    return [{**{f: float(cols[f][k]) for f in NUMERIC}, "c": str(cat[k])} for k in range(n)]


def references(seed: int = 1) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    rows = features(rng, 20_000)
    refs = [FeatureReference.from_values(f, [r[f] for r in rows]) for f in NUMERIC]
    refs.append(FeatureReference.from_values("c", [r["c"] for r in rows], categorical=True))
    return [r.to_dict() for r in refs]


@dataclass
class Pipeline:
    tenant: str
    predictions: str
    registry: str
    schema: str
    influx_db: str
    producer: EventProducer
    actuals: str = ""
    last_outputs: dict[str, dict[str, object]] = field(default_factory=dict)
    # "batch" sends columnar batch records (events/batch.py); the whole suite runs on them
    # with DRIFTLINE_TEST_RECORD_FORMAT=batch
    records_sent: int = 0  # Kafka records `send` wrote (events, or batches of up to 500)
    record_format: str = field(
        default_factory=lambda: os.environ.get("DRIFTLINE_TEST_RECORD_FORMAT", "events")
    )

    async def register(
        self,
        window_s: int = 60,
        grace_s: int = 5,
        model: str = "m",
        *,
        task: str | None = None,
        refs: list[dict[str, object]] | None = None,
        multivariate: dict[str, object] | None = None,
        monitoring: dict[str, object] | None = None,
        classes: dict[str, object] | None = None,
    ) -> None:
        details: dict[str, object] = {
            "references": refs or references(),
            "profile_version": 1,
            "monitoring": {
                "window": {"seconds": window_s, "grace_seconds": grace_s},
                **(monitoring or {}),
            },
            "multivariate": multivariate,
        }
        if task:
            details["task"] = task
        if classes is not None:
            details["classes"] = classes
        change = RegistryChange(
            tenant_id=self.tenant,
            model_id=model,
            change="reference_profile_updated",
            actor="test",
            details=details,
        )
        await self.producer.send_many([change], topic=self.registry)

    async def send(
        self,
        start: float,
        n: int,
        shift: float = 0.0,
        seed: int = 2,
        model: str = "m",
        *,
        link: float | None = None,
        positive_share: float | None = None,
    ) -> list[str]:
        """n events in [start, start + 60). With `positive_share`, a binary classifier's
        output: class 1 with that probability, and its score in `probabilities`."""
        rng = np.random.default_rng(seed)
        ts = start + np.sort(rng.uniform(0, 59.9, n))
        rows = features(rng, n, shift, link)
        outputs: list[dict[str, object]] = [{"prediction": 0.5}] * n
        if positive_share is not None:
            scores = np.clip(rng.normal(0.5, 0.2, n) + (positive_share - 0.5), 0.001, 0.999)
            outputs = [
                {"prediction": int(s >= 0.5), "probabilities": {"1": s, "0": 1 - s}}
                for s in scores.tolist()
            ]
        ids = [str(uuid.uuid4()) for _ in range(n)]
        from datetime import UTC, datetime

        import orjson

        records = [
            (
                f"{self.tenant}:{model}".encode(),
                orjson.dumps(
                    {
                        "event_id": i,
                        "schema_version": 1,
                        "tenant_id": self.tenant,
                        "occurred_at": datetime.fromtimestamp(t, UTC).isoformat(),
                        "produced_at": datetime.now(UTC).isoformat(),
                        "model_id": model,
                        "model_version": "1",
                        "features": f,
                        **out,
                    }
                ),
            )
            for i, t, f, out in zip(ids, ts, rows, outputs, strict=True)
        ]
        if self.record_format == "batch":
            from driftline_core.events.batch import encode_batch

            evs = [
                {"event_id": i, "timestamp": float(t), "features": f, **out}
                for i, t, f, out in zip(ids, ts, rows, outputs, strict=True)
            ]
            records = [
                (
                    f"{self.tenant}:{model}".encode(),
                    encode_batch(self.tenant, model, "1", evs[k : k + 500]),
                )
                for k in range(0, n, 500)
            ]
        await self.producer.send_records(self.predictions, records)
        self.records_sent += len(records)
        self.last_outputs = dict(zip(ids, outputs, strict=True))
        return ids


@pytest.fixture
async def pipeline(stack, new_topic, unique):
    predictions = await new_topic("preds", partitions=3)
    actuals = await new_topic("actuals", partitions=3)
    registry = await new_topic("reg")
    schema, influx_db = unique("drift"), unique("driftdb")
    async with httpx.AsyncClient(base_url=stack.influx.url) as c:
        await c.post("/query", data={"q": f'CREATE DATABASE "{influx_db}"'})
    producer = EventProducer(stack.kafka)
    await producer.start()
    p = Pipeline(
        unique("t").replace("_", "-"), predictions, registry, schema, influx_db, producer, actuals
    )
    yield p
    await producer.stop()
    conn = await asyncpg.connect(stack.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()
    async with httpx.AsyncClient(base_url=stack.influx.url) as c:
        await c.post("/query", data={"q": f'DROP DATABASE "{influx_db}"'})


@contextlib.asynccontextmanager
async def running(
    stack,
    p: Pipeline,
    group: str = "drift",
    workers: int = 1,
    models: int = 1,
    labels: bool = False,
    idle: float = 3600,
    hold_s: float = 8.0,
    ref_wait_s: float = 2.0,
):
    db = Database(stack.postgres, p.schema, migrations_dir=MIGRATIONS)
    await db.start()
    influx = InfluxWriter(
        stack.influx.model_copy(update={"database": p.influx_db, "flush_interval_ms": 200})
    )
    influx.start()
    catalog = ModelCatalog(db, 0.01)
    await catalog.load()
    registry = ConsumerLoop[RegistryChange](
        stack.kafka,
        topics=[p.registry],
        group_id=f"{p.schema}-reg",
        handler=catalog.handle,
        dlq=p.producer,
        models={p.registry: RegistryChange},
    )
    await registry.start()
    reg_task = asyncio.create_task(registry.run())
    redis = RedisStore(stack.redis)
    stash = PredictionStash(redis.client)
    opts = DriftOptions(
        group_id=f"{p.schema}-{group}",
        checkpoint_interval_s=0.5,
        idle_close_s=idle,
        hold_max_s=hold_s,
        reference_wait_s=ref_wait_s,
    )
    processors: list[CheckpointedProcessor] = [
        DriftProcessor(
            stack.kafka, opts, db, p.producer, influx, catalog, topic=p.predictions, stash=stash
        )
        for _ in range(workers)
    ]
    if labels:
        processors.append(
            PerformanceProcessor(
                stack.kafka, opts, db, p.producer, influx, catalog, stash, topic=p.actuals
            )
        )
    for _ in range(100):
        if sum(k[0] == p.tenant for k in catalog.models) >= models:
            break
        await asyncio.sleep(0.1)
    for processor in processors:
        await processor.start()
    try:
        yield processors, InfluxQLReader(stack.influx.model_copy(update={"database": p.influx_db}))
    finally:
        for processor in processors:
            await processor.stop()
        await registry.stop()
        reg_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reg_task
        await catalog.stop()
        influx.close()
        await redis.stop()
        await db.stop()


@pytest.fixture
def run_pipeline(stack):
    def run(
        p, group="drift", workers=1, models=1, labels=False, idle=3600, hold_s=8.0, ref_wait_s=2.0
    ):
        return running(stack, p, group, workers, models, labels, idle, hold_s, ref_wait_s)

    return run


@pytest.fixture
def window_start() -> float:
    return (time.time() // 60 - 120) * 60  # two hours ago, on a minute
