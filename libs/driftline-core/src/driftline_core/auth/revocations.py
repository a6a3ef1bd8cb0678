"""Revocations pushed to every process (decision 37).

Ingestion publishes a `Revocation` on `driftline.revocations.v1` once a revocation has
committed (an API key revoked, a session or all of a user's sessions ended, a tenant
erased). Every service that verifies credentials runs a `RevocationListener`: a consumer
group of its own process (every replica must see every record), reading from the end, that
drops the process's cached API-key verifications, and an erased tenant's cached data keys,
the moment a record arrives. Operator sessions are checked in Redis on every request, so
nothing of theirs is cached; their records are consumed for the same reason the others are
(a cache added later is covered) and counted.

The verification cache's TTL (`DRIFTLINE_AUTH__API_KEY_CACHE_TTL_S`) stays as the bound
when the push cannot work: Kafka unreachable when ingestion publishes (the revocation still
stands: it is in PostgreSQL, and it is logged), or a listener that is behind. When its
partition is assigned, a listener drops the caches once its start position is known, so a
record published before that position cannot leave a stale entry behind.

A record that is not a revocation (bad JSON, wrong schema, unknown tenant) goes to the DLQ
like on every other topic (`ConsumerLoop`); the listener keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..errors import DriftlineError, UnavailableError
from ..events.revocations import TOPIC, Revocation, RevocationKind
from ..kafka.consumer import ConsumerLoop, Message
from ..kafka.producer import EventProducer
from ..observability.health import Check
from ..settings import KafkaSettings
from ..tenants import Tenants

if TYPE_CHECKING:
    from ..crypto.keyring import DataKeyring
    from ..observability.metrics import CoreMetrics
    from .apikeys import ApiKeys

__all__ = ["RevocationListener", "RevocationPublisher"]

log = logging.getLogger(__name__)


class RevocationPublisher:
    """Publishes revocations after they committed. A failure to publish is logged, never
    raised: the revocation is in effect already, and other processes fall back to the TTL."""

    def __init__(
        self, producer: EventProducer, service: str, timeout_s: float = 5.0, topic: str = TOPIC
    ) -> None:
        self._producer = producer
        self._service = service
        self._timeout = timeout_s
        self._topic = topic
        self.failures = 0

    async def publish(
        self, kind: RevocationKind, tenant_id: str, subject: str, actor: str | None = None
    ) -> bool:
        event = Revocation(
            tenant_id=tenant_id, kind=kind, subject=subject, actor=actor, service=self._service
        )
        try:
            await asyncio.wait_for(self._producer.send(event, topic=self._topic), self._timeout)
            return True
        except (DriftlineError, TimeoutError, RuntimeError) as e:
            self.failures += 1
            log.warning(
                "could not publish a revocation; other processes stop accepting the "
                "credential within the verification cache's TTL instead",
                extra={"kind": kind, "tenant_id": tenant_id, "error": repr(e)},
            )
            return False


class _Loop(ConsumerLoop[Revocation]):
    """A ConsumerLoop that says when its start position is known (see the module text)."""

    def __init__(self, *args: Any, on_positioned: Callable[[], None], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._on_positioned = on_positioned

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        await super().assigned(consumer, partitions)  # commit_start: positions resolved
        self._on_positioned()


class RevocationListener:
    """A component: consumes `driftline.revocations.v1` and drops this process's caches."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        service: str,
        keys: ApiKeys | None,
        dlq: EventProducer,
        keyring: DataKeyring | None = None,
        tenants: Tenants | None = None,
        metrics: CoreMetrics | None = None,
        group_prefix: str = "driftline-revocations",
        topic: str = TOPIC,
        dlq_topic: str | None = None,
    ) -> None:
        self._keys = keys
        self._keyring = keyring
        self.group_id = (
            f"{group_prefix}-{service}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.positioned = asyncio.Event()
        self.received = 0
        self.latency_s: list[float] = []  # publish to drop, the last 100 (tests, logs)
        self.loop = _Loop(
            settings,
            topics=[topic],
            group_id=self.group_id,
            handler=self._handle,
            dlq=dlq,
            **({"dlq_topic": dlq_topic} if dlq_topic else {}),
            models={topic: Revocation},
            metrics=metrics,
            poll_timeout_ms=200,
            auto_offset_reset="latest",  # nothing is cached before this process started
            commit_start=True,
            tenants=tenants,
            on_positioned=self._positioned,
        )

    @classmethod
    def for_service(
        cls,
        settings: KafkaSettings,
        service: str,
        core: Any,
        keys: ApiKeys | None,
        keyring: DataKeyring | None = None,
    ) -> RevocationListener:
        """The usual wiring: DLQ through the service's producer, its metrics, the tenant
        check through the pool that verifies API keys, and the readiness check
        `revocations` (see `check`) added to the service's checks."""
        tenants = Tenants(keys.db, keys.schema) if keys is not None else None
        listener = cls(
            settings,
            service=service,
            keys=keys,
            dlq=core.producer,
            keyring=keyring,
            tenants=tenants,
            metrics=core.metrics,
        )
        core.extra_checks.extend(listener.checks())
        return listener

    def _positioned(self) -> None:
        self._drop()
        self.positioned.set()

    def _drop(self, tenants: Sequence[str] = ()) -> None:
        if self._keys is not None:
            self._keys.invalidate()
        if self._keyring is not None:
            for t in tenants:
                self._keyring.forget(t)

    async def _handle(self, batch: list[Message[Revocation]]) -> None:
        if not batch:
            return
        self._drop([m.value.tenant_id for m in batch if m.value.kind == "tenant"])
        now = datetime.now(UTC)
        for m in batch:
            lag = (now - m.value.produced_at).total_seconds()
            self.latency_s = [*self.latency_s[-99:], lag]
            log.info(
                "revocation applied: cached verifications dropped",
                extra={
                    "kind": m.value.kind,
                    "tenant_id": m.value.tenant_id,
                    "subject": m.value.subject,
                    "after_s": round(lag, 3),
                },
            )
        self.received += len(batch)

    def checks(self) -> list[Check]:
        """`revocations`: fails until the listener's partition is assigned (the process
        would miss a revocation published now), and once it gave up on a Kafka refusal."""

        async def probe() -> None:
            rt = self.loop.runtime
            if rt.failure is not None:
                raise UnavailableError(
                    f"revocations listener stopped: {rt.failure!r}", retriable=False
                )
            if not self.positioned.is_set():
                raise UnavailableError("the revocations listener has no partition yet")

        return [Check("revocations", probe)]

    async def start(self) -> None:
        await self.loop.start()
        self.loop.runtime.spawn()

    async def stop(self) -> None:
        await self.loop.stop()
