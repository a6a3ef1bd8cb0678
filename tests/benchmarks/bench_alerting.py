"""Alerting: results evaluated per second (25 features, the default rules), and latency from a
drift result on the topic to a signed webhook's receipt on loopback (group_wait 0)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import numpy as np
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import record, table
from standardwebhooks.webhooks import Webhook

from driftline_alerting.app import MIGRATIONS
from driftline_alerting.routing import AlertingConfig
from driftline_alerting.runtime import AlertingRuntime
from driftline_alerting.settings import AlertingOptions
from driftline_alerting.store import Store
from driftline_core.audit import AuditEmitter
from driftline_core.db import Database
from driftline_core.events import DriftResult
from driftline_core.kafka import ConsumerLoop, EventProducer, Message
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import DriftlineSettings

SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
SAMPLES = 300


def result(tenant: str, model: str, end: float, share: float) -> DriftResult:
    feats = [
        {
            "feature": f"f{j}",
            "test": "wasserstein",
            "statistic": 0.3 if j < share * 25 else 0.02,
            "threshold": 0.1,
            "drifted": j < share * 25,
        }
        for j in range(25)
    ]
    return DriftResult.model_validate(
        {
            "tenant_id": tenant,
            "model_id": model,
            "model_version": "1",
            "window": {
                "start": datetime.fromtimestamp(end - 300, UTC),
                "end": datetime.fromtimestamp(end, UTC),
                "events": 5000,
            },
            "occurred_at": datetime.fromtimestamp(end, UTC),
            "features": feats,
            "drifted_share": share,
            "dataset_drift": share >= 0.5,
        }
    )


class Receiver:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.bad = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        at = time.perf_counter()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            payload = Webhook(SECRET).verify(body, headers)
            for a in payload["alerts"]:
                self.seen.setdefault(a["labels"]["model"], at)
        except Exception:
            self.bad += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    s = DriftlineSettings()
    schema, tenant = f"bench_alerting_{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:6]}"
    topic = f"bench.drift.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_kwargs(s.kafka))
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, 1)])
    db = Database(s.postgres, schema, migrations_dir=MIGRATIONS)
    await db.start()
    producer = EventProducer(s.kafka)
    await producer.start()
    receiver, port = Receiver(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    rt = AlertingRuntime(
        AlertingOptions(tick_s=1.0),
        Store(db),
        producer,
        AuditEmitter(producer, "alerting"),
        topics={topic: "drift"},
    )
    try:
        await rt.start()
        cfg = AlertingConfig.model_validate(
            {
                "route": {"receiver": "hook", "group_wait_s": 0, "group_by": ["model"]},
                "receivers": [
                    {
                        "name": "hook",
                        "type": "webhook",
                        "url": f"http://127.0.0.1:{port}/",
                        "secrets": [SECRET],
                    }
                ],
            }
        )
        await rt.store.put_config(tenant, cfg, "bench")
        rt.configs = await rt.store.configs()

        # evaluation: batches of 500 results of 25 features against the default rules
        t0, n, end = time.perf_counter(), 0, 1.8e9
        rng = np.random.default_rng(1)
        for b in range(20):
            batch = [
                Message(
                    topic,
                    0,
                    b * 500 + i,
                    None,
                    0,
                    result(tenant, f"eval-{i % 50}", end + b * 300, float(rng.random() < 0.1)),
                )
                for i in range(500)
            ]
            await rt.handle(batch)
            n += len(batch)
        eval_s = time.perf_counter() - t0

        # latency: one new model per sample, so each alert is a new group sent at once
        loop = ConsumerLoop(
            s.kafka,
            topics=[topic],
            group_id=f"{schema}-g",
            handler=rt.handle,
            dlq=producer,
            models={topic: DriftResult},
            poll_timeout_ms=100,
        )
        await loop.start()
        running = asyncio.create_task(loop.run())
        sent: dict[str, float] = {}
        # CPU seconds of this process over the latency phase (alerting, and the bench's own
        # producer and receiver, which share it): on a loaded box a result that needs more
        # than the 30 ms between sends queues behind the one before, and the wall-clock
        # percentiles measure the machine's load as much as the path
        c0, w0 = time.process_time(), time.perf_counter()
        for i in range(SAMPLES):
            model = f"lat-{i}"
            r = result(tenant, model, 1.9e9, 0.8)
            sent[model] = time.perf_counter()
            await producer.send(r, topic=topic)
            await asyncio.sleep(0.03)
        for _ in range(300):  # bounded wait for the last receipts
            if len([m for m in sent if m in receiver.seen]) >= SAMPLES:
                break
            await asyncio.sleep(0.1)
        cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
        await loop.stop()
        running.cancel()
        lat = np.array(
            [(receiver.seen[m] - t) * 1000 for m, t in sent.items() if m in receiver.seen]
        )
        figures = {
            "alert_eval_results_per_s": n / eval_s,
            "alert_latency_ms_p50": float(np.percentile(lat, 50)),
            "alert_latency_ms_p99": float(np.percentile(lat, 99)),
            "alert_latency_samples": int(lat.size),
            "alert_latency_phase_cpu_ms_per_alert": 1000 * cpu_s / SAMPLES,
            "alert_latency_phase_cpu_share": cpu_s / wall_s,
            "alert_latency_missing": SAMPLES - int(lat.size),
            "alert_bad_signatures": receiver.bad,
        }
        table("Alerting", figures)
        record("alerting", figures)
    finally:
        await rt.stop()
        server.should_exit = True
        await serving
        await producer.stop()
        await db.stop()
        conn = await asyncpg.connect(s.postgres.dsn())
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
        await admin.delete_topics([topic])
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
