"""The shared consumer runtime under ConsumerLoop, with an in-memory consumer: a failed
batch is polled again from its first offset, never skipped; only retriable errors are
retried; a poison record's DLQ copy always fits; a DLQ write Kafka refuses is not
retried forever."""

from __future__ import annotations

import asyncio
import hashlib
import os

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from driftline_core.errors import RefusedError, UnavailableError
from driftline_core.events import DeadLetter, PredictionEvent, decode
from driftline_core.kafka import ConsumerLoop, Message, RetryPolicy, consumers_check
from driftline_core.kafka.testing import FakeConsumer, FakeProducer
from driftline_core.settings import KafkaSettings

TOPIC, DLQ = "preds", "dlq"
FAST = RetryPolicy(initial_s=0.001, max_s=0.002)


def event(i: int) -> bytes:
    return orjson.dumps(
        {
            "tenant_id": "acme",
            "model_id": "m",
            "model_version": str(i),
            "features": {"x": i},
            "prediction": 0.5,
        }
    )


def loop_over(
    consumer: FakeConsumer, producer: FakeProducer, seen: list[str], fail: list[BaseException]
) -> ConsumerLoop[PredictionEvent]:
    async def handle(batch: list[Message[PredictionEvent]]) -> None:
        if fail:
            raise fail.pop(0)
        seen.extend(m.value.model_version for m in batch)

    loop = ConsumerLoop(
        KafkaSettings(),
        topics=[TOPIC],
        group_id="g",
        handler=handle,
        dlq=producer,  # type: ignore[arg-type]
        dlq_topic=DLQ,
        models={TOPIC: PredictionEvent},
        retry=FAST,
        consumer_factory=consumer,
    )
    loop.runtime.backoff = FAST
    return loop


async def run_until(loop: ConsumerLoop[PredictionEvent], done, limit: int = 200) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(loop.run())
    try:
        for _ in range(limit):
            if done() or task.done():
                break
            await asyncio.sleep(0.005)
    finally:
        await loop.stop()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_whose_commit_fails_is_polled_again_from_its_first_offset():
    consumer, producer, seen = FakeConsumer(batch=2), FakeProducer(), []
    for i in range(6):
        consumer.append(TOPIC, event(i))
    loop = loop_over(consumer, producer, seen, [])
    await loop.start()
    real_commit = consumer.commit
    failed: list[dict[TopicPartition, int]] = []

    async def flaky_commit(offsets: dict[TopicPartition, int] | None = None) -> None:
        if offsets and list(offsets.values()) == [4] and not failed:
            failed.append(offsets)
            raise KafkaConnectionError("coordinator gone")
        await real_commit(offsets)

    consumer.commit = flaky_commit  # type: ignore[method-assign]
    await run_until(loop, lambda: consumer.commits.get(TopicPartition(TOPIC, 0)) == 6)
    assert failed, "the commit of the second batch was made to fail"
    assert (TopicPartition(TOPIC, 0), 2) in consumer.seeks  # back to the batch's first offset
    # at-least-once: the failed batch is handled again; nothing is skipped
    assert sorted(set(seen)) == [str(i) for i in range(6)]
    assert seen == ["0", "1", "2", "3", "2", "3", "4", "5"]


async def test_a_non_retriable_kafka_error_stops_the_runtime_instead_of_retrying_forever():
    consumer, producer, seen = FakeConsumer(), FakeProducer(), []
    consumer.append(TOPIC, event(0))
    consumer.poll_errors = [TopicAuthorizationFailedError()] * 50
    loop = loop_over(consumer, producer, seen, [])
    await loop.start()
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(loop.run(), 5)
    assert consumer.polls == 1
    assert isinstance(loop.runtime.failure, TopicAuthorizationFailedError)
    with pytest.raises(UnavailableError, match="stopped"):  # /readyz says so
        await consumers_check(loop.runtime).probe()
    assert seen == []
    await loop.stop()


async def test_retriable_kafka_errors_are_retried_until_they_pass():
    consumer, producer, seen = FakeConsumer(), FakeProducer(), []
    consumer.append(TOPIC, event(0))
    consumer.poll_errors = [KafkaConnectionError(), KafkaConnectionError()]
    loop = loop_over(consumer, producer, seen, [])
    await loop.start()
    await run_until(loop, lambda: seen == ["0"])
    assert seen == ["0"]
    assert loop.runtime.failure is None
    await consumers_check(loop.runtime).probe()
    assert consumer.polls >= 3


