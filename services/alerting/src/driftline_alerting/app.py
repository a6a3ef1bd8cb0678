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
from driftline_core.auth import ApiKeys, Authenticator
from driftline_core.kafka import ConsumerLoop
from driftline_core.service import create_service_app
from driftline_core.wiring import Deps, build_deps

from .api import router
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


def build(settings: AlertingSettings, topics: dict[str, str] | None = None) -> AlertingDeps:
    """`topics` (topic -> result kind) replaces the standard result topics (tests)."""
    core = build_deps(settings, service=SERVICE, schema="alerting", migrations=MIGRATIONS)
    assert core.database is not None
    audit = AuditEmitter(core.producer, SERVICE)
    runtime = AlertingRuntime(
        settings.alerting, Store(core.database), core.producer, audit, topics=topics
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
    return AlertingDeps(
        core,
        ApiKeys(core.database, schema="ingestion"),
        audit,
        runtime,
        Runner(runtime, consumer),
    )


def create_app(settings: AlertingSettings, deps: AlertingDeps) -> FastAPI:
    return create_service_app(
        title="Driftline alerting",
        metrics=deps.core.metrics,
        checks=deps.core.checks(),
        components=[*deps.core.components(), deps.runner],
        routers=[router(Authenticator(deps.keys, deps.audit), deps.runtime, deps.audit)],
        startup_timeout_s=settings.startup_timeout_s,
    )
