"""Kafka paths of driftline-core against the local broker: EventProducer (pydantic + orjson,
acks=all, idempotent, lz4) versus bare aiokafka sending the same bytes (the ceiling), and
the ConsumerLoop (decode + validate + commit) versus a bare consumer."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import record, table

from driftline_core.events import PredictionEvent, encode
from driftline_core.kafka import ConsumerLoop, EventProducer, Message
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

N = 50_000


def events(n: int) -> list[PredictionEvent]:
    return [
        PredictionEvent(
            tenant_id="bench",
            model_id=f"m{i % 8}",
            model_version="1",
            features={f"f{j}": float(i * j % 97) for j in range(20)},
            prediction=0.5,
            probabilities={"yes": 0.5, "no": 0.5},
        )
        for i in range(n)
    ]


async def main() -> None:
    s = KafkaSettings()
    admin = AIOKafkaAdminClient(**client_kwargs(s))
    await admin.start()
    t_bare, t_core = f"bench.bare.{uuid.uuid4().hex[:8]}", f"bench.core.{uuid.uuid4().hex[:8]}"
    await admin.create_topics([NewTopic(t_bare, 6, 1), NewTopic(t_core, 6, 1)])
    evs = events(N)
    payloads = [(e.key(), encode(e)) for e in evs]
    try:
        bare = AIOKafkaProducer(
            **client_kwargs(s),
            acks="all",
            enable_idempotence=True,
            compression_type="lz4",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await bare.start()
        t0 = time.perf_counter()
        futs = [await bare.send(t_bare, v, key=k) for k, v in payloads]
        await asyncio.gather(*futs)
        bare_s = time.perf_counter() - t0
        await bare.stop()

        core = EventProducer(s)
        await core.start()
        t0 = time.perf_counter()
        for i in range(0, N, 1000):
            await core.send_many(evs[i : i + 1000])  # what ingestion does per HTTP batch
        core_s = time.perf_counter() - t0
        await core.stop()

        # move the core events to their own topic for the consumer benchmark
        core = EventProducer(s)
        await core.start()
        await core.send_many(evs, topic=t_core)
        await core.stop()

        c = AIOKafkaConsumer(
            t_core,
            **client_kwargs(s),
            group_id=None,
            auto_offset_reset="earliest",
            max_poll_records=5000,
        )
        await c.start()
        t0, n = time.perf_counter(), 0
        while n < N:
            for recs in (await c.getmany(timeout_ms=500)).values():
                n += len(recs)
        bare_consume_s = time.perf_counter() - t0
        await c.stop()

        seen = 0

        async def handle(batch: list[Message[PredictionEvent]]) -> None:
            nonlocal seen
            seen += len(batch)

        dlq = EventProducer(s)
        await dlq.start()
        loop = ConsumerLoop(
            s,
            topics=[t_core],
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            handler=handle,
            dlq=dlq,
            models={t_core: PredictionEvent},
            max_records=5000,
        )
        await loop.start()
        t0 = time.perf_counter()
        while seen < N:
            await loop.run_once()
        loop_s = time.perf_counter() - t0
        await loop.stop()
        await dlq.stop()
    finally:
        await admin.delete_topics([t_bare, t_core])
        await admin.close()

    figures = {
        "events": N,
        "features_per_event": 20,
        "kafka_bare_produce_events_per_s": round(N / bare_s),
        "kafka_core_produce_events_per_s": round(N / core_s),
        "core_produce_vs_bare_ratio": round(bare_s / core_s, 3),
        "kafka_bare_consume_events_per_s": round(N / bare_consume_s),
        "consumer_loop_events_per_s": round(N / loop_s),
        "consumer_loop_vs_bare_ratio": round(bare_consume_s / loop_s, 3),
    }
    record("kafka_core", figures)
    table("Kafka (driftline-core vs bare aiokafka, same bytes)", figures)


if __name__ == "__main__":
    asyncio.run(main())
