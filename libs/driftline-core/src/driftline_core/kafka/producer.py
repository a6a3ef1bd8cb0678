"""An idempotent producer (acks=all, lz4, batching) whose sends are awaited until the
broker acknowledged them: a caller that got a result knows the event is stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from pydantic import BaseModel

from ..errors import RefusedError, UnavailableError, is_retriable
from ..events.dlq import TOPIC as DLQ_TOPIC
from ..events.envelope import Envelope, encode
from ..settings import KafkaSettings
from .batching import BatchSender
from .config import client_kwargs, kafka_failure

__all__ = ["EventProducer"]

log = logging.getLogger(__name__)


class EventProducer:
    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        self._settings = settings
        self._overrides = overrides
        self._producer: AIOKafkaProducer | None = None
        self._batcher: BatchSender | None = None
        # called with the values of acknowledged driftline.dlq.v1 records (metrics)
        self.on_dead_letters: Callable[[Sequence[bytes]], None] | None = None

    async def start(self) -> None:
        s = self._settings
        options = {
            **client_kwargs(s),
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": s.compression_type,
            "linger_ms": s.linger_ms,
            "max_batch_size": s.max_batch_size,
            **self._overrides,  # a caller may tune batching; acks and idempotence stay
        }
        options.update(acks="all", enable_idempotence=True)
        self._producer = AIOKafkaProducer(**options)
        try:
            await self._producer.start()
        except KafkaError as e:
            await self._producer.stop()
            self._producer = None
            cls = UnavailableError if is_retriable(e) else RefusedError
            raise cls(f"Kafka unreachable at {s.bootstrap_servers}: {e}") from e
        self._batcher = BatchSender(self._producer, int(options["max_batch_size"]))

    @property
    def max_record_bytes(self) -> int:
        """The largest record `send_records` takes (and `send_many` below the request
        limit); dead letters are cut to fit it."""
        batch = int(self._overrides.get("max_batch_size", self._settings.max_batch_size))
        request = int(self._overrides.get("max_request_size", 1 << 20))
        return min(batch, request) - 512

    async def stop(self) -> None:

        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
            self._batcher = None

    @property
    def raw(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("EventProducer.start() was not awaited")
        return self._producer

    async def send(self, event: Envelope, *, topic: str | None = None) -> RecordMetadata:
        """Send one event to its topic and wait for the broker's acknowledgement."""
        return (await self.send_many([event], topic=topic))[0]

    async def send_many(
        self, events: Sequence[BaseModel], *, topic: str | None = None
    ) -> list[RecordMetadata]:
        """Queue all events (batched by the client), then wait until every one is acked.

        Raises UnavailableError if any was not acknowledged (`RefusedError`, not retriable,
        if the broker or client refused for good); the caller must then assume none of the
        unacknowledged ones is stored.
        """
        futures: list[asyncio.Future[RecordMetadata]] = []
        dead: list[bytes] = []
        try:
            for ev in events:
                t = topic or getattr(ev, "TOPIC", "")
                if not t:
                    raise ValueError(f"{type(ev).__name__} names no topic")
                key = ev.key() if isinstance(ev, Envelope) else None
                value = encode(ev)
                if t == DLQ_TOPIC:
                    dead.append(value)
                futures.append(await self.raw.send(t, value, key=key))
            acked = list(await asyncio.gather(*futures))
            if dead and self.on_dead_letters is not None:
                self.on_dead_letters(dead)
            return acked
        except KafkaError as e:
            for f in futures:
                if not f.done():
                    f.cancel()
            raise kafka_failure(e) from e

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> RecordMetadata:
        try:
            fut = await self.raw.send(topic, value, key=key)
            return await fut
        except KafkaError as e:
            raise kafka_failure(e) from e

    async def send_records(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> list[tuple[int, int]]:
        """Send pre-encoded (key, value) records and wait until the broker acknowledged all
        of them; (partition, offset) per record, in order. Concurrent callers share batches
        (group commit, see `batching.py`); several times faster than `send_many`. `headers`
        go on every record (ingestion's `driftline-origin`, see `batching.py`)."""
        if self._batcher is None:
            raise RuntimeError("EventProducer.start() was not awaited")
        acked = await self._batcher.send(topic, records, headers)
        if topic == DLQ_TOPIC and self.on_dead_letters is not None:
            self.on_dead_letters([v for _, v in records])
        return acked

    async def ping(self) -> None:
        """Readiness: the client can fetch cluster metadata now."""
        try:
            await self.raw.client.fetch_all_metadata()
        except KafkaError as e:
            raise UnavailableError(f"Kafka metadata unavailable: {e!r}") from e
