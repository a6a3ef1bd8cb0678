"""The checkpointed processor never polls on past a failed batch: after any error it drops
its state and restores every assigned partition from the last checkpoint, so the state
after recovery is the state of an uninterrupted run. A record that keeps failing (in
ingest, or in the checkpoint because of its data) is dead-lettered alone and stepped over.

In-memory consumer (driftline_core.kafka.testing) and an in-memory checkpoint store that
commits or discards like a transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition

from driftline_core.events import DeadLetter, decode
from driftline_core.kafka.runtime import RetryPolicy
from driftline_core.kafka.testing import FakeConsumer, FakeProducer
from driftline_core.settings import KafkaSettings
from driftline_drift_detection.stream import CheckpointedProcessor

TOPIC = "preds"


class Store:
    """Checkpoints: offsets and per-partition state, written only when a transaction ends."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, str, int], int] = {}
        self.state: dict[int, list[int]] = {}
        self.fetch_errors: list[BaseException] = []
        self.fetches = 0
        self.pool = self

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        yield Conn(self)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.fetches += 1
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        group, topic, parts = args
        return [
            {"partition": p, "next_offset": o}
            for (g, t, p), o in self.offsets.items()
            if g == group and t == topic and p in parts
        ]


class Conn:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.offsets: dict[tuple[str, str, int], int] = {}
        self.state: dict[int, list[int]] = {}

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield  # an exception inside discards what was staged
        self.store.offsets.update(self.offsets)
        self.store.state.update(self.state)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if sql.startswith("INSERT INTO offsets"):
            for g, t, p, o in rows:
                self.offsets[(g, t, p)] = o
        else:
            for p, values in rows:
                self.state[p] = list(values)


class Summer(CheckpointedProcessor):
    """State: the record values applied, per partition. `fail(offset, value)` may raise."""

    def __init__(self, store: Store, consumer: FakeConsumer, dlq: FakeProducer) -> None:
        super().__init__(
            KafkaSettings(),
            store,  # type: ignore[arg-type]
            topic=TOPIC,
            group_id="g",
            checkpoint_interval_s=0.0,
            max_poll_records=100,
            dlq=dlq,
            consumer_factory=consumer,
            backoff=RetryPolicy(initial_s=0.001, max_s=0.002),
        )
        self.store = store
        self.applied: dict[int, list[int]] = {}
        self.dirty: set[int] = set()
        self.fail: Callable[[int, int], None] = lambda offset, value: None

    async def ingest(self, partition: int, records: list[Any]) -> None:
        for r in records:
            value = int(r.value)
            self.fail(r.offset, value)
            self.applied.setdefault(partition, []).append(value)
            self.dirty.add(partition)

    async def close_ready(self) -> None:
        return None

    async def save(self, conn: asyncpg.Connection) -> None:
        rows = [(p, self.applied.get(p, [])) for p in sorted(self.dirty)]
        if any(v < 0 for _, values in rows for v in values):  # like \u0000 in a text column
            raise asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence")
        await conn.executemany("STATE", rows)

    def saved(self) -> None:
        self.dirty.clear()

    async def load(self, partitions: set[int]) -> None:
        for p in partitions:
            if p in self.store.state:
                self.applied[p] = list(self.store.state[p])

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self.applied.pop(p, None)
            self.dirty.discard(p)


def records(values: dict[int, list[int]], batch: int = 2) -> FakeConsumer:
    consumer = FakeConsumer(batch=batch)
    for p, vs in values.items():
        for v in vs:
            consumer.append(TOPIC, str(v).encode(), partition=p, key=b"acme:m")
    return consumer


async def until(done: Callable[[], bool], s: Summer, timeout_s: float = 10.0) -> None:
    """Bounded polling: until `done()`, failing if the runtime gave up or time ran out."""
    for _ in range(int(timeout_s / 0.002)):
        assert s.runtime.failure is None
        if done():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("not done in time")


async def run(
    values: dict[int, list[int]],
    fail: Callable[[int, int], None] | None = None,
    store: Store | None = None,
) -> tuple[Summer, Store, FakeProducer, FakeConsumer]:
    store = store or Store()
    consumer, dlq = records(values), FakeProducer()
    s = Summer(store, consumer, dlq)
    if fail is not None:
        s.fail = fail
    ends = {p: len(vs) for p, vs in values.items()}
    await s.start()
    try:
        await until(
            lambda: all(store.offsets.get(("g", TOPIC, p)) == n for p, n in ends.items()), s
        )
    finally:
        await s.stop()
    return s, store, dlq, consumer


def once(at: int, error: BaseException) -> Callable[[int, int], None]:
    left = [error]

    def fail(offset: int, value: int) -> None:
        if offset == at and left:
            raise left.pop()

    return fail


VALUES = {0: [10, 11, 12, 13, 14, 15]}