async def test_a_900_kb_binary_record_gets_a_dlq_copy_that_fits_and_the_next_record_is_handled():
    consumer, seen = FakeConsumer(batch=3), []
    producer = FakeProducer(max_record_bytes=256 * 1024 - 512)  # refuses larger, like Kafka
    poison = os.urandom(900 * 1024)
    consumer.append(TOPIC, event(0))
    consumer.append(TOPIC, poison, key=b"acme:m")
    consumer.append(TOPIC, event(2))
    consumer.append(TOPIC, event(3))
    loop = loop_over(consumer, producer, seen, [])
    await loop.start()
    await run_until(loop, lambda: consumer.commits.get(TopicPartition(TOPIC, 0)) == 4)
    assert seen == ["0", "2", "3"]
    [raw] = producer.values(DLQ)
    assert len(raw) <= producer.max_record_bytes
    letter = decode(DeadLetter, raw)
    assert (letter.source_topic, letter.source_offset, letter.error_type) == (
        TOPIC,
        1,
        "invalid_json",
    )
    assert letter.payload_truncated
    assert letter.payload_encoding == "base64"
    assert letter.payload_size == len(poison)
    assert letter.payload_sha256 == hashlib.sha256(poison).hexdigest()
    assert poison.startswith(letter.raw_payload())
    assert len(letter.raw_payload()) > 64 * 1024


async def test_a_dlq_write_refused_for_good_is_not_retried_forever():
    consumer, seen = FakeConsumer(), []
    producer = FakeProducer()
    producer.errors = [RefusedError("DLQ topic: authorisation failed")] * 100
    consumer.append(TOPIC, b"not json")
    consumer.append(TOPIC, event(1))
    loop = loop_over(consumer, producer, seen, [])
    await loop.start()
    with pytest.raises(RefusedError):
        await asyncio.wait_for(loop.run(), 5)
    assert producer.attempts == 2  # the letters, then once without payloads: no retry loop
    assert consumer.commits == {}  # not committed without its DLQ copy
    await loop.stop()


async def test_a_dlq_write_that_fails_retriably_is_retried_and_nothing_is_lost():
    consumer, seen = FakeConsumer(), []
    producer = FakeProducer()
    producer.errors = [UnavailableError("broker down"), UnavailableError("broker down")]
    consumer.append(TOPIC, b"not json")
    consumer.append(TOPIC, event(1))
    loop = loop_over(consumer, producer, seen, [])
    await loop.start()
    await run_until(loop, lambda: consumer.commits.get(TopicPartition(TOPIC, 0)) == 2)
    assert len(producer.values(DLQ)) == 1
    assert seen == ["1"]


def test_dead_letters_of_any_size_fit_and_say_what_they_cut():
    for raw in (os.urandom(900 * 1024), ("\x01" * 400_000).encode(), b"x" * 2_000_000):
        letter = DeadLetter.of_record(raw, reason="r" * 10_000, error_type="e", source="g")
        from driftline_core.events import encode

        size = len(encode(letter))
        assert size < 200 * 1024, size
        assert letter.payload_truncated
        assert letter.payload_size == len(raw)
        assert letter.payload_sha256 == hashlib.sha256(raw).hexdigest()
        assert raw.startswith(letter.raw_payload())
        assert len(letter.reason) <= 2000
        small = letter.shrunk(8 * 1024)
        assert len(encode(small)) <= 8 * 1024
        assert small.payload_sha256 == letter.payload_sha256
    whole = DeadLetter.of_record(b'{"a": 1}', reason="r", error_type="e", source="g")
    assert not whole.payload_truncated
    assert whole.raw_payload() == b'{"a": 1}'
    # built the old way (wrap_payload + constructor): cut too, the original still described
    raw = os.urandom(500 * 1024)
    payload, enc = DeadLetter.wrap_payload(raw)
    old_way = DeadLetter(
        reason="r", error_type="e", source="g", payload=payload, payload_encoding=enc
    )
    assert old_way.payload_truncated
    assert old_way.payload_size == len(raw)
    assert old_way.payload_sha256 == hashlib.sha256(raw).hexdigest()


