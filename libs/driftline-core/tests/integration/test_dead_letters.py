"""Poison records (bad JSON, wrong schema) land in the DLQ with reason, topic, partition
and offset; the next good record is processed and everything is committed."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftline_core.errors import InvalidEventError, RetriableError
from driftline_core.events import DeadLetter, PredictionEvent, decode
from driftline_core.kafka import ConsumerLoop, EventProducer, Message, RetryPolicy
from driftline_core.kafka.config import client_kwargs


def prediction(**kw: object) -> PredictionEvent:
    base = {
        "tenant_id": "acme",
        "model_id": "credit",
        "model_version": "1",
        "features": {"age": 41, "income": 5.2e4},
        "prediction": 0.7,
    }
    return PredictionEvent.model_validate(base | kw)


async def read_dlq(stack, topic: str, *, source: str, expect: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_kwargs(stack.kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < expect:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        d = decode(DeadLetter, r.value)
                        if d.source == source:
                            found.append(d)
    finally:
        await consumer.stop()
    return found


async def test_poison_records_go_to_dlq_with_reason_and_offset_and_good_ones_are_processed(
    stack, new_topic, unique, wait_until
):
    topic = await new_topic("poison")
    dlq_topic = await new_topic("dlq")
    group = unique("poison")
    producer = EventProducer(stack.kafka)
    await producer.start()
    good_before, good_after = prediction(), prediction(model_version="2")
    bad_json = b'{"tenant_id": "acme", "model_id": '
    wrong_schema = orjson.dumps({"tenant_id": "acme", "model_id": "credit", "features": "no"})
    offsets = []
    for value in (
        orjson.dumps(good_before.model_dump(mode="json")),
        bad_json,
        wrong_schema,
        orjson.dumps(good_after.model_dump(mode="json")),
    ):
        offsets.append((await producer.send_raw(topic, value, key=b"acme:credit")).offset)

    seen: list[PredictionEvent] = []

    async def handle(batch: list[Message[PredictionEvent]]) -> None:
        seen.extend(m.value for m in batch)

    dlq = EventProducer(stack.kafka)
    await dlq.start()
    loop = ConsumerLoop(
        stack.kafka,
        topics=[topic],
        group_id=group,
        handler=handle,
        dlq=dlq,
        dlq_topic=dlq_topic,
        models={topic: PredictionEvent},
    )
    await loop.start()
    try:

        async def all_covered() -> bool:
            await loop.run_once()
            tp = TopicPartition(topic, 0)
            return (await loop.consumer.committed(tp)) == offsets[-1] + 1

        await wait_until(all_covered, timeout=30)
    finally:
        await loop.stop()
        await dlq.stop()
        await producer.stop()

    assert [e.event_id for e in seen] == [good_before.event_id, good_after.event_id]
    letters = sorted(
        await read_dlq(stack, dlq_topic, source=group, expect=2),
        key=lambda d: d.source_offset or -1,
    )
    assert [(d.source_topic, d.source_partition, d.source_offset) for d in letters] == [
        (topic, 0, offsets[1]),
        (topic, 0, offsets[2]),
    ]
    assert letters[0].error_type == "invalid_json"
    assert "invalid JSON" in letters[0].reason
    assert letters[0].raw_payload() == bad_json
    assert letters[1].error_type == "schema_mismatch"
    assert "features" in letters[1].reason
    assert "model_version" in letters[1].reason
    assert letters[1].tenant_id == "acme"
    assert letters[1].source_key == "acme:credit"


async def test_handler_errors_retriable_are_retried_and_permanent_ones_isolate_the_record(
    stack, new_topic, unique, wait_until
):
    topic = await new_topic("handler")
    dlq_topic = await new_topic("dlq")
    group = unique("handler")
    producer = EventProducer(stack.kafka)
    await producer.start()
    events = [prediction(model_version=str(i)) for i in range(5)]
    await producer.send_many(events, topic=topic)
    poison_id = events[2].event_id
    flaky = {"left": 2}
    processed: list[str] = []

    async def handle(batch: list[Message[PredictionEvent]]) -> None:
        if flaky["left"] > 0:
            flaky["left"] -= 1
            raise RetriableError("database briefly unavailable")
        if any(m.value.event_id == poison_id for m in batch):
            raise InvalidEventError(f"model version {events[2].model_version} is unknown")
        processed.extend(m.value.model_version for m in batch)

    dlq = EventProducer(stack.kafka)
    await dlq.start()
    loop = ConsumerLoop(
        stack.kafka,
        topics=[topic],
        group_id=group,
        handler=handle,
        dlq=dlq,
        dlq_topic=dlq_topic,
        models={topic: PredictionEvent},
        retry=RetryPolicy(initial_s=0.01, max_s=0.05),
    )
    await loop.start()
    try:

        async def done() -> bool:
            await loop.run_once()
            return len(processed) == 4

        await wait_until(done, timeout=30)
    finally:
        await loop.stop()
        await dlq.stop()
        await producer.stop()

    assert processed == ["0", "1", "3", "4"]
    assert flaky["left"] == 0
    [letter] = await read_dlq(stack, dlq_topic, source=group, expect=1)
    assert letter.error_type == "InvalidEventError"
    assert "unknown" in letter.reason
    assert letter.source_offset == 2
    assert decode(PredictionEvent, letter.raw_payload()).event_id == poison_id
