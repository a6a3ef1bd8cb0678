"""The transactional outbox with two replicas relaying one table (real PostgreSQL and
Kafka): every row reaches the topic once, in the order it was written, and the table ends
empty. Without the relay's advisory lock both replicas read the same batch before either
deletes it, and the topic holds rows twice (ingestion's registry changes, CI)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from driftline_core.db import Database
from driftline_core.db.outbox import Outbox
from driftline_core.kafka import EventProducer

TABLE = """CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);"""
ROWS = 600


@pytest.fixture
async def schema(stack, unique):
    name = unique("outbox")
    yield name
    conn = await asyncpg.connect(stack.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    await conn.close()


async def test_two_replicas_relay_every_row_once_and_in_order(
    stack, schema, new_topic, topic_reader, tmp_path
):
    topic = await new_topic("outbox")  # one partition: the topic's order is the relay's
    reader = await topic_reader(topic)
    (tmp_path / "0001_outbox.sql").write_text(TABLE)
    dbs = [Database(stack.postgres, schema, migrations_dir=tmp_path) for _ in range(2)]
    producers = [EventProducer(stack.kafka) for _ in range(2)]
    for db, producer in zip(dbs, producers, strict=True):
        await db.start()
        await producer.start()
    try:
        await dbs[0].pool.executemany(
            "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
            [(topic, b"k", f"{i:05d}".encode()) for i in range(ROWS)],
        )
        relays = [Outbox(db, p) for db, p in zip(dbs, producers, strict=True)]
        sent = [0, 0]

        async def drain(i: int) -> None:
            async with asyncio.timeout(60):
                while await dbs[i].pool.fetchval("SELECT count(*) FROM outbox"):
                    sent[i] += await relays[i].flush()

        # both replicas at once, batches of at most 1,000 rows each round
        await asyncio.gather(drain(0), drain(1))
        got = [r.value for r in await reader.read(timeout=30)]  # to the end: copies too
    finally:
        for db, producer in zip(dbs, producers, strict=True):
            await producer.stop()
            await db.stop()

    assert sum(sent) == ROWS, sent
    assert got == [f"{i:05d}".encode() for i in range(ROWS)]


class SlowProducer:
    """Sends for real, then holds the answer until the test lets it through: the broker
    has the batch, the relay has not deleted it yet."""

    def __init__(self, real: EventProducer) -> None:
        self.real, self.gate, self.sends = real, asyncio.Event(), 0
        self.waiting = asyncio.Event()

    async def send_records(self, topic: str, records: list, headers=None) -> list:
        out = await self.real.send_records(topic, records)
        self.sends += 1
        self.waiting.set()
        await self.gate.wait()
        return out


async def test_a_stop_during_a_relay_round_sends_its_batch_once(
    stack, schema, new_topic, topic_reader, tmp_path
):
    """stop() lets the round in progress finish: cancelled between the broker's answer and
    the delete, its batch stayed in the table and the final flush sent it again."""
    topic = await new_topic("outbox")
    reader = await topic_reader(topic)
    (tmp_path / "0001_outbox.sql").write_text(TABLE)
    db, producer = (
        Database(stack.postgres, schema, migrations_dir=tmp_path),
        EventProducer(stack.kafka),
    )
    await db.start()
    await producer.start()
    try:
        await db.pool.executemany(
            "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
            [(topic, b"k", f"{i:05d}".encode()) for i in range(10)],
        )
        slow = SlowProducer(producer)
        relay = Outbox(db, slow)  # type: ignore[arg-type]
        await relay.start()
        await asyncio.wait_for(slow.waiting.wait(), 10)  # the round sent, not deleted yet
        stopping = asyncio.create_task(relay.stop())
        await asyncio.sleep(0.2)  # stop() is under way while the broker has not answered
        slow.gate.set()
        await asyncio.wait_for(stopping, 15)
        got = [r.value for r in await reader.read(timeout=30)]
        left = await db.pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        await producer.stop()
        await db.stop()
    assert (slow.sends, left) == (1, 0)
    assert got == [f"{i:05d}".encode() for i in range(10)]