async def test_an_uninterrupted_run_applies_every_record_once():
    s, store, dlq, _ = await run(VALUES)
    assert s.applied == store.state == VALUES
    assert dlq.sent == []


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError("redis gone"), RuntimeError("detector blew up")],
    ids=["retriable", "not-retriable"],
)
async def test_a_failure_at_offset_k_recovers_to_the_state_of_an_uninterrupted_run(error):
    # today's stream.py logged the error and polled on: [10, 11, 14, 15] were applied
    expected, _, _, _ = await run(VALUES)
    s, store, dlq, consumer = await run(VALUES, once(2, error))
    assert s.applied == store.state == expected.applied == VALUES
    assert dlq.sent == []  # it passed on the retry: nothing dead-lettered
    assert any(offset == 2 for tp, offset in consumer.seeks)  # sought back, not polled on


async def test_every_partition_is_restored_from_the_checkpoint_after_a_failure():
    values = {0: [1, 2, 3, 4, 5, 6], 1: [7, 8, 9, 10, 11], 2: [12]}
    expected, _, _, _ = await run(values)
    s, store, _, _ = await run(values, once(3, ConnectionResetError()))
    assert s.applied == store.state == expected.applied == values


async def test_a_record_that_always_fails_to_ingest_is_dead_lettered_alone():
    def fail(offset: int, value: int) -> None:
        if value == 12:
            raise ValueError("this record breaks the detector")

    s, store, dlq, _ = await run(VALUES, fail)
    assert s.applied == store.state == {0: [10, 11, 13, 14, 15]}
    [raw] = dlq.values(DeadLetter.TOPIC)
    letter = decode(DeadLetter, raw)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (TOPIC, 0, 2)
    assert letter.error_type == "ingest_failed"
    assert "breaks the detector" in letter.reason
    assert letter.raw_payload() == b"12"
    assert letter.tenant_id == "acme"


async def test_a_record_whose_data_the_checkpoint_cannot_store_never_stops_checkpoints():
    values = {0: [10, 11, -1, 13, 14, 15], 1: [20, 21, 22]}  # -1: like "1\u0000x"
    s, store, dlq, _ = await run(values)
    assert store.state == {0: [10, 11, 13, 14, 15], 1: [20, 21, 22]}
    assert store.offsets[("g", TOPIC, 0)] == 6  # the checkpoint went on past it
    [letter] = [decode(DeadLetter, v) for v in dlq.values(DeadLetter.TOPIC)]
    assert (letter.source_partition, letter.source_offset) == (0, 2)
    assert letter.error_type == "checkpoint_failed"
    assert "CharacterNotInRepertoireError" in letter.reason
    assert s.records_dead_lettered == 1


async def test_nothing_is_polled_while_the_checkpoint_cannot_be_read():
    store = Store()
    consumer, dlq = records(VALUES), FakeProducer()
    s = Summer(store, consumer, dlq)
    failed = []

    def fail(offset: int, value: int) -> None:
        if offset == 2 and not failed:
            failed.append(consumer.polls)
            store.fetch_errors = [OSError("postgres down")] * 5  # recovery fails 5 times
            raise ConnectionResetError("redis gone")

    polls_while_down = []
    getmany = consumer.getmany

    async def watched(*a: Any, **kw: Any) -> Any:
        if store.fetch_errors:
            polls_while_down.append(consumer.polls)
        return await getmany(*a, **kw)

    consumer.getmany = watched  # type: ignore[method-assign]
    s.fail = fail
    await s.start()
    try:
        await until(lambda: store.offsets.get(("g", TOPIC, 0)) == 6, s)
    finally:
        await s.stop()
    assert failed
    assert store.fetch_errors == []
    assert store.fetches >= 6
    assert polls_while_down == []  # no poll past the failed batch while recovery failed
    assert s.applied == store.state == VALUES


async def test_a_rebalance_after_a_failure_does_not_checkpoint_the_failed_state():
    store = Store()
    consumer, dlq = records(VALUES), FakeProducer()
    s = Summer(store, consumer, dlq)
    await s.start()
    try:
        await until(lambda: store.offsets.get(("g", TOPIC, 0)) == 6, s)
        async with s.lock:
            s.applied[0].append(99)  # as a failed batch would leave it
            s._clean = False
            s.dirty.add(0)
        await consumer.rebalance()
    finally:
        await s.stop()
    assert store.state == VALUES
    assert TopicPartition(TOPIC, 0) in consumer.assignment()


async def test_a_failed_restore_at_assignment_is_retried_before_anything_is_applied():
    store = Store()
    store.offsets[("g", TOPIC, 0)] = 2  # checkpointed: 10 and 11 are in the state
    store.state[0] = [10, 11]
    store.fetch_errors = [OSError("postgres down")] * 3  # the restore at assignment fails
    consumer, dlq = records(VALUES), FakeProducer()
    s = Summer(store, consumer, dlq)
    applied_before_restore = []
    ingest = s.ingest

    async def watched(partition: int, recs: list[Any]) -> None:
        if store.fetch_errors:
            applied_before_restore.extend(r.offset for r in recs)
        await ingest(partition, recs)

    s.ingest = watched  # type: ignore[method-assign]
    await s.start()
    try:
        await until(lambda: store.offsets.get(("g", TOPIC, 0)) == 6, s)
    finally:
        await s.stop()
    assert applied_before_restore == []
    assert s.applied == store.state == VALUES  # 10, 11 from the checkpoint, once
