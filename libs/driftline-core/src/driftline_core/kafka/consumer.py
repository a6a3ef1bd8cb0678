"""A consumer loop: batch poll, decode, hand a batch to a handler, commit after the
handler's effect is durable. Retriable errors are retried with backoff; a record no
retry will fix goes to `driftline.dlq.v1` with the reason, topic, partition and offset,
and the loop keeps going. Nothing is committed before its effect or its DLQ copy is stored.

The consumer, its task and the rebalance listener are the shared `ConsumerRuntime`'s: a
batch that fails anyway (Kafka down for the commit, the DLQ unreachable) is polled again
from its first offset, never skipped. A DLQ copy always fits (see `DeadLetter`); a DLQ
write Kafka refuses for good is not retried forever: the runtime stops with the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from pydantic import BaseModel, ValidationError

from .. import errors
from ..errors import DriftlineError, RefusedError
from ..events.catalogue import model_for
from ..events.dlq import DeadLetter
from ..observability.metrics import CoreMetrics
from ..settings import KafkaSettings
from .producer import EventProducer
from .runtime import Batches, ConsumerFactory, ConsumerRuntime, RetryPolicy

__all__ = ["ConsumerLoop", "Handler", "Message", "RetryPolicy", "TenantCheck", "is_retriable"]

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


class TenantCheck(Protocol):
    """Says which of these tenants do not exist (`driftline_core.tenants.Tenants`)."""

    async def unknown(self, tenant_ids: set[str]) -> set[str]: ...


is_retriable = errors.is_retriable  # one rule: Kafka errors say themselves (`retriable`)


class _Poison(Exception):
    def __init__(self, reason: str, error_type: str, attempts: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.error_type, self.attempts = reason, error_type, attempts


class ConsumerLoop(Generic[E]):
    """At-least-once over the shared `ConsumerRuntime`: a batch is decoded, handled and
    committed; a failed batch is polled again from its first offsets (the last commit)."""

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
        consumer_factory: ConsumerFactory | None = None,
        tenants: TenantCheck | None = None,
        **consumer_overrides: Any,
    ) -> None:
        """`tenants`: records naming a tenant it does not know are dead-lettered
        (`unknown_tenant`) before the handler sees them; a failed lookup fails the batch
        (polled again), it never lets a record through unchecked."""
        self._topics = list(topics)
        self._tenants = tenants
        self._group_id = group_id
        self._handler = handler
        self._dlq = dlq
        self._dlq_topic = dlq_topic
        self._models: dict[str, type[BaseModel]] = (
            dict(models) if models else {t: model_for(t) for t in topics}
        )
        self._retry = retry or RetryPolicy()
        self._metrics = metrics
        self._commit_start = commit_start
        self._inflight: dict[TopicPartition, int] = {}  # first offset of the batch in hand
        self.runtime = ConsumerRuntime(
            settings,
            topics=self._topics,
            group_id=group_id,
            worker=self,
            max_records=max_records,
            poll_timeout_ms=poll_timeout_ms,
            auto_offset_reset=auto_offset_reset,
            metrics=metrics,
            consumer_factory=consumer_factory,
            **consumer_overrides,
        )

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self.runtime.consumer

    @property
    def _stopping(self) -> bool:
        return self.runtime.stopping

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()

    async def run(self) -> None:
        """Poll and process until stop() is called (raises if Kafka refuses for good)."""
        await self.runtime.run()

    async def run_once(self) -> int:
        """One poll, processed and committed. Returns how many records it covered."""
        return await self.runtime.run_once()

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

    # --- the runtime's worker ----------------------------------------------------------

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        if not self._commit_start:
            return
        # commit where the group starts on partitions it never committed, so its committed
        # offsets always say how far it is (see caught_up)
        start = {}
        for tp in partitions:
            if await consumer.committed(tp) is None:
                start[tp] = await consumer.position(tp)
        if start:
            await consumer.commit(start)

    async def revoked(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Nothing to do: the runtime's lock made the rebalance wait until the batch in
        hand was handled and committed, so the next owner starts exactly after it."""

    async def recover(self, consumer: AIOKafkaConsumer, error: BaseException) -> None:
        """Poll the failed batch again: seek its partitions back to its first offsets (all
        before them is committed)."""
        assigned = consumer.assignment()
        for tp, offset in self._inflight.items():
            if tp in assigned:
                consumer.seek(tp, offset)
        self._inflight.clear()

    async def stopping(self, consumer: AIOKafkaConsumer) -> None:
        """Every batch is committed when handled: nothing is pending."""

    async def process(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        if not batches:
            return
        self._inflight = {tp: rs[0].offset for tp, rs in batches.items() if rs}
        await self._process(batches)
        self._inflight.clear()

    async def _process(self, batches: Batches) -> int:
        good: list[Message[E]] = []
        dead: list[DeadLetter] = []
        for records in batches.values():
            for rec in records:
                try:
                    good.append(self._decode(rec))
                except _Poison as p:
                    dead.append(self._dead_letter(rec, p))
        if good and self._tenants is not None:
            good = await self._known_tenants(good, batches, dead)
        if good:
            dead.extend(
                await self._handle(
                    good,
                    {(r.topic, r.partition, r.offset): r for rs in batches.values() for r in rs},
                )
            )
        if dead:
            await self._send_dead(dead)
        n = sum(len(r) for r in batches.values())
        if self._metrics:
            self._metrics.consumed_records.labels(self._group_id).inc(n)
        await self._commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
        return n

    # --- internals ---------------------------------------------------------------------

    async def _known_tenants(
        self, good: list[Message[E]], batches: Batches, dead: list[DeadLetter]
    ) -> list[Message[E]]:
        assert self._tenants is not None
        named = {t for m in good if isinstance(t := getattr(m.value, "tenant_id", None), str)}
        unknown = await self._tenants.unknown(named) if named else set()
        if not unknown:
            return good
        raw = {(r.topic, r.partition, r.offset): r for rs in batches.values() for r in rs}
        kept: list[Message[E]] = []
        for m in good:
            tenant = getattr(m.value, "tenant_id", None)
            if tenant in unknown:
                p = _Poison(f"unknown tenant {tenant!r}: no such tenant exists", "unknown_tenant")
                dead.append(self._dead_letter(raw[(m.topic, m.partition, m.offset)], p))
            else:
                kept.append(m)
        return kept

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
                if self._stopping:
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

    async def _send_dead(self, dead: list[DeadLetter]) -> None:
        """Write the letters (each cut to fit the producer). Retriable failures are retried;
        if Kafka refuses them for good, letters without payload (size and SHA-256 only) are
        tried once; if those are refused too, `RefusedError` stops the consumer: no record
        is committed without its DLQ copy."""
        limit = self._dlq.max_record_bytes
        letters = [d.shrunk(limit) for d in dead]
        try:
            await self._retrying(
                lambda: self._dlq.send_many(letters, topic=self._dlq_topic), what="dlq write"
            )
        except _Poison as refused:
            log.error(
                "DLQ write refused; retrying once with the payloads left out",
                extra={"group": self._group_id, "reason": refused.reason},
            )
            bare = [d.shrunk(0) for d in letters]
            try:
                await self._dlq.send_many(bare, topic=self._dlq_topic)
            except Exception as e:
                if is_retriable(e):
                    raise  # the batch is polled again once Kafka is back
                raise RefusedError(f"the DLQ refused dead letters for good: {e!r}") from e
        if (
            self._metrics and getattr(self._dlq, "on_dead_letters", None) is None
        ):  # else the producer counts
            for d in dead:
                self._metrics.dlq_records.labels(d.source_topic or "", d.error_type).inc()

    def _dead_letter(self, rec: ConsumerRecord[Any, Any], p: _Poison) -> DeadLetter:
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
        return DeadLetter.of_record(
            rec.value,
            tenant_id=tenant or "unknown",
            reason=p.reason,
            error_type=p.error_type,
            source=self._group_id,
            source_topic=rec.topic,
            source_partition=rec.partition,
            source_offset=rec.offset,
            source_key=key,
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
