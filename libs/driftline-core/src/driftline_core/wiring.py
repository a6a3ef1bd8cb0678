"""The adapters a service uses, built from settings but not connected (connection happens
in the app's lifespan): `build_deps(settings, ...)` -> `Deps`, then `create_app(settings, deps)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from .adapters import InfluxComponent, TopicsComponent, readiness_checks
from .db.pool import Database
from .influx.reader import InfluxQLReader
from .influx.writer import InfluxWriter
from .kafka.producer import EventProducer
from .observability.health import Check
from .observability.metrics import CoreMetrics
from .redis_store import RedisStore
from .service import Component
from .settings import DriftlineSettings

__all__ = ["Deps", "build_deps"]


@dataclass
class Deps:
    metrics: CoreMetrics
    producer: EventProducer
    topics: TopicsComponent | None = None
    database: Database | None = None
    redis: RedisStore | None = None
    influx: InfluxComponent | None = None
    extra_checks: list[Check] = field(default_factory=list)

    def components(self) -> list[Component]:
        """In start order; the app stops them in reverse."""
        out: list[Component] = []
        if self.database:
            out.append(self.database)
        if self.redis:
            out.append(self.redis)
        if self.influx:
            out.append(self.influx)
        if self.topics:
            out.append(self.topics)
        out.append(self.producer)
        return out

    def checks(self) -> list[Check]:
        return (
            readiness_checks(
                producer=self.producer,
                database=self.database,
                redis=self.redis,
                influx=self.influx.reader if self.influx else None,
            )
            + self.extra_checks
        )


def build_deps(
    settings: DriftlineSettings,
    *,
    service: str,
    schema: str | None = None,
    migrations: Path | None = None,
    redis: bool = False,
    influx: bool = False,
    create_topics: bool = True,
    registry: CollectorRegistry | None = None,
) -> Deps:
    metrics = CoreMetrics(registry or CollectorRegistry(), service)
    producer = EventProducer(settings.kafka)
    producer.on_dead_letters = metrics.dead_letters_sent
    writer = InfluxWriter(settings.influx, metrics) if influx else None
    if writer is not None:
        metrics.watch_spool(writer.spool_path)
    return Deps(
        metrics=metrics,
        producer=producer,
        topics=TopicsComponent(settings.kafka) if create_topics else None,
        database=Database(
            settings.postgres, schema, migrations_dir=migrations, application=f"driftline-{service}"
        )
        if schema
        else None,
        redis=RedisStore(settings.redis) if redis else None,
        influx=InfluxComponent(writer, InfluxQLReader(settings.influx)) if writer else None,
    )
