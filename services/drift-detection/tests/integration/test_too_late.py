"""Issue 18: events that come after their window closed are never silently skipped. Against
the real stack, on per-event and on batch records: each too-late event goes to
driftline.dlq.v1 alone with the reason `too_late` (and its window named), is counted in
`driftline_events_too_late`, and is in no window; a label too late for its performance
window goes there too."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from driftline_core.events import DeadLetter, DriftResult, PerformanceResult, decode


@pytest.mark.parametrize("record_format", ["events", "batch"])
async def test_events_too_late_for_their_window_go_to_the_dlq_with_the_reason(
    pipeline, run_pipeline, window_start, topic_reader, record_format
):
    pipeline.record_format = record_format
    dlq_topic = await topic_reader(DeadLetter.TOPIC)
    drift_topic = await topic_reader("driftline.drift.v1")
    await pipeline.register()
    async with run_pipeline(pipeline) as (processors, _influx):
        await pipeline.send(window_start, 200, seed=3)
        await pipeline.send(window_start + 120, 10, seed=4)  # closes the first window

        def mine(rs):
            return [
                d for r in rs if (d := decode(DriftResult, r.value)).tenant_id == pipeline.tenant
            ]

        [first] = mine(await drift_topic.read(until=lambda rs: len(mine(rs)) >= 1, timeout=60))
        assert first.window.events == 200
        late_ids = set(await pipeline.send(window_start, 30, seed=5))  # its window is closed
        on_time = await pipeline.send(window_start + 125, 5, seed=6)
        group = processors[0].group_id

        def letters(rs):
            return [
                d
                for r in rs
                if (d := decode(DeadLetter, r.value)).source == group and d.error_type == "too_late"
            ]

        found = letters(await dlq_topic.read(until=lambda rs: len(letters(rs)) >= 30, timeout=60))
        assert len(found) == 30
        ids = {orjson.loads(d.raw_payload())["event_id"] for d in found}
        assert ids == late_ids  # each one, alone, with its own payload
        for d in found:
            assert d.tenant_id == pipeline.tenant
            assert d.source_topic == pipeline.predictions
            assert "too late" in d.reason
            start = datetime.fromtimestamp(window_start, UTC).isoformat()
            assert start in d.reason  # names the closed window
        manager = processors[0].manager  # type: ignore[attr-defined]
        assert manager.too_late == 30  # driftline_events_too_late
        assert processors[0].events_counted == 200 + 10 + len(on_time)  # type: ignore[attr-defined]
        open_windows = [w for w in manager.windows.values() if w.key[0] == pipeline.tenant]
        assert sum(w.events for w in open_windows) == 15
        assert processors[0].runtime.failure is None


async def test_a_label_too_late_for_its_performance_window_goes_to_the_dlq(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    dlq_topic = await topic_reader(DeadLetter.TOPIC)
    perf_topic = await topic_reader("driftline.performance.v1")
    await pipeline.register(task="classification", classes={"classes": [0, 1], "positive_class": 1})
    key = f"{pipeline.tenant}:m".encode()
    async with run_pipeline(pipeline, labels=True) as (processors, _influx):
        ids = await pipeline.send(window_start, 60, seed=6, positive_share=0.5)
        outputs = dict(pipeline.last_outputs)
        drift, labels = processors[0], processors[-1]

        async def counted() -> bool:
            return drift.events_counted >= 60  # type: ignore[attr-defined,no-any-return]

        await wait_until(counted, timeout=60)
        label_start = window_start + 3600

        def actual(i: str, t: float) -> bytes:
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
            )

        for k, i in enumerate(ids[:50]):
            await pipeline.producer.send_raw(pipeline.actuals, actual(i, label_start + k), key=key)
        # a label far later closes the first performance window
        await pipeline.producer.send_raw(
            pipeline.actuals, actual(ids[50], label_start + 400), key=key
        )

        def windows(rs):
            return [
                r
                for r in (decode(PerformanceResult, x.value) for x in rs)
                if r.tenant_id == pipeline.tenant and r.kind == "window_metrics" and not r.segment
            ]

        [first] = windows(await perf_topic.read(until=lambda rs: bool(windows(rs)), timeout=60))
        assert first.labelled == 50
        late = await pipeline.producer.send_raw(
            pipeline.actuals, actual(ids[51], label_start + 10), key=key
        )

        def letters(rs):
            return [
                d
                for r in rs
                if (d := decode(DeadLetter, r.value)).source == labels.group_id
                and d.error_type == "too_late"
            ]

        [d] = letters(await dlq_topic.read(until=lambda rs: bool(letters(rs)), timeout=60))
        assert d.source_offset == late.offset
        assert "too late" in d.reason
        assert orjson.loads(d.raw_payload())["prediction_event_id"] == ids[51]
        assert labels.labels_too_late == 1  # type: ignore[attr-defined]
