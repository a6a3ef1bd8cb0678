"""Issue 14 defect 9, against the real broker: a 900 KB binary record on a control topic
gets a DLQ copy that fits, the consumer goes on and handles the next valid record; a DLQ
write the broker refuses for good (MESSAGE_TOO_LARGE, not retriable) is not retried
forever: the letter goes without its payload, or the consumer stops with the error."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from driftline_core.errors import RefusedError
from driftline_core.events import DeadLetter, RegistryChange, decode, encode
from driftline_core.kafka import ConsumerLoop, EventProducer, Message, RetryPolicy
from driftline_core.kafka.config import client_kwargs
from driftline_core.observability.metrics import CoreMetrics


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
                    found.extend(
                        d for r in records if (d := decode(DeadLetter, r.value)).source == source
                    )
    finally:
        await consumer.stop()
    return found


def change(model: str) -> RegistryChange:
    return RegistryChange(
        tenant_id="acme", model_id=model, change="model_registered", actor="test", details={}
    )


@contextlib.asynccontextmanager
async def topic_with(stack, name: str, **configs: str) -> AsyncIterator[str]:
    admin = AIOKafkaAdminClient(**client_kwargs(stack.kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


async def consume(stack, topic, dlq_topic, group, seen, metrics=None):  # type: ignore[no-untyped-def]
    async def handle(batch: list[Message[RegistryChange]]) -> None:
        seen.extend(m.value.model_id for m in batch)

    dlq = EventProducer(stack.kafka)
    await dlq.start()
    loop = ConsumerLoop(
        stack.kafka,
        topics=[topic],
        group_id=group,
        handler=handle,
        dlq=dlq,
        dlq_topic=dlq_topic,
        models={topic: RegistryChange},
        metrics=metrics,
        retry=RetryPolicy(initial_s=0.05, max_s=0.2),
    )
    await loop.start()
    return loop, dlq


async def publish(stack, topic: str, values: list[bytes]) -> list[int]:
    producer = EventProducer(stack.kafka)
    await producer.start()
    try:
        return [(await producer.send_raw(topic, v, key=b"acme")).offset for v in values]
    finally:
        await producer.stop()


async def test_a_900_kb_binary_record_on_a_control_topic_is_dead_lettered_and_the_consumer_goes_on(
    stack, new_topic, unique, wait_until
):
    topic, dlq_topic, group = await new_topic("registry"), await new_topic("dlq"), unique("g")
    poison = os.urandom(900 * 1024)
    offsets = await publish(
        stack, topic, [encode(change("before")), poison, encode(change("after"))]
    )
    metrics = CoreMetrics(CollectorRegistry(), "test")
    seen: list[str] = []
    loop, dlq = await consume(stack, topic, dlq_topic, group, seen, metrics)
    task = asyncio.create_task(loop.run())
    try:

        async def covered() -> bool:
            assert not task.done(), task
            return await loop.consumer.committed(TopicPartition(topic, 0)) == offsets[-1] + 1

        await wait_until(covered, timeout=30)
    finally:
        await loop.stop()
        await asyncio.gather(task, return_exceptions=True)
        await dlq.stop()
    assert seen == ["before", "after"]
    [letter] = await read_dlq(stack, dlq_topic, source=group, expect=1)
    assert (letter.source_topic, letter.source_offset, letter.error_type) == (
        topic,
        offsets[1],
        "invalid_json",
    )
    assert letter.payload_truncated
    assert letter.payload_size == len(poison)
    assert letter.payload_sha256 == hashlib.sha256(poison).hexdigest()
    assert poison.startswith(letter.raw_payload())
    assert len(encode(letter)) <= dlq.max_record_bytes
    assert metrics.dlq_records.labels(topic, "invalid_json")._value.get() == 1


async def test_a_dlq_letter_the_broker_refuses_as_too_large_goes_without_its_payload(
    stack, new_topic, unique, wait_until
):
    topic, group = await new_topic("registry"), unique("g")
    poison = b"{" + os.urandom(50_000)  # its letter (~67 KB) is over the DLQ topic's limit
    async with topic_with(stack, unique("test.dlq"), **{"max.message.bytes": "8192"}) as dlq_topic:
        offsets = await publish(stack, topic, [poison, encode(change("after"))])
        seen: list[str] = []
        loop, dlq = await consume(stack, topic, dlq_topic, group, seen)
        task = asyncio.create_task(loop.run())
        try:

            async def covered() -> bool:
                assert not task.done(), task
                return await loop.consumer.committed(TopicPartition(topic, 0)) == offsets[-1] + 1

            await wait_until(covered, timeout=30)
        finally:
            await loop.stop()
            await asyncio.gather(task, return_exceptions=True)
            await dlq.stop()
        assert seen == ["after"]
        [letter] = await read_dlq(stack, dlq_topic, source=group, expect=1)
    assert letter.source_offset == offsets[0]
    assert letter.payload == ""
    assert letter.payload_truncated
    assert letter.payload_sha256 == hashlib.sha256(poison).hexdigest()


async def test_a_dlq_the_broker_refuses_for_good_stops_the_consumer_instead_of_retrying_forever(
    stack, new_topic, unique
):
    topic, group = await new_topic("registry"), unique("g")
    async with topic_with(stack, unique("test.dlq"), **{"max.message.bytes": "64"}) as dlq_topic:
        await publish(stack, topic, [b"not json", encode(change("after"))])
        seen: list[str] = []
        loop, dlq = await consume(stack, topic, dlq_topic, group, seen)
        started = time.monotonic()
        try:
            with pytest.raises(RefusedError, match="refused"):
                await asyncio.wait_for(loop.run(), 60)
            took = time.monotonic() - started
            assert isinstance(loop.runtime.failure, RefusedError)
            assert await loop.consumer.committed(TopicPartition(topic, 0)) is None
        finally:
            await loop.stop()
            await dlq.stop()
    assert seen == ["after"]  # handled, but not committed without the DLQ copy
    assert took < 30  # not a retry loop
