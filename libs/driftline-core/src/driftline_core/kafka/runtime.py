"""One consumer runtime for every Driftline consumer: it builds the consumer, subscribes with
a rebalance listener, owns the poll task, and stops. What a batch means is the worker's
(`ConsumerLoop`: decode, handle, commit after the effect; drift detection's
`CheckpointedProcessor`: state and offsets checkpointed in PostgreSQL).

The runtime never polls past a failed batch. When a batch (or a rebalance callback) fails,
the worker's `recover` runs before the next poll: it drops whatever the failed batch left
in memory and seeks the assigned partitions back to its last durable point (the last
commit, or the last checkpoint). Until `recover` succeeds nothing is polled; between tries
the runtime backs off. Only errors that say a retry can help are tried again: a Kafka error
that is not retriable (an authorisation failure, a record the broker refuses) stops the
runtime with the error in `failure`, instead of retrying it forever. This is quix-streams'
rule (`checkpointing/checkpoint.py`: a failed checkpoint is never followed by another
batch; state is dropped and the consumer seeks back) and aiokafka's
(`if not err.retriable: raise`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ..errors import RefusedError, UnavailableError, is_retriable
from ..observability.health import Check
from ..observability.metrics import CoreMetrics
from ..settings import KafkaSettings
from .config import client_kwargs

__all__ = ["Batches", "ConsumerRuntime", "RetryPolicy", "Worker", "consumers_check", "is_fatal"]

log = logging.getLogger(__name__)

Batches = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


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


def is_fatal(exc: BaseException) -> bool:
    """A Kafka error no retry can fix (authorisation, a refused record): the runtime stops."""
    return isinstance(exc, RefusedError) or (isinstance(exc, KafkaError) and not is_retriable(exc))


class Worker(Protocol):
    """What a runtime drives. Every call is made under the runtime's lock, so a rebalance
    waits until the batch in hand is done."""

    async def process(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        """Handle one poll (possibly empty: time-driven work happens here too)."""

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Partitions are ours now: load or seek."""

    async def revoked(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Partitions go to another member: make their progress durable, forget them."""

    async def recover(self, consumer: AIOKafkaConsumer, error: BaseException) -> None:
        """A batch or callback failed: drop what it left in memory and seek the assigned
        partitions back to the last durable point. Raises if that is not possible yet."""

    async def stopping(self, consumer: AIOKafkaConsumer) -> None:
        """The runtime stops: make progress durable (not called after a failure that was
        not recovered from)."""


ConsumerFactory = Callable[..., AIOKafkaConsumer]


def consumers_check(*runtimes: ConsumerRuntime) -> Check:
    """The readiness check `consumers`: fails once one of these runtimes gave up (a Kafka
    refusal no retry can fix), naming its group and the error."""

    async def probe() -> None:
        stopped = [f"{r.group_id}: {r.failure!r}" for r in runtimes if r.failure is not None]
        if stopped:
            raise UnavailableError(f"consumers stopped: {'; '.join(stopped)}", retriable=False)

    return Check("consumers", probe)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: ConsumerRuntime) -> None:
        self.rt = runtime

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("partitions revoked", extra={"partitions": sorted(map(str, revoked))})
        await self.rt._callback("revoked", revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(map(str, assigned))})
        await self.rt._callback("assigned", assigned)


class ConsumerRuntime:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: list[str],
        group_id: str,
        worker: Worker,
        max_records: int | None = None,
        poll_timeout_ms: int = 500,
        auto_offset_reset: str = "earliest",
        backoff: RetryPolicy | None = None,
        metrics: CoreMetrics | None = None,
        consumer_factory: ConsumerFactory | None = None,
        **consumer_overrides: Any,
    ) -> None:
        self.settings, self.topics, self.group_id = settings, list(topics), group_id
        self.worker = worker
        self.max_records = max_records or settings.consumer_max_poll_records
        self.poll_timeout_ms = poll_timeout_ms
        self.auto_offset_reset = auto_offset_reset
        self.backoff = backoff or RetryPolicy(initial_s=0.5, max_s=30.0)
        self.metrics = metrics
        self._factory = consumer_factory or AIOKafkaConsumer
        self._overrides = consumer_overrides
        self.lock = asyncio.Lock()
        self.failure: BaseException | None = None  # set when the runtime gave up for good
        self.failures = 0  # consecutive failed attempts
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Task[Any] | None = None  # the task in run(), spawned or not
        self._stop = asyncio.Event()
        self._pending: BaseException | None = None  # failure not recovered from yet

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("ConsumerRuntime.start() was not awaited")
        return self._consumer

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def needs_recovery(self) -> bool:
        return self._pending is not None

    async def start(self) -> None:
        s = self.settings
        self._consumer = self._factory(
            **client_kwargs(s),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset,
            max_poll_records=self.max_records,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            **self._overrides,
        )
        await self._consumer.start()
        self._consumer.subscribe(self.topics, listener=_Listener(self))

    def spawn(self) -> asyncio.Task[None]:
        """Run the poll loop in a task the runtime owns (stopped by `stop`)."""
        self._task = asyncio.create_task(self.run(), name=f"consumer:{self.group_id}")
        return self._task

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Hand over exactly: the batch in hand is handled and committed, nothing polled
        after this call is handled, and only then the consumer leaves the group. Waits (up
        to `timeout_s`, then cancels) for the poll loop to finish, whether it runs in
        `spawn`'s task or in a task of the caller's (`run()`), so a caller may cancel that
        task after `stop()` returns; cancelling it before aborts the batch in hand."""
        self._stop.set()
        loop_task = self._task or self._running
        if loop_task is not None and loop_task is not asyncio.current_task():
            # asyncio.wait, not wait_for: a loop that ended with an error (one that gave up
            # on a Kafka refusal before this call) must not keep the consumer from stopping
            _, pending = await asyncio.wait({loop_task}, timeout=timeout_s)
            if pending:
                log.warning(
                    "consumer loop did not finish its batch in time; cancelling it",
                    extra={"group": self.group_id, "timeout_s": timeout_s},
                )
                loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop_task
        self._task = None
        if self._consumer is None:
            return
        try:
            if self._pending is None and self.failure is None:
                async with self.lock:
                    await self.worker.stopping(self._consumer)
        finally:
            await self._consumer.stop()
            self._consumer = None

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll and process until stop(); back off after a failure; give up only on an
        error no retry can fix (then `failure` holds it and the error is raised). Stop it
        with `stop()`, which lets the batch in hand finish; cancelling the task aborts that
        batch (not committed: whoever owns the partition next handles it again)."""
        self._running = asyncio.current_task()
        try:
            await self._loop()
        finally:
            self._running = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self._stop.is_set():
                    # not retried: nothing of the batch is committed, so the partition's next
                    # owner handles it again; said, not swallowed
                    log.warning(
                        "batch failed while stopping; not committed, handled again by the "
                        "partition's next owner",
                        extra={"group": self.group_id, "error": repr(e)},
                    )
                    self._count("stopping", e)
                    break
                if is_fatal(e):
                    self.failure = e
                    log.critical(
                        "consumer stopped: Kafka refused for good (no retry can help)",
                        extra={"group": self.group_id, "error": repr(e)},
                    )
                    self._count("fatal", e)
                    raise
                self.failures += 1
                delay = self.backoff.delay(self.failures)
                log.warning(
                    "batch failed; recovering from the last durable point before polling again",
                    extra={
                        "group": self.group_id,
                        "attempt": self.failures,
                        "delay_s": round(delay, 2),
                        "error": repr(e),
                    },
                    exc_info=not is_retriable(e),
                )
                self._count("batch", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def run_once(self) -> int:
        """Recover if a failure is pending, then one poll, processed. Returns how many
        records it covered."""
        consumer = self.consumer
        if self._pending is not None:
            async with self.lock:
                await self._recover(consumer)
        batches: Batches = await consumer.getmany(
            timeout_ms=self.poll_timeout_ms, max_records=self.max_records
        )
        async with self.lock:
            if self._stop.is_set():
                # stop() began during the poll: these records are not handled here, nothing
                # of them is committed, so the partition's next owner starts at them
                return 0
            if self._pending is not None:  # a rebalance callback failed during the poll
                await self._recover(consumer)
                return 0  # the records polled may predate the seek: poll again
            try:
                await self.worker.process(consumer, batches)
            except BaseException as e:  # cancelled mid-batch too: the state is not clean
                self._pending = e
                raise
        return sum(len(r) for r in batches.values())

    async def _recover(self, consumer: AIOKafkaConsumer) -> None:
        assert self._pending is not None
        await self.worker.recover(consumer, self._pending)
        log.info("recovered from the last durable point", extra={"group": self.group_id})
        self._pending = None

    async def _callback(self, which: str, partitions: set[TopicPartition]) -> None:
        async with self.lock:
            try:
                if which == "assigned":
                    await self.worker.assigned(self.consumer, partitions)
                else:
                    await self.worker.revoked(self.consumer, partitions)
            except Exception as e:  # aiokafka would log and go on: recover before polling
                log.warning(
                    f"partitions {which} callback failed; recovering before the next poll",
                    extra={"group": self.group_id, "error": repr(e)},
                )
                self._pending = self._pending or e
                self._count(which, e)

    def _count(self, where: str, e: BaseException) -> None:
        counter = getattr(self.metrics, "consumer_failures", None)
        if counter is not None:
            counter.labels(self.group_id, where, type(e).__name__).inc()
