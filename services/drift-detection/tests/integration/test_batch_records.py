"""Batch records beside per-event records on the same topic, against the real stack: a
batch's bad events go alone to the DLQ, a malformed batch goes whole with its reason, and
every good event of either format is counted once in its window."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec
import orjson

from driftline_core.events import DeadLetter, DriftResult, decode
from driftline_core.events.batch import MAGIC, encode_batch


def features(rng, n):  # as the suite's conftest draws them (its reference's distribution)
    cols = {f"x{i}": rng.normal(i, 1 + i / 4, n) for i in range(6)}
    cat = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    return [{**{f: float(v[k]) for f, v in cols.items()}, "c": str(cat[k])} for k in range(n)]


async def test_batch_and_per_event_records_count_once_and_bad_events_go_alone_to_the_dlq(
    stack, pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    import numpy as np

    dlq_topic = await topic_reader(DeadLetter.TOPIC)
    drift_topic = await topic_reader("driftline.drift.v1")
    await pipeline.register()
    key = f"{pipeline.tenant}:m".encode()
    rows = features(np.random.default_rng(9), 400)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": window_start + 1 + k * 0.1,
            "features": f,
            "prediction": 0.5,
        }
        for k, f in enumerate(rows)
    ]
    events[10]["timestamp"] = float("inf")  # a bad event inside a good batch
    events[20]["features"] = {**events[20]["features"], "c": "a\x00b"}  # NUL
    malformed = MAGIC + msgspec.msgpack.encode(
        {
            "tenant_id": pipeline.tenant,
            "model_id": "m",
            "model_version": "1",
            "produced_at": "now",
            "event_id": ["x", "y"],
            "occurred_at": b"\x00" * 8,  # one time for two events
            "prediction": [0.5, 0.5],
        }
    )
    async with run_pipeline(pipeline) as (processors, _influx):
        await pipeline.send(window_start, 100, seed=3)  # per-event or batch (the suite's format)
        offsets = []
        for i in range(0, 400, 200):
            value = encode_batch(pipeline.tenant, "m", "1", events[i : i + 200])
            [(_, off)] = await pipeline.producer.send_records(pipeline.predictions, [(key, value)])
            offsets.append(off)
        [(_, bad_off)] = await pipeline.producer.send_records(
            pipeline.predictions, [(key, malformed)]
        )
        await pipeline.send(window_start + 120, 10, seed=5)  # closes the first window

        def mine(rs):
            return [
                d for r in rs if (d := decode(DriftResult, r.value)).tenant_id == pipeline.tenant
            ]

        [result] = mine(await drift_topic.read(until=lambda rs: len(mine(rs)) >= 1, timeout=60))
        assert result.window.start.timestamp() == window_start
        assert result.window.events == 100 + 398  # every good event counted, once
        group = processors[0].group_id

        def letters(rs):
            return [d for r in rs if (d := decode(DeadLetter, r.value)).source == group]

        found = letters(await dlq_topic.read(until=lambda rs: len(letters(rs)) >= 3, timeout=30))
        assert len(found) == 3
        by_reason = {d.reason.split(":")[0]: d for d in found}
        assert set(by_reason) == {
            "event 10 of a batch record",
            "event 20 of a batch record",
            "prediction batch of 2 events",
        }
        time_letter = by_reason["event 10 of a batch record"]
        assert time_letter.source_offset == offsets[0]
        assert "occurred_at" in time_letter.reason
        assert orjson.loads(time_letter.raw_payload())["event_id"] == events[10]["event_id"]
        assert "NUL" in by_reason["event 20 of a batch record"].reason
        whole = by_reason["prediction batch of 2 events"]
        assert whole.source_offset == bad_off
        assert "occurred_at" in whole.reason
        assert whole.raw_payload() == malformed

        async def checkpointed_past_them() -> bool:
            conn = await asyncpg.connect(stack.postgres.dsn())
            try:
                n = await conn.fetchval(
                    f'SELECT sum(next_offset) FROM "{pipeline.schema}".offsets WHERE group_id = $1',
                    group,
                )
            finally:
                await conn.close()
            return n == bad_off + 1 + (1 if pipeline.record_format == "batch" else 10)

        await wait_until(checkpointed_past_them, timeout=30)
        assert processors[0].runtime.failure is None