class GatedConsumer(FakeConsumer):
    """A poll that waits at `gate`: the records it returns were fetched before `stop()`."""

    def __init__(self) -> None:
        super().__init__(batch=2)
        self.gate, self.polling = asyncio.Event(), asyncio.Event()
        self.stopped_with: dict[TopicPartition, int] | None = None  # commits when it left

    async def getmany(self, *partitions, timeout_ms=0, max_records=None):  # type: ignore[no-untyped-def]
        self.polling.set()
        await self.gate.wait()
        return await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)

    async def stop(self) -> None:
        self.stopped_with = dict(self.commits)


async def test_records_polled_while_stop_begins_are_not_handled_after_the_member_left():
    """The services' order (stop(), then cancel the task running run()): a poll in progress
    when stop() is called returns records after the consumer began leaving the group. They
    must not be handled (their effect would be repeated by the partition's next owner, with
    no commit of ours): stop() waits for the loop, the loop drops them, nothing is committed."""
    consumer = GatedConsumer()
    consumer.append(TOPIC, event(0))
    consumer.append(TOPIC, event(1))
    seen: list[str] = []
    loop = loop_over(consumer, FakeProducer(), seen, [])
    await loop.start()
    await consumer.rebalance()  # partitions assigned before the poll
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(consumer.polling.wait(), 5)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop() returned while the loop still held a poll"
    consumer.gate.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert seen == [], "records polled after stop() began were handled"
    assert consumer.commits == {}
    assert consumer.stopped_with == {}


async def test_stop_during_a_batch_commits_it_before_the_member_leaves():
    """stop() while the handler runs: the batch finishes, is committed, and only then the
    consumer stops (leaves the group), so the next owner starts right after it."""
    consumer = GatedConsumer()
    consumer.gate.set()
    for i in range(4):
        consumer.append(TOPIC, event(i))
    in_handler, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []
    loop = loop_over(consumer, FakeProducer(), seen, [])

    async def slow(batch: list[Message[PredictionEvent]]) -> None:
        in_handler.set()
        await release.wait()
        seen.extend(m.value.model_version for m in batch)

    loop._handler = slow
    await loop.start()
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(in_handler.wait(), 5)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop() did not wait for the batch in hand"
    release.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert seen == ["0", "1"]  # the batch in hand, and nothing polled after stop()
    assert consumer.stopped_with == {TopicPartition(TOPIC, 0): 2}


class StopCountingConsumer(FakeConsumer):
    def __init__(self) -> None:
        super().__init__(batch=2)
        self.stops = 0

    async def stop(self) -> None:
        self.stops += 1


async def test_a_loop_that_gave_up_before_stop_still_lets_the_consumer_stop():
    """A spawned loop that gave up on a Kafka refusal (its task ended with the error):
    stop() does not raise that error again, and the consumer is stopped (it leaves the
    group) instead of staying a member that holds its partitions."""
    consumer = StopCountingConsumer()
    consumer.append(TOPIC, event(0))
    consumer.poll_errors = [TopicAuthorizationFailedError()]
    loop = loop_over(consumer, FakeProducer(), [], [])
    await loop.start()
    task = loop.runtime.spawn()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert isinstance(loop.runtime.failure, TopicAuthorizationFailedError)
    await asyncio.wait_for(loop.stop(), 5)
    assert consumer.stops == 1


async def test_a_batch_that_fails_while_stopping_is_not_committed_and_is_said(caplog):
    """stop() while the handler runs, and the handler then fails (a passing fault is not
    retried once stopping): nothing of the batch is committed (the next owner handles it
    again), the consumer stops, and the failure is logged, not swallowed."""
    consumer = StopCountingConsumer()
    for i in range(2):
        consumer.append(TOPIC, event(i))
    in_handler, release = asyncio.Event(), asyncio.Event()
    loop = loop_over(consumer, FakeProducer(), [], [])

    async def failing(batch: list[Message[PredictionEvent]]) -> None:
        in_handler.set()
        await release.wait()
        raise UnavailableError("store away")

    loop._handler = failing
    await loop.start()
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(in_handler.wait(), 5)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert consumer.commits == {}
    assert consumer.stops == 1
    assert "batch failed while stopping" in caplog.text
