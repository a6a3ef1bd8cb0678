"""Wiring of the alerting service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them and runs the
results consumer, the clock and the delivery loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, operator_authenticator
from driftline_core.auth.revocations import RevocationListener
from driftline_core.crypto.setup import Keyring, build_keyring
from driftline_core.errors import UnavailableError
from driftline_core.influx import InfluxWriter
from driftline_core.influx.alerts import AlertSeries
from driftline_core.kafka import ConsumerLoop
from driftline_core.leader import Leadership
from driftline_core.observability.health import Check
from driftline_core.observability.lag import LagReporter
from driftline_core.observability.metrics import AlertingMetrics
from driftline_core.service import create_service_app
from driftline_core.tenants import Tenants
from driftline_core.wiring import Deps, build_deps

from .api import router
from .api_v2 import router as am_router
from .runtime import KINDS, AlertingRuntime
from .settings import AlertingSettings
from .store import Store

__all__ = ["SERVICE", "AlertingDeps", "build", "create_app"]

SERVICE = "alerting"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Runner:
    """The runtime (clock, deliveries) first, then the consumer of results."""

    runtime: AlertingRuntime
    consumer: ConsumerLoop[Any]
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.runtime.start()
        await self.consumer.start()
        self._task = asyncio.create_task(self.consumer.run())

    async def stop(self) -> None:
        """The runtime's loops stop whatever the consumer ended with: a consumer that gave
        up (its failure is kept as the consumer runtime's `failure`, which readiness reports)
        must not leave the clock and deliveries of a replica that stepped down running beside
        the new leader's."""
        try:
            await self.consumer.stop()
            if self._task:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        finally:
            await self.runtime.stop()


@dataclass
class Active:
    """What only the leader runs (decision 38): a fresh Runner (runtime and results consumer)
    each time this replica becomes leader, stopped when it steps down."""

    make_consumer: Callable[[], ConsumerLoop[Any]]
    runtime: AlertingRuntime
    runner: Runner | None = None

    async def start(self) -> None:
        runner = Runner(self.runtime, self.make_consumer())
        try:
            await runner.start()
        except BaseException:
            await runner.stop()
            raise
        self.runner = runner

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.stop()

    def check(self) -> Check:
        """`consumers`: fails once the leader's consumer gave up on a Kafka refusal."""

        async def probe() -> None:
            r = self.runner
            if r is not None and r.consumer.runtime.failure is not None:
                raise UnavailableError(
                    f"consumers stopped: {r.consumer.runtime.group_id}: "
                    f"{r.consumer.runtime.failure!r}",
                    retriable=False,
                )

        return Check("consumers", probe)


@dataclass
class AlertingDeps:
    core: Deps
    keys: ApiKeys
    audit: AuditEmitter
    runtime: AlertingRuntime
    active: Active
    leadership: Leadership
    keyring: Keyring


def build(
    settings: AlertingSettings, topics: dict[str, str] | None = None, schema: str = "alerting"
) -> AlertingDeps:
    """`topics` (topic -> result kind) replaces the standard result topics, and `schema` the
    service's schema (tests)."""
    core = build_deps(settings, service=SERVICE, schema=schema, migrations=MIGRATIONS, redis=True)
    assert core.database is not None
    audit = AuditEmitter(core.producer, SERVICE)
    keyring = build_keyring(settings.postgres, settings.kek, SERVICE)
    runtime = AlertingRuntime(
        settings.alerting,
        Store(core.database, keyring.cipher),
        core.producer,
        audit,
        topics=topics,
    )
    kinds = topics or KINDS
    from driftline_core.events import DriftResult, PerformanceResult, QualityResult

    model = {"drift": DriftResult, "quality": QualityResult, "performance": PerformanceResult}

    tenants = Tenants(core.database)

    def make_consumer() -> ConsumerLoop[Any]:
        return ConsumerLoop[Any](
            settings.kafka,
            topics=list(kinds),
            group_id=settings.alerting.group_id,
            handler=runtime.handle,
            dlq=core.producer,
            models={t: model[k] for t, k in kinds.items()},
            metrics=core.metrics,
            tenants=tenants,  # no alert, data key or audit record for a tenant never created
        )

    active = Active(make_consumer, runtime)
    leadership = Leadership(
        settings.postgres,
        f"{schema}:active",
        on_acquire=active.start,
        on_release=active.stop,
        interval_s=settings.alerting.leader_interval_s,
    )
    runtime.metrics = AlertingMetrics(core.metrics.registry)
    # alert transitions for the dashboards; own spool, outside readiness (InfluxDB may be away)
    influx = settings.influx.model_copy(
        update={"spool_dir": f"{settings.influx.spool_dir}/alerting"}
    )
    runtime.series = AlertSeries(InfluxWriter(influx, core.metrics))
    core.metrics.watch_spool(runtime.series.writer.spool_path)
    core.extra_checks.append(active.check())  # fails if Kafka refused
    core.extra_checks.append(leadership.check())  # fails on the standby (decision 38)
    return AlertingDeps(
        core,
        ApiKeys(core.database, settings.auth.api_key_cache_ttl_s, schema="ingestion"),
        audit,
        runtime,
        active,
        leadership,
        keyring,
    )


def create_app(settings: AlertingSettings, deps: AlertingDeps) -> FastAPI:
    assert deps.core.redis is not None
    auth = operator_authenticator(settings.auth, deps.keys, deps.audit, deps.core.redis.client)
    revocations = RevocationListener.for_service(
        settings.kafka, SERVICE, deps.core, deps.keys, deps.keyring.keyring
    )
    return create_service_app(
        title="Driftline alerting",
        metrics=deps.core.metrics,
        checks=deps.core.checks(),
        components=[
            *deps.core.components(),
            deps.keyring.database,
            revocations,  # drops cached credentials on news of a revocation
            deps.leadership,  # runs deps.active while this replica is the leader
            *([deps.runtime.series] if deps.runtime.series else []),
            LagReporter(settings.kafka, deps.core.metrics, [settings.alerting.group_id]),
        ],
        routers=[router(auth, deps.runtime, deps.audit), am_router(auth, deps.runtime)],
        startup_timeout_s=settings.startup_timeout_s,
        # errors of the Alertmanager API v2 are JSON strings, as Alertmanager's (amtool)
        plain_error_prefixes=("/api/v2/",),
    )
