"""Wiring of the drift-detection service: `build(settings)` makes its adapters
(unconnected), `create_app(settings, deps)` makes the ASGI app whose lifespan connects them
and runs the registry consumer and the stream processor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from driftline_core.events import RegistryChange
from driftline_core.events import registry as registry_topic
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import ConsumerLoop, consumers_check
from driftline_core.observability.lag import LagReporter
from driftline_core.observability.metrics import DriftMetrics
from driftline_core.service import create_service_app
from driftline_core.tenants import Tenants
from driftline_core.wiring import Deps, build_deps

from .catalog import ModelCatalog
from .held import HeldMetrics
from .labels import PerformanceProcessor, PredictionStash
from .live import KafkaLive, KnownTenants
from .processor import DriftProcessor
from .settings import DriftSettings

__all__ = ["SERVICE", "DriftDeps", "build", "create_app"]

SERVICE = "drift-detection"
log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Runtime:
    """Loads the model catalog, then runs the registry consumer and the two processors
    (predictions: drift and quality; actuals: performance)."""

    catalog: ModelCatalog
    registry: ConsumerLoop[RegistryChange]
    processor: DriftProcessor
    performance: PerformanceProcessor
    live: KafkaLive | None = None
    refresh_s: float = (
        1.0  # the catalog takes in other processes' registry changes (catalog.refresh)
    )
    _task: asyncio.Task[None] | None = None
    _refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.catalog.load()
        await self.registry.start()
        self._task = asyncio.create_task(self.registry.run())
        self._refresher = asyncio.create_task(self._refresh())
        if self.live is not None:
            await self.live.start()
        await self.processor.start()
        await self.performance.start()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.catalog.refresh()
            except Exception as e:  # the database away: the next round tries again
                log.warning("model catalog not refreshed", extra={"error": repr(e)})

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.performance.stop()
        await self.processor.stop()
        if self.live is not None:
            await self.live.stop()
        await self.registry.stop()
        await self.catalog.stop()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class DriftDeps:
    core: Deps
    runtime: Runtime


def build(settings: DriftSettings) -> DriftDeps:
    core = build_deps(
        settings, service=SERVICE, schema="drift", migrations=MIGRATIONS, influx=True, redis=True
    )
    assert core.database is not None
    assert core.influx is not None
    assert core.redis is not None
    stash = PredictionStash(core.redis.client)
    catalog = ModelCatalog(core.database, settings.drift.family_alpha, core.metrics.registry)
    held = HeldMetrics(core.metrics.registry)
    registry = ConsumerLoop[RegistryChange](
        settings.kafka,
        topics=[registry_topic.TOPIC],
        group_id=f"{settings.drift.group_id}-registry",
        handler=catalog.handle,
        dlq=core.producer,
        metrics=core.metrics,
        tenants=Tenants(core.database),  # no model of a tenant never created
        # a change costs two PostgreSQL round trips and a model build, and a stop waits for
        # the batch in hand (decision 54): small batches keep a replaying process's stop short
        max_records=100,
    )
    processor = DriftProcessor(
        settings.kafka,
        settings.drift,
        core.database,
        core.producer,
        core.influx.writer,
        catalog,
        stash=stash,
        held_metrics=held,
    )
    performance = PerformanceProcessor(
        settings.kafka,
        settings.drift,
        core.database,
        core.producer,
        core.influx.writer,
        catalog,
        stash,
        held_metrics=held,
    )
    # live series of Kafka-native records (ingestion writes its own): own spool directory
    influx = settings.influx.model_copy(
        update={"spool_dir": f"{settings.influx.spool_dir}/live-kafka"}
    )
    live = KafkaLive(
        InfluxWriter(influx, core.metrics),
        KnownTenants(lambda: catalog.models),
        core.metrics.registry,
    )
    core.metrics.watch_spool(live.series.writer.spool_path)
    processor.observe = live.observe
    # /readyz fails once a consumer gave up on a Kafka refusal (decision 19)
    core.extra_checks.append(
        consumers_check(registry.runtime, processor.runtime, performance.runtime)
    )
    return DriftDeps(core, Runtime(catalog, registry, processor, performance, live))


def create_app(settings: DriftSettings, deps: DriftDeps) -> FastAPI:
    rt, group = deps.runtime, settings.drift.group_id
    DriftMetrics(deps.core.metrics.registry, rt.processor, rt.performance)
    lag = LagReporter(
        settings.kafka, deps.core.metrics, [group, f"{group}-labels", f"{group}-registry"]
    )
    return create_service_app(
        title="Driftline drift detection",
        metrics=deps.core.metrics,
        checks=deps.core.checks(),
        components=[*deps.core.components(), deps.runtime, lag],
        startup_timeout_s=settings.startup_timeout_s,
    )
