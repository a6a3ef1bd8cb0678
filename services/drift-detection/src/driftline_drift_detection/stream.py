"""A consumer-group member whose state and source offsets are checkpointed together in one
PostgreSQL transaction, so each record takes effect exactly once in the state.

After a crash the member reloads the last checkpoint and seeks to its offsets; records below
the applied offset are skipped. A rebalance checkpoints first, and the new owner of a
partition loads what was saved. Subclasses say what the state is (`ingest`, `close_ready`,
`save`, `saved`, `load`, `drop`); this class runs the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from driftline_core.db.pool import Database
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

__all__ = ["CheckpointedProcessor"]

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: CheckpointedProcessor) -> None:
        self.p = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.p.lock:
            await self.p.checkpoint()
            parts = {tp.partition for tp in revoked}
            self.p.drop(parts)
            for p in parts:
                self.p.positions.pop(p, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.p.lock:
            await self.p.restore({tp.partition for tp in assigned})


class CheckpointedProcessor(ABC):
    def __init__(
        self,
        kafka: KafkaSettings,
        db: Database,
        *,
        topic: str,
        group_id: str,
        checkpoint_interval_s: float,
        max_poll_records: int,
    ) -> None:
        self.kafka, self.db, self.topic, self.group_id = kafka, db, topic, group_id
        self.checkpoint_interval_s = checkpoint_interval_s
        self.max_poll_records = max_poll_records
        self.lock = asyncio.Lock()
        self.positions: dict[int, int] = {}  # partition -> next offset applied to the state
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_checkpoint = time.monotonic()

    # --- what the state is -------------------------------------------------------------------

    @abstractmethod
    async def ingest(self, partition: int, records: list[Any]) -> None:
        """Apply records (all at or above the applied offset) to the state."""

    @abstractmethod
    async def close_ready(self) -> None:
        """Emit and forget whatever is complete (windows past their end)."""

    @abstractmethod
    async def save(self, conn: asyncpg.Connection) -> None:
        """Write what changed since the last checkpoint, inside its transaction."""

    @abstractmethod
    def saved(self) -> None:
        """The checkpoint is committed: forget what was dirty."""

    @abstractmethod
    async def load(self, partitions: set[int]) -> None:
        """Load the saved state of newly assigned partitions."""

    @abstractmethod
    def drop(self, partitions: set[int]) -> None:
        """Forget in-memory state of partitions no longer ours."""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_kwargs(self.kafka),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_poll_records,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            await asyncio.wait_for(self._task, 30)
        if self._consumer:
            async with self.lock:
                await self.checkpoint()
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while not self._stopping:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
                async with self.lock:
                    for tp, records in batches.items():
                        applied = self.positions.get(tp.partition, -1)
                        fresh = [r for r in records if r.offset >= applied]  # else: in state
                        if fresh:
                            await self.ingest(tp.partition, fresh)
                            self.positions[tp.partition] = fresh[-1].offset + 1
                    await self.close_ready()
                    if time.monotonic() - self._last_checkpoint >= self.checkpoint_interval_s:
                        await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep going: a store outage must not kill the worker
                log.exception("stream processing failed; retrying", extra={"topic": self.topic})
                await asyncio.sleep(1.0)

    async def checkpoint(self) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            await self.save(conn)
            if self.positions:
                await conn.executemany(
                    "INSERT INTO offsets (group_id, topic, partition, next_offset) VALUES "
                    "($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition) DO UPDATE SET "
                    "next_offset = excluded.next_offset",
                    [(self.group_id, self.topic, p, o) for p, o in self.positions.items()],
                )
        if self.positions and self._consumer is not None:
            try:  # for lag monitoring only; the truth is in PostgreSQL
                assigned = self._consumer.assignment()
                await self._consumer.commit(
                    {
                        TopicPartition(self.topic, p): o
                        for p, o in self.positions.items()
                        if TopicPartition(self.topic, p) in assigned
                    }
                )
            except Exception as e:
                log.debug("offset commit to Kafka skipped", extra={"error": repr(e)})
        self.saved()
        self._last_checkpoint = time.monotonic()

    async def saved_rows(self, table: str, columns: str, partitions: set[int]) -> list[Any]:
        """This group's saved rows of `table` for these partitions (tables are ours)."""
        rows: list[Any] = await self.db.pool.fetch(
            f"SELECT {columns} FROM {table} WHERE group_id = $1 AND partition = ANY($2::int[])",
            self.group_id,
            sorted(partitions),
        )
        return rows

    async def restore(self, partitions: set[int]) -> None:
        assert self._consumer is not None
        rows = await self.db.pool.fetch(
            "SELECT partition, next_offset FROM offsets WHERE group_id = $1 AND topic = $2 "
            "AND partition = ANY($3::int[])",
            self.group_id,
            self.topic,
            sorted(partitions),
        )
        self.drop(partitions)  # the saved state is the truth
        for r in rows:
            self._consumer.seek(TopicPartition(self.topic, r["partition"]), r["next_offset"])
            self.positions[r["partition"]] = r["next_offset"]
        await self.load(partitions)
        log.info(
            "partitions restored",
            extra={"topic": self.topic, "partitions": sorted(partitions), "offsets": len(rows)},
        )


def finite(x: float) -> float:
    """For PostgreSQL columns that hold -inf as "never"."""
    return x if x not in (float("inf"), float("-inf")) else -1e18
