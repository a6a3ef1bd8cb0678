"""In-memory stand-ins for a consumer and a producer, for unit tests of what runs on
`ConsumerRuntime` (no network). Integration tests use the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from pydantic import BaseModel

from ..errors import RefusedError
from ..events.envelope import Envelope, encode

__all__ = ["FakeConsumer", "FakeProducer"]


class FakeConsumer:
    """One group member over in-memory partitions. `batch` records per partition per poll;
    exceptions queued in `poll_errors` are raised by the next polls; `seeks` records every
    seek. Pass the instance as `consumer_factory` (calling it returns itself)."""

    def __init__(self, *, batch: int = 2) -> None:
        self.logs: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        self.batch = batch
        self.poll_errors: list[BaseException] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.commits: dict[TopicPartition, int] = {}
        self.polls = 0
        self.kwargs: dict[str, Any] = {}
        self._topics: list[str] = []
        self._listener: ConsumerRebalanceListener | None = None
        self._assigned: set[TopicPartition] = set()
        self._position: dict[TopicPartition, int] = {}

    def __call__(self, **kwargs: Any) -> FakeConsumer:
        self.kwargs = kwargs
        return self

    def append(
        self, topic: str, value: bytes | None, *, partition: int = 0, key: bytes | None = None
    ) -> int:
        tp = TopicPartition(topic, partition)
        log = self.logs.setdefault(tp, [])
        offset = len(log)
        size = len(value) if value is not None else 0
        log.append(ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, 0, size, ()))
        return offset

    # --- the AIOKafkaConsumer surface the runtime uses ----------------------------------

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None:
        self._topics, self._listener = list(topics), listener

    async def rebalance(self) -> None:
        """Take every partition away and give it back (the listener runs both ways)."""
        revoked, self._assigned = self._assigned, set()
        if self._listener is not None and revoked:
            await self._listener.on_partitions_revoked(revoked)
        await self._assign()

    async def _assign(self) -> None:
        self._assigned = {tp for tp in self.logs if tp.topic in self._topics}
        for tp in self._assigned:
            self._position[tp] = self.commits.get(tp, 0)
        if self._listener is not None:
            await self._listener.on_partitions_assigned(set(self._assigned))

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.polls += 1
        if not self._assigned:
            await self._assign()
        if self.poll_errors:
            raise self.poll_errors.pop(0)
        out = {}
        for tp in sorted(self._assigned):
            at = self._position[tp]
            records = self.logs[tp][at : at + self.batch]
            if records:
                out[tp] = records
                self._position[tp] = at + len(records)
        if not out:
            await asyncio.sleep(0)
        return out

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._position[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.seek(tp, 0)

    async def position(self, tp: TopicPartition) -> int:
        return self._position[tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits.get(tp)

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        self.commits.update(offsets or {})

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.logs if tp.topic == topic}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs.get(tp, [])) for tp in tps}


class FakeProducer:
    """Records what is sent. Like the real client it refuses (RefusedError, not retriable)
    a record over `max_record_bytes`; `errors` queued are raised by the next sends."""

    def __init__(self, max_record_bytes: int = 256 * 1024 - 512) -> None:
        self.max_record_bytes = max_record_bytes
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.headers: list[tuple[str, list[tuple[str, bytes]]]] = []  # per record, if any
        self.errors: list[BaseException] = []
        self.on_dead_letters = None
        self.attempts = 0

    def _accept(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        for _, value in records:
            if len(value) > self.max_record_bytes:
                raise RefusedError(f"record of {len(value)} bytes is too large")
        self.sent.extend((topic, k, v) for k, v in records)

    async def send_many(
        self, events: Sequence[BaseModel], *, topic: str | None = None
    ) -> list[Any]:
        records = [(e.key() if isinstance(e, Envelope) else None, encode(e)) for e in events]
        self._accept(topic or str(getattr(events[0], "TOPIC", "")), records)
        return [None] * len(records)

    async def send_records(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> list[tuple[int, int]]:
        self._accept(topic, records)
        if headers:
            self.headers.extend((topic, headers) for _ in records)
        return [(0, i) for i in range(len(records))]

    def values(self, topic: str) -> list[bytes]:
        return [v for t, _, v in self.sent if t == topic]
