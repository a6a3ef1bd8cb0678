"""Wiring of the alerting service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them and runs the
results consumer, the clock and the delivery loop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, operator_authenticator
from driftline_core.crypto.setup import Keyring, build_keyring
from driftline_core.influx import InfluxWriter
from driftline_core.influx.alerts import AlertSeries
from driftline_core.kafka import ConsumerLoop, consumers_check
from driftline_core.observability.lag import LagReporter
from driftline_core.observability.metrics import AlertingMetrics
from driftline_core.service import create_service_app
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
        await self.consumer.stop()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.runtime.stop()


@dataclass
class AlertingDeps:
    core: Deps
    keys: ApiKeys
    audit: AuditEmitter
    runtime: AlertingRuntime
    runner: Runner
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
    consumer = ConsumerLoop[Any](
        settings.kafka,
        topics=list(kinds),
        group_id=settings.alerting.group_id,
        handler=runtime.handle,
        dlq=core.producer,
        models={t: model[k] for t, k in kinds.items()},
        metrics=core.metrics,
    )
    runtime.metrics = AlertingMetrics(core.metrics.registry)
    # alert transitions for the dashboards; own spool, outside readiness (InfluxDB may be away)
    influx = settings.influx.model_copy(
        update={"spool_dir": f"{settings.influx.spool_dir}/alerting"}
    )
    runtime.series = AlertSeries(InfluxWriter(influx, core.metrics))
    core.metrics.watch_spool(runtime.series.writer.spool_path)
    core.extra_checks.append(consumers_check(consumer.runtime))  # fails if Kafka refused
    return AlertingDeps(
        core,
        ApiKeys(core.database, settings.auth.api_key_cache_ttl_s, schema="ingestion"),
        audit,
        runtime,
        Runner(runtime, consumer),
        keyring,
    )


def create_app(settings: AlertingSettings, deps: AlertingDeps) -> FastAPI:
    assert deps.core.redis is not None
    auth = operator_authenticator(settings.auth, deps.keys, deps.audit, deps.core.redis.client)
    return create_service_app(
        title="Driftline alerting",
        metrics=deps.core.metrics,
        checks=deps.core.checks(),
        components=[
            *deps.core.components(),
            deps.keyring.database,
            deps.runner,
            *([deps.runtime.series] if deps.runtime.series else []),
            LagReporter(settings.kafka, deps.core.metrics, [settings.alerting.group_id]),
        ],
        routers=[router(auth, deps.runtime, deps.audit), am_router(auth, deps.runtime)],
        startup_timeout_s=settings.startup_timeout_s,
    )
