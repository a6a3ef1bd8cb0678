"""A consumer-group member whose state and source offsets are checkpointed together in one
PostgreSQL transaction, so each record takes effect exactly once in the state.

It runs on driftline-core's `ConsumerRuntime` (the consumer, its task, the rebalance
listener, stop). After a crash the member reloads the last checkpoint and seeks to its
offsets; records below the applied offset are skipped. A rebalance checkpoints first, and
the new owner of a partition loads what was saved. Subclasses say what the state is
(`ingest`, `close_ready`, `save`, `saved`, `load`, `drop`); this class runs the loop.

**Never past a failed batch.** On any error inside a batch (Redis down, a PostgreSQL error,
a detector exception) the in-memory state is dropped and every assigned partition is
restored from the last checkpoint (state loaded, consumer seeked back), before anything
else is polled; a checkpoint is never written from a state a failure left behind. So the
state after recovery is the state of an uninterrupted run.

**No single record stops a checkpoint.** An error that a retry cannot fix (not
`is_retriable`) may be one record's fault: then the records since the checkpoint are
replayed one at a time, each followed by closing and a checkpoint. The record whose ingest
or checkpoint fails goes to `driftline.dlq.v1` with the error, is stepped over in a
checkpoint of its own, and the rest go on. Passing faults (a store unreachable) are retried
with backoff, records untouched."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from driftline_core.db.pool import Database
from driftline_core.errors import RefusedError, is_retriable
from driftline_core.events import DeadLetter
from driftline_core.kafka.runtime import Batches, ConsumerFactory, ConsumerRuntime, RetryPolicy
from driftline_core.observability.metrics import CoreMetrics
from driftline_core.settings import KafkaSettings

from .decoding import BadRecord

__all__ = ["CheckpointedProcessor", "DeadLetterSink", "finite"]

log = logging.getLogger(__name__)


class DeadLetterSink(Protocol):
    """What dead letters are written with (`EventProducer`)."""

    @property
    def max_record_bytes(self) -> int: ...

    async def send_records(self, topic: str, records: Any) -> list[tuple[int, int]]: ...


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
        dlq: DeadLetterSink,
        metrics: CoreMetrics | None = None,
        consumer_factory: ConsumerFactory | None = None,
        backoff: RetryPolicy | None = None,
        checkpoint_max_bytes_per_s: float | None = None,
    ) -> None:
        self.kafka, self.db, self.topic, self.group_id = kafka, db, topic, group_id
        self.checkpoint_interval_s = checkpoint_interval_s
        # the interval by bytes too: after a checkpoint of B bytes, the next one waits at
        # least B / this many seconds (subclasses set last_checkpoint_bytes in `save`)
        self.checkpoint_max_bytes_per_s = checkpoint_max_bytes_per_s
        self.last_checkpoint_bytes = 0
        self.checkpoint_bytes_total = 0
        self.checkpoints = 0
        self.max_poll_records = max_poll_records
        self.dlq, self.metrics = dlq, metrics
        self.positions: dict[int, int] = {}  # partition -> next offset applied to the state
        self.runtime = ConsumerRuntime(
            kafka,
            topics=[topic],
            group_id=group_id,
            worker=self,
            max_records=max_poll_records,
            poll_timeout_ms=200,
            backoff=backoff or RetryPolicy(initial_s=0.5, max_s=30.0),
            metrics=metrics,
            consumer_factory=consumer_factory,
        )
        self.lock = self.runtime.lock
        self.records_dead_lettered = 0  # by the runtime, one record at a time (see below)
        self._last_checkpoint = time.monotonic()
        self._clean = True  # False from a failure until the state is restored
        self._seen: dict[int, int] = {}  # partition -> last offset polled
        self._careful: dict[int, int] | None = None  # replay one by one up to these offsets
        self._guilty: tuple[ConsumerRecord[Any, Any], str, BaseException] | None = None
        # sees each partition's polled records before `ingest` (drift detection's live series
        # of Kafka-native records, live.py); it skips offsets it has seen and never raises
        self.observe: Callable[[int, list[Any]], None] | None = None

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

    def reset(self) -> None:
        """Forget all in-memory state (after a failure, before every assigned partition is
        restored from the checkpoint). Override if some state is not per partition."""
        self.drop(set(self.positions) | set(self._seen))

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        return self.runtime.consumer

    async def start(self) -> None:
        await self.runtime.start()
        self.runtime.spawn()

    async def stop(self) -> None:
        await self.runtime.stop()

    # --- the runtime's worker --------------------------------------------------------------

    async def process(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        self._clean = False
        if self._careful is not None:
            await self._process_carefully(batches)
        else:
            for tp, records in batches.items():
                if records:
                    self._seen[tp.partition] = records[-1].offset
                applied = self.positions.get(tp.partition, -1)
                fresh = [r for r in records if r.offset >= applied]  # else: in the state
                if fresh and self.observe is not None:
                    self.observe(tp.partition, fresh)
                if fresh:
                    await self.ingest(tp.partition, fresh)
                    self.positions[tp.partition] = fresh[-1].offset + 1
            await self.close_ready()
            if time.monotonic() - self._last_checkpoint >= self.checkpoint_wait_s():
                await self.checkpoint()
        self._clean = True

    async def _process_carefully(self, batches: Batches) -> None:
        """One record at a time, a checkpoint after each: a failure names its record."""
        assert self._careful is not None
        for tp, records in batches.items():
            p = tp.partition
            for r in records:
                self._seen[p] = max(self._seen.get(p, -1), r.offset)
                if r.offset < self.positions.get(p, -1):
                    continue
                if self.observe is not None:
                    self.observe(p, [r])
                phase = "ingest"
                try:
                    await self.ingest(p, [r])
                    self.positions[p] = r.offset + 1
                    phase = "close"
                    await self.close_ready()
                    phase = "checkpoint"
                    await self.checkpoint()
                except Exception as e:
                    if phase != "close" and not is_retriable(e):
                        self._guilty = (r, phase, e)
                    raise
        assigned = {tp.partition for tp in self._consumer.assignment()}
        if all(
            self.positions.get(p, until + 1) > until
            for p, until in self._careful.items()
            if p in assigned
        ):
            log.info("replayed past the failure; batches again", extra={"topic": self.topic})
            self._careful = None

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        await self.restore({tp.partition for tp in partitions if tp.topic == self.topic})

    async def revoked(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        parts = {tp.partition for tp in partitions if tp.topic == self.topic}
        try:
            if self._clean and not self.runtime.needs_recovery:
                await self.checkpoint()  # else the next owner replays from the last one
        finally:
            self.drop(parts)
            for p in parts:
                self.positions.pop(p, None)
                self._seen.pop(p, None)
                if self._careful is not None:
                    self._careful.pop(p, None)

    async def recover(self, consumer: AIOKafkaConsumer, error: BaseException) -> None:
        """Drop the state, restore every assigned partition from the last checkpoint. A
        failure no retry fixes starts a one-by-one replay; once that names the record,
        it is dead-lettered and stepped over."""
        parts = {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}
        skip: ConsumerRecord[Any, Any] | None = None
        if self._guilty is not None:
            rec, phase, cause = self._guilty
            await self._dead_letter(rec, phase, cause)  # raises if the DLQ cannot take it yet
            self._guilty, skip = None, rec
        elif not is_retriable(error) and self._careful is None:
            self._careful = dict(self._seen)
            log.warning(
                "a failure no retry fixes: replaying one record at a time to isolate it",
                extra={"topic": self.topic, "error": repr(error), "upto": self._careful},
            )
        self.reset()
        self.saved()  # nothing dirty survives the reset
        await self.restore(parts)
        if skip is not None and self.positions.get(skip.partition, 0) == skip.offset:
            self.positions[skip.partition] = skip.offset + 1
            consumer.seek(TopicPartition(self.topic, skip.partition), skip.offset + 1)
            await self.checkpoint()  # the step over is durable
        self._clean = True

    async def stopping(self, consumer: AIOKafkaConsumer) -> None:
        if self._clean:
            await self.checkpoint()

    def letter(self, partition: int, rec: Any, reason: str, error_type: str) -> DeadLetter:
        """A dead letter of this record (`offset`, `value`, optional `key`) with its origin."""
        raw_key = getattr(rec, "key", None)
        key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else None
        return DeadLetter.of_record(
            rec.value,
            tenant_id=(key.split(":", 1)[0] if key else "") or "unknown",
            reason=reason,
            error_type=error_type,
            source=self.group_id,
            source_topic=self.topic,
            source_partition=partition,
            source_offset=rec.offset,
            source_key=key,
        )

    def bad_record(self, partition: int, rec: Any, e: BadRecord) -> DeadLetter:
        return self.letter(partition, rec, e.reason, e.error_type)

    async def _dead_letter(
        self, rec: ConsumerRecord[Any, Any], phase: str, cause: BaseException
    ) -> None:
        reason = (
            f"this record makes the {phase} fail, and no retry can help: "
            f"{type(cause).__name__}: {cause}"
        )
        await self.send_dead([self.letter(rec.partition, rec, reason, f"{phase}_failed")])
        self.records_dead_lettered += 1
        log.error(
            "record dead-lettered: it stopped the stream",
            extra={"topic": self.topic, "partition": rec.partition, "offset": rec.offset},
        )

    async def send_dead(self, letters: list[DeadLetter]) -> None:
        """Write dead letters, each cut to fit the producer. If Kafka refuses them for good,
        letters without payload are tried; if those are refused too, `RefusedError` stops
        the runtime (no record is stepped over without its DLQ copy)."""
        if not letters:
            return
        limit = self.dlq.max_record_bytes
        fitted = [d.shrunk(limit) for d in letters]
        try:
            await self.dlq.send_records(DeadLetter.TOPIC, [(d.key(), _enc(d)) for d in fitted])
        except Exception as e:
            if is_retriable(e):
                raise
            bare = [d.shrunk(0) for d in fitted]
            try:
                await self.dlq.send_records(DeadLetter.TOPIC, [(d.key(), _enc(d)) for d in bare])
            except Exception as again:
                if is_retriable(again):
                    raise
                raise RefusedError(f"the DLQ refused dead letters for good: {again!r}") from e
        if self.metrics is not None and getattr(self.dlq, "on_dead_letters", None) is None:
            for d in letters:  # else the producer counts what the broker acknowledged
                self.metrics.dlq_records.labels(d.source_topic or "", d.error_type).inc()

    # --- checkpoints -----------------------------------------------------------------------

    def checkpoint_wait_s(self) -> float:
        """Seconds from the last checkpoint to the next: the interval, or longer after a
        large one, so checkpoint writes stay under `checkpoint_max_bytes_per_s`."""
        budget = self.checkpoint_max_bytes_per_s
        by_bytes = self.last_checkpoint_bytes / budget if budget else 0.0
        return max(self.checkpoint_interval_s, by_bytes)

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
        if self.positions:
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
        self.checkpoints += 1
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
        """The saved state of these partitions is the truth: drop what is in memory, load
        it, and seek each partition to its checkpointed offset (the beginning if none)."""
        consumer = self._consumer
        rows = await self.db.pool.fetch(
            "SELECT partition, next_offset FROM offsets WHERE group_id = $1 AND topic = $2 "
            "AND partition = ANY($3::int[])",
            self.group_id,
            self.topic,
            sorted(partitions),
        )
        self.drop(partitions)
        saved = {r["partition"]: r["next_offset"] for r in rows}
        unsaved = []
        for p in partitions:
            self.positions.pop(p, None)
            tp = TopicPartition(self.topic, p)
            if p in saved:
                consumer.seek(tp, saved[p])
                self.positions[p] = saved[p]
            else:
                unsaved.append(tp)
        if unsaved:
            await consumer.seek_to_beginning(*unsaved)
        await self.load(partitions)
        log.info(
            "partitions restored",
            extra={"topic": self.topic, "partitions": sorted(partitions), "offsets": len(rows)},
        )


def _enc(d: DeadLetter) -> bytes:
    from driftline_core.events import encode

    return encode(d)


def finite(x: float) -> float:
    """For PostgreSQL columns that hold -inf as "never"."""
    return x if x not in (float("inf"), float("-inf")) else -1e18
