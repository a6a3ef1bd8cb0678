"""Group commit per partition over aiokafka's batch API.

Callers hand in pre-encoded records and wait for the broker's acknowledgement. Each
partition has its own queue: while a partition's batch is in flight (with idempotence the
producer keeps one request in flight per partition), records of every caller that arrive for
it are coalesced into its next batch. Partitions progress independently, so a slow one does
not hold the others. Keys are partitioned as the Java client does (murmur2): a key's records
keep their order and land where per-record sends would put them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from ..errors import RefusedError
from ..events.batch import FORMAT, FORMAT_HEADER
from ..events.batch import MAGIC as BATCH_MAGIC
from .config import kafka_failure

__all__ = [
    "INGESTION_ORIGIN",
    "ORIGIN_HEADER",
    "BatchSender",
    "Headers",
    "Record",
    "from_ingestion",
]

Record = tuple[bytes | None, bytes]
Headers = list[tuple[str, bytes]]
_BATCH_HEADERS = [(FORMAT_HEADER, FORMAT)]
# Who produced a prediction record: ingestion marks its own (it writes their live series),
# so drift detection writes the live series of the others, Kafka-native producers' records.
ORIGIN_HEADER = "driftline-origin"
INGESTION_ORIGIN = b"ingestion"


def from_ingestion(headers: Any) -> bool:
    """Whether a consumed record's headers say ingestion produced it."""
    if headers:
        for k, v in headers:
            if k == ORIGIN_HEADER:
                return bool(v == INGESTION_ORIGIN)
    return False


@dataclass
class _Queue:
    """One partition's waiting records: (records, future of their offsets) per caller."""

    waiting: list[tuple[list[Record], Headers, asyncio.Future[list[int]]]] = field(
        default_factory=list
    )
    flusher: asyncio.Task[None] | None = None


class BatchSender:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        max_batch_size: int,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.producer = producer  # replaced by EventProducer after a broken sequence
        self._on_error = on_error
        self._max_record = max_batch_size - 512  # room for the batch and record headers
        self._partitioner = DefaultPartitioner()
        self._cache: dict[tuple[str, bytes], int] = {}
        self._queues: dict[tuple[str, int], _Queue] = {}

    async def send(
        self, topic: str, records: Sequence[Record], headers: Headers | None = None
    ) -> list[tuple[int, int]]:
        """(partition, offset) per record, in order, once the broker acknowledged them all.
        `headers` are added to every record (after the batch format's, when it has one)."""
        if not records:
            return []
        for i, (_, value) in enumerate(records):
            if len(value) > self._max_record:
                raise RefusedError(
                    f"record {i} ({len(value)} bytes) exceeds the batch size "
                    f"({self._max_record + 512} bytes)"
                )
        partitions = sorted(await self.producer.partitions_for(topic))
        by_partition: dict[int, list[int]] = {}
        for i, (key, _) in enumerate(records):
            by_partition.setdefault(self._partition(topic, key, i, partitions), []).append(i)
        loop = asyncio.get_running_loop()
        parts = list(by_partition.items())
        futures = []
        for part, idxs in parts:
            fut: asyncio.Future[list[int]] = loop.create_future()
            queue = self._queues.setdefault((topic, part), _Queue())
            queue.waiting.append(([records[i] for i in idxs], headers or [], fut))
            if queue.flusher is None or queue.flusher.done():
                queue.flusher = asyncio.create_task(self._flush_loop(topic, part, queue))
            futures.append(fut)
        offsets = await asyncio.gather(*futures)
        out: list[tuple[int, int]] = [(-1, -1)] * len(records)
        for (part, idxs), offs in zip(parts, offsets, strict=True):
            for i, off in zip(idxs, offs, strict=True):
                out[i] = (part, off)
        return out

    def _partition(self, topic: str, key: bytes | None, i: int, partitions: list[int]) -> int:
        if key is None:
            return partitions[i % len(partitions)]
        part = self._cache.get((topic, key), -1)
        if part < 0:
            part = self._partitioner(key, partitions, partitions)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[(topic, key)] = part
        return part

    async def _flush_loop(self, topic: str, part: int, queue: _Queue) -> None:
        while queue.waiting:
            entries, queue.waiting = queue.waiting, []
            try:
                offsets = await self._send_partition(
                    topic, part, [(r, hs) for recs, hs, _ in entries for r in recs]
                )
            except Exception as e:  # every waiting caller learns why
                if self._on_error is not None:
                    self._on_error(e)
                error: Exception = kafka_failure(e) if isinstance(e, KafkaError) else e
                for _, _, fut in entries:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            start = 0
            for recs, _, fut in entries:
                if not fut.done():  # a caller that gave up (timeout) is skipped
                    fut.set_result(offsets[start : start + len(recs)])
                start += len(recs)

    async def _send_partition(
        self, topic: str, part: int, records: list[tuple[Record, Headers]]
    ) -> list[int]:
        producer = self.producer
        sent = []
        batch, count = producer.create_batch(), 0
        for (key, value), extra in records:
            # a columnar batch record is named by its header (events/batch.py)
            headers: Headers | None = _BATCH_HEADERS if value.startswith(BATCH_MAGIC) else None
            if extra:
                headers = [*(headers or []), *extra]
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                sent.append((await producer.send_batch(batch, topic, partition=part), count))
                batch, count = producer.create_batch(), 0
                batch.append(key=key, value=value, timestamp=None, headers=headers)
            count += 1
        sent.append((await producer.send_batch(batch, topic, partition=part), count))
        offsets: list[int] = []
        for fut, n in sent:
            meta = await fut
            offsets.extend(range(meta.offset, meta.offset + n))
        return offsets
