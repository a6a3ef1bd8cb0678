"""An idempotent producer (acks=all, lz4, batching) whose sends are awaited until the
broker acknowledged them: a caller that got a result knows the event is stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)
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

# The broker refuses every later batch of a partition once the idempotent producer's
# sequence there is broken (a batch expired in the client after it took its sequence number,
# e.g. while a restarted broker had no leader for longer than request_timeout_ms, and
# aiokafka neither rewinds nor takes a new producer id: aio-libs/aiokafka#1017). Nothing of
# a refused batch is stored; a new producer (new id, sequences from zero) sends again.
BROKEN_SEQUENCE = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


class EventProducer:
    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        self._settings = settings
        self._overrides = overrides
        self._producer: AIOKafkaProducer | None = None
        self._batcher: BatchSender | None = None
        # called with the values of acknowledged driftline.dlq.v1 records (metrics)
        self.on_dead_letters: Callable[[Sequence[bytes]], None] | None = None
        self.renewals = 0  # producers replaced after a broken sequence (BROKEN_SEQUENCE)
        self._renewing: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    def _options(self) -> dict[str, Any]:
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
        return options

    async def _started(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._options())
        try:
            await producer.start()
        except KafkaError as e:
            await producer.stop()
            cls = UnavailableError if is_retriable(e) else RefusedError
            raise cls(f"Kafka unreachable at {self._settings.bootstrap_servers}: {e}") from e
        return producer

    async def start(self) -> None:
        self._producer = await self._started()
        self._batcher = BatchSender(
            self._producer, int(self._options()["max_batch_size"]), on_error=self._failed
        )

    def _failed(self, e: BaseException) -> None:
        """A send failed: a broken sequence has the producer replaced in the background
        (the failed send is answered as failed, its caller's retry goes to the new one)."""
        if isinstance(e, BROKEN_SEQUENCE) and (self._renewing is None or self._renewing.done()):
            log.warning("Kafka producer sequence broken; starting a new producer: %r", e)
            self._renewing = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        current = self._producer
        if current is None:
            return
        old: AIOKafkaProducer = current
        while self._producer is old:
            try:
                new = await self._started()
            except (UnavailableError, RefusedError) as e:
                log.warning("new Kafka producer not started yet: %s", e)
                await asyncio.sleep(1.0)
                continue
            if self._producer is not old:  # stopped meanwhile
                await new.stop()
                return
            self._producer = new
            if self._batcher is not None:
                self._batcher.producer = new
            self.renewals += 1
        retire = asyncio.create_task(old.stop())  # its sends in flight end as they end
        self._retired.add(retire)
        retire.add_done_callback(self._retired.discard)

    @property
    def max_record_bytes(self) -> int:
        """The largest record `send_records` takes (and `send_many` below the request
        limit); dead letters are cut to fit it."""
        batch = int(self._overrides.get("max_batch_size", self._settings.max_batch_size))
        request = int(self._overrides.get("max_request_size", 1 << 20))
        return min(batch, request) - 512

    async def stop(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewing
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
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
            self._failed(e)
            raise kafka_failure(e) from e

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> RecordMetadata:
        try:
            fut = await self.raw.send(topic, value, key=key)
            return await fut
        except KafkaError as e:
            self._failed(e)
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
