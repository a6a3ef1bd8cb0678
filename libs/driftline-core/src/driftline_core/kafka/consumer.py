"""A consumer loop: batch poll, decode, hand a batch to a handler, commit after the
handler's effect is durable. Retriable errors are retried with backoff; a record no
retry will fix goes to `driftline.dlq.v1` with the reason, topic, partition and offset,
and the loop keeps going. Nothing is committed before its effect or its DLQ copy is stored.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import BaseModel, ValidationError

from .. import errors
from ..errors import DriftlineError
from ..events.catalogue import model_for
from ..events.dlq import DeadLetter
from ..observability.metrics import CoreMetrics
from ..settings import KafkaSettings
from .config import client_kwargs
from .producer import EventProducer

__all__ = ["ConsumerLoop", "Handler", "Message", "RetryPolicy"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Message(Generic[E]):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int
    value: E


Handler = Callable[[list[Message[E]]], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter. `max_attempts=None` retries retriable errors
    until they pass (the partition waits; nothing is lost). With a number, a record still
    failing after that many attempts goes to the DLQ with the last error."""

    initial_s: float = 0.2
    max_s: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        cap = min(self.max_s, self.initial_s * self.multiplier ** (attempt - 1))
        return random.uniform(cap / 2, cap)


def is_retriable(exc: BaseException) -> bool:
    """The shared rule, plus Kafka client errors (the client reconnects by itself)."""
    return errors.is_retriable(exc) or isinstance(exc, KafkaError)


