"""Issue 14 defects 9, 10 and 11 (the stream half), against the real stack: records with
wrong types, a 900 KB binary record and a NUL in a model version sit beside valid events in
one poll. Only the bad ones go to the DLQ, each with its reason; every valid neighbour is
counted in its window; the checkpoint goes on past all of them."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson

from driftline_core.events import DeadLetter, DriftResult, decode


def event(tenant: str, t: float, **change: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "tenant_id": tenant,
            "occurred_at": datetime.fromtimestamp(t, UTC).isoformat(),
            "produced_at": datetime.now(UTC).isoformat(),
            "model_id": "m",
            "model_version": "1",
            "features": {f"x{i}": float(i) for i in range(6)} | {"c": "a"},
            "prediction": 0.5,
        }
        | change
    )


async def test_bad_records_beside_valid_ones_go_alone_to_the_dlq_and_the_neighbours_count(
    stack, pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    dlq_topic = await topic_reader(DeadLetter.TOPIC)
    drift_topic = await topic_reader("driftline.drift.v1")
    await pipeline.register()
    key = f"{pipeline.tenant}:m".encode()
    poison = os.urandom(900 * 1024)
    bad = {
        "occurred_at": event(pipeline.tenant, window_start + 5, occurred_at="yesterday at noon"),
        "features": event(pipeline.tenant, window_start + 5, features=[1, 2, 3]),
        "NUL": event(pipeline.tenant, window_start + 5, model_version="1\u0000x"),
        "invalid JSON": poison,
    }
    async with run_pipeline(pipeline) as (processors, _influx):
        await pipeline.send(window_start, 300, seed=3)
        offsets = {}
        for what, value in bad.items():
            offsets[what] = (
                await pipeline.producer.send_raw(pipeline.predictions, value, key=key)
            ).offset
        await pipeline.send(window_start, 200, seed=4)
        await pipeline.send(window_start + 120, 10, seed=5)  # closes the first window

        def mine(rs):
            return [
                d for r in rs if (d := decode(DriftResult, r.value)).tenant_id == pipeline.tenant
            ]

        [result] = mine(await drift_topic.read(until=lambda rs: len(mine(rs)) >= 1, timeout=60))
        assert result.window.start.timestamp() == window_start
        assert result.window.events == 500  # every valid neighbour counted, once
        group = processors[0].group_id

        def letters(rs):
            return [d for r in rs if (d := decode(DeadLetter, r.value)).source == group]

        found = letters(await dlq_topic.read(until=lambda rs: len(letters(rs)) >= 4, timeout=30))
        by_offset = {d.source_offset: d for d in found}
        assert len(found) == 4
        assert sorted(by_offset) == sorted(offsets.values())
        for what, offset in offsets.items():
            d = by_offset[offset]
            assert what in d.reason, (what, d.reason)
            assert d.source_topic == pipeline.predictions
            assert len(d.model_dump_json()) < 256 * 1024
        big = by_offset[offsets["invalid JSON"]]
        assert big.error_type == "invalid_json"
        assert big.payload_truncated
        assert big.payload_sha256 == hashlib.sha256(poison).hexdigest()
        assert by_offset[offsets["NUL"]].error_type == "unstorable_text"
        assert by_offset[offsets["features"]].raw_payload() == bad["features"]

        async def checkpointed_past_them() -> bool:
            conn = await asyncpg.connect(stack.postgres.dsn())
            try:
                rows = await conn.fetch(
                    f'SELECT sum(next_offset) AS n FROM "{pipeline.schema}".offsets '
                    "WHERE group_id = $1",
                    group,
                )
            finally:
                await conn.close()
            return rows[0]["n"] == pipeline.records_sent + len(bad)  # 300 + 4 + 200 + 10

        await wait_until(checkpointed_past_them, timeout=30)
        assert processors[0].runtime.failure is None


async def test_bad_labels_beside_valid_ones_go_alone_to_the_dlq_and_the_neighbours_count(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    import inspect

    from driftline_core.events import PerformanceResult

    dlq_topic = await topic_reader(DeadLetter.TOPIC)
    perf_topic = await topic_reader("driftline.performance.v1")
    contract = {"classes": [0, 1], "positive_class": 1}
    extra = (
        {"classes": contract}
        if "classes" in inspect.signature(pipeline.register).parameters
        else {}
    )
    await pipeline.register(task="classification", **extra)
    key = f"{pipeline.tenant}:m".encode()
    async with run_pipeline(pipeline, labels=True) as (processors, _influx):
        ids = await pipeline.send(window_start, 100, seed=6, positive_share=0.5)
        outputs = dict(pipeline.last_outputs)
        drift, labels = processors[0], processors[-1]

        async def counted() -> bool:
            return drift.events_counted >= 100  # type: ignore[attr-defined,no-any-return]

        await wait_until(counted, timeout=60)
        label_start = window_start + 3600

        def actual(k: int, i: str, t: float, **change: object) -> bytes:
            return orjson.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "schema_version": 1,
                    "tenant_id": pipeline.tenant,
                    "occurred_at": datetime.fromtimestamp(t, UTC).isoformat(),
                    "produced_at": datetime.now(UTC).isoformat(),
                    "model_id": "m",
                    "prediction_event_id": i,
                    "actual": outputs[i]["prediction"],
                }
                | change
            )

        good = [actual(k, i, label_start + k * 0.5) for k, i in enumerate(ids)]
        poison = os.urandom(900 * 1024)
        bad = {
            "occurred_at": actual(0, ids[0], label_start, occurred_at="yesterday at noon"),
            "prediction_event_id": actual(0, ids[1], label_start, prediction_event_id=7),
            "invalid JSON": poison,
        }
        records = [(key, v) for v in good[:50]]
        records += [(key, v) for v in bad.values()]
        records += [(key, v) for v in good[50:]]
        records.append((key, actual(0, ids[0], label_start + 190)))  # closes the first window
        offsets = []
        for k, v in records:
            offsets.append((await pipeline.producer.send_raw(pipeline.actuals, v, key=k)).offset)

        def windows(rs):
            return [
                r
                for r in (decode(PerformanceResult, x.value) for x in rs)
                if r.tenant_id == pipeline.tenant and r.kind == "window_metrics" and not r.segment
            ]

        [first] = windows(await perf_topic.read(until=lambda rs: bool(windows(rs)), timeout=60))
        assert first.labelled == 100  # every valid neighbour joined and counted
        assert first.metrics["accuracy"] == 1.0

        def letters(rs):
            return [d for r in rs if (d := decode(DeadLetter, r.value)).source == labels.group_id]

        found = letters(await dlq_topic.read(until=lambda rs: len(letters(rs)) >= 3, timeout=30))
    assert sorted(d.source_offset for d in found) == offsets[50:53]
    for d, what in zip(sorted(found, key=lambda d: d.source_offset), bad, strict=True):
        assert what in d.reason, (what, d.reason)
    assert max(len(d.model_dump_json()) for d in found) < 256 * 1024
