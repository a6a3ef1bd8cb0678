"""The SDK against a live ingestion server and the real broker."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from driftline import AsyncClient, Client, KafkaLogger
from driftline.demo.credit import MODEL, generate
from driftline_core.events.batch import FORMAT, FORMAT_HEADER, decode_batch, is_batch


async def test_async_client_registers_logs_and_labels(live_url, admin_key, topic_reader):
    predictions = await topic_reader("driftline.predictions.v1")
    async with AsyncClient(live_url, admin_key) as c:
        await c.register_model(MODEL)
        events, _ = generate(2500, 0.0, np.random.default_rng(5))
        report = await c.log_predictions("credit-risk", "1", events, batch_size=1000)
        assert (report.accepted, report.rejected) == (2500, [])
        assert report.event_ids == [e["event_id"] for e in events]
        again = await c.log_predictions("credit-risk", "1", events[:10])
        assert again.accepted == 10  # duplicates of stored events are not errors
        labels = await c.log_actuals(
            "credit-risk",
            [{"prediction_event_id": e["event_id"], "actual": 1} for e in events[:100]],
        )
        assert labels.accepted == 100
    ids = {e["event_id"] for e in events}

    def stored_ids(rs):  # the HTTP path writes per-event records (others may write batches)
        return [orjson.loads(r.value)["event_id"] for r in rs if not is_batch(r.value)]

    stored = await predictions.read(until=lambda rs: ids <= set(stored_ids(rs)))
    assert len([i for i in stored_ids(stored) if i in ids]) == 2500


async def test_sync_client_from_another_thread(live_url, admin_key):
    def use() -> list[str]:
        with Client(live_url, admin_key) as c:
            c.create_key("worker", ["ingest"])
            return [k["name"] for k in c.list_keys()]

    assert sorted(await asyncio.to_thread(use)) == ["admin", "worker"]


async def test_kafka_logger_writes_batch_records_by_default(stack, topic_reader):
    predictions = await topic_reader("driftline.predictions.v1")
    events, _ = generate(4500, 0.0, np.random.default_rng(7))
    async with KafkaLogger("sdk-batch", stack.kafka, batch_events=2000) as logger:
        assert await logger.log_predictions("credit-risk", "1", events) == 4500
    stored = [
        r
        for r in await predictions.read(
            until=lambda rs: sum(r.key == b"sdk-batch:credit-risk" for r in rs) >= 3
        )
        if r.key == b"sdk-batch:credit-risk"
    ]
    assert all(dict(r.headers)[FORMAT_HEADER] == FORMAT for r in stored)
    batches = [decode_batch(r.value) for r in stored]
    assert [b.n for b in batches] == [2000, 2000, 500]
    assert [i for b in batches for i in b.event_id] == [e["event_id"] for e in events]
    sent = events[7]
    got = batches[0].events()[7]
    assert got["prediction"] == sent["prediction"]
    assert {k: v for k, v in got["features"].items() if v is not None} == {
        k: v for k, v in sent["features"].items() if v is not None
    }


async def test_kafka_logger_writes_the_same_schema_to_the_topic(stack, topic_reader):
    from driftline_core.events import PredictionEvent, decode

    predictions = await topic_reader("driftline.predictions.v1")
    events, _ = generate(3000, 0.0, np.random.default_rng(6))
    async with KafkaLogger("sdk-kafka", stack.kafka, record_format="events") as logger:
        assert await logger.log_predictions("credit-risk", "1", events) == 3000
    ids = {e["event_id"] for e in events}
    stored = [
        r
        for r in await predictions.read(
            until=lambda rs: sum(r.key == b"sdk-kafka:credit-risk" for r in rs) >= 3000
        )
        if r.key == b"sdk-kafka:credit-risk"
    ]
    assert {str(decode(PredictionEvent, r.value).event_id) for r in stored} == ids