class _Poison(Exception):
    def __init__(self, reason: str, error_type: str, attempts: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.error_type, self.attempts = reason, error_type, attempts


class _FinishBatchBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Makes a rebalance wait until the batch in hand is handled and committed, so the
    next owner of a partition starts exactly after what this member processed."""

    def __init__(self, lock: asyncio.Lock, pin: AIOKafkaConsumer | None = None) -> None:
        self._lock = lock
        self._pin = pin

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            log.info("partitions revoked", extra={"partitions": sorted(map(str, revoked))})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(map(str, assigned))})
        if self._pin is None:
            return
        # commit where the group starts on partitions it never committed, so its committed
        # offsets always say how far it is (see ConsumerLoop.caught_up)
        start = {}
        for tp in assigned:
            if await self._pin.committed(tp) is None:
                start[tp] = await self._pin.position(tp)
        if start:
            await self._pin.commit(start)


class ConsumerLoop(Generic[E]):
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        handler: Handler[E],
        dlq: EventProducer,
        dlq_topic: str = DeadLetter.TOPIC,
        models: Mapping[str, type[E]] | None = None,
        retry: RetryPolicy | None = None,
        metrics: CoreMetrics | None = None,
        max_records: int | None = None,
        poll_timeout_ms: int = 500,
        auto_offset_reset: str = "earliest",
        commit_start: bool = False,
        **consumer_overrides: Any,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._group_id = group_id
        self._handler = handler
        self._dlq = dlq
        self._dlq_topic = dlq_topic
        self._models: dict[str, type[BaseModel]] = (
            dict(models) if models else {t: model_for(t) for t in topics}
        )
        self._retry = retry or RetryPolicy()
        self._metrics = metrics
        self._max_records = max_records or settings.consumer_max_poll_records
        self._poll_timeout_ms = poll_timeout_ms
        self._auto_offset_reset = auto_offset_reset
        self._commit_start = commit_start
        self._overrides = consumer_overrides
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._batch_lock = asyncio.Lock()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("ConsumerLoop.start() was not awaited")
        return self._consumer

    async def start(self) -> None:
        s = self._settings
        self._consumer = AIOKafkaConsumer(
            **client_kwargs(s),
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            max_poll_records=self._max_records,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            **self._overrides,
        )
        await self._consumer.start()
        pin = self._consumer if self._commit_start else None
        self._consumer.subscribe(
            self._topics, listener=_FinishBatchBeforeRevoke(self._batch_lock, pin)
        )

    async def caught_up(self, timeout_s: float, interval_s: float = 0.2) -> bool:
        """True once the group's committed offsets reach the ends the topics have now, that
        is: everything published before this call was handled, by whichever member owns
        its partition. Needs `commit_start=True`, so a partition the group never had to
        consume is not mistaken for one it is behind on. False after `timeout_s`."""
        c = self.consumer
        deadline = time.monotonic() + timeout_s
        ends: dict[TopicPartition, int] | None = None
        while True:
            if ends is None:
                known = [c.partitions_for_topic(t) for t in self._topics]
                if all(known):
                    parts = [
                        TopicPartition(t, p)
                        for t, ps in zip(self._topics, known, strict=True)
                        for p in sorted(ps)
                    ]
                    ends = await c.end_offsets(parts)
            if ends is not None:
                done = await asyncio.gather(*(c.committed(tp) for tp in ends))
                if all(
                    end == 0 or (at is not None and at >= end)
                    for (tp, end), at in zip(ends.items(), done, strict=True)
                ):
                    return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval_s)

    async def stop(self) -> None:
        self._stopping.set()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def run(self) -> None:
        """Poll and process until stop() is called."""
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except KafkaError as e:  # broker trouble: the client reconnects; wait and go on
                log.warning("consumer poll failed, retrying", extra={"error": repr(e)})
                await asyncio.sleep(1.0)

    async def run_once(self) -> int:
        """One poll, processed and committed. Returns how many records it covered."""
        batches: dict[
            TopicPartition, list[ConsumerRecord[bytes, bytes]]
        ] = await self.consumer.getmany(
            timeout_ms=self._poll_timeout_ms, max_records=self._max_records
        )
        if not batches:
            return 0
        async with self._batch_lock:
            return await self._process(batches)

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> int:
        good: list[Message[E]] = []
        dead: list[DeadLetter] = []
        for records in batches.values():
            for rec in records:
                try:
                    good.append(self._decode(rec))
                except _Poison as p:
                    dead.append(self._dead_letter(rec, p))
        if good:
            dead.extend(
                await self._handle(
                    good,
                    {(r.topic, r.partition, r.offset): r for rs in batches.values() for r in rs},
                )
            )
        if dead:
            await self._retrying(
                lambda: self._dlq.send_many(dead, topic=self._dlq_topic), what="dlq write"
            )
            if self._metrics and getattr(self._dlq, "on_dead_letters", None) is None:
                for d in dead:
                    self._metrics.dlq_records.labels(d.source_topic or "", d.error_type).inc()
        n = sum(len(r) for r in batches.values())
        if self._metrics:
            self._metrics.consumed_records.labels(self._group_id).inc(n)
        await self._commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
        return n

    # --- internals ---------------------------------------------------------------------

    def _decode(self, rec: ConsumerRecord[bytes, bytes]) -> Message[E]:
        model = self._models[rec.topic]
        if rec.value is None:
            raise _Poison(
                "empty record value (tombstone) where an event was expected", "empty_value"
            )
        try:
            data = orjson.loads(rec.value)
        except orjson.JSONDecodeError as e:
            raise _Poison(f"invalid JSON: {e}", "invalid_json") from e
        try:
            value = cast(E, model.model_validate(data))
        except ValidationError as e:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in e.errors()[:10]
            )
            raise _Poison(f"does not match {model.__name__}: {detail}", "schema_mismatch") from e
        return Message(rec.topic, rec.partition, rec.offset, rec.key, rec.timestamp, value)

    async def _handle(
        self, msgs: list[Message[E]], raw: Mapping[tuple[str, int, int], ConsumerRecord[Any, Any]]
    ) -> list[DeadLetter]:
        """Handle the batch; on a permanent error, isolate the records that cause it."""
        try:
            await self._retrying(lambda: self._handler(msgs), what="handler")
            return []
        except _Poison as batch_error:
            if len(msgs) == 1:
                m = msgs[0]
                return [self._dead_letter(raw[(m.topic, m.partition, m.offset)], batch_error)]
        dead: list[DeadLetter] = []
        for m in msgs:  # one at a time, in order: only the guilty go to the DLQ
            try:
                await self._retrying(lambda m=m: self._handler([m]), what="handler")  # type: ignore[misc]
            except _Poison as p:
                dead.append(self._dead_letter(raw[(m.topic, m.partition, m.offset)], p))
        return dead

    async def _retrying(self, call: Callable[[], Awaitable[Any]], *, what: str) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not is_retriable(e):
                    reason = (
                        e.reason if isinstance(e, DriftlineError) else f"{type(e).__name__}: {e}"
                    )
                    raise _Poison(reason, type(e).__name__, attempt) from e
                limit = self._retry.max_attempts
                if what != "dlq write" and limit is not None and attempt >= limit:
                    raise _Poison(
                        f"retries exhausted after {attempt} attempts: {e!r}",
                        type(e).__name__,
                        attempt,
                    ) from e
                if self._stopping.is_set():
                    raise
                delay = self._retry.delay(attempt)
                log.warning(
                    f"{what} failed (retriable), retrying",
                    extra={
                        "attempt": attempt,
                        "delay_s": round(delay, 2),
                        "error": repr(e),
                        "group": self._group_id,
                    },
                )
                if self._metrics:
                    self._metrics.retries.labels(self._group_id, what).inc()
                await asyncio.sleep(delay)

    def _dead_letter(self, rec: ConsumerRecord[Any, Any], p: _Poison) -> DeadLetter:
        payload, encoding = DeadLetter.wrap_payload(rec.value)
        key = rec.key.decode("utf-8", "replace") if isinstance(rec.key, bytes) else None
        tenant = key.split(":", 1)[0] if key else "unknown"
        log.warning(
            "record sent to DLQ",
            extra={
                "topic": rec.topic,
                "partition": rec.partition,
                "offset": rec.offset,
                "reason": p.reason,
            },
        )
        return DeadLetter(
            tenant_id=tenant or "unknown",
            reason=p.reason,
            error_type=p.error_type,
            source=self._group_id,
            source_topic=rec.topic,
            source_partition=rec.partition,
            source_offset=rec.offset,
            source_key=key,
            payload=payload,
            payload_encoding=encoding,
            attempts=p.attempts,
        )

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError as e:
            # A rebalance took the partitions away: the new owner starts at the last
            # committed offset and processes these records again (at-least-once).
            log.warning(
                "commit failed after rebalance; records will be redelivered",
                extra={"error": repr(e)},
            )
