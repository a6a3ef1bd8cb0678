"""Lifecycle wrappers and readiness checks for the shared adapters, so a service lists
what it uses and gets start/stop and /readyz probes for each."""

from __future__ import annotations

from dataclasses import dataclass, field

from .events.catalogue import TOPICS, TopicSpec
from .influx.reader import InfluxQLReader
from .influx.writer import InfluxWriter
from .kafka.admin import ensure_topics
from .kafka.producer import EventProducer
from .observability.health import Check
from .settings import KafkaSettings

__all__ = ["InfluxComponent", "TopicsComponent", "readiness_checks"]


@dataclass
class TopicsComponent:
    """Creates the catalogue's topics at start-up (idempotent; a no-op when they exist)."""

    settings: KafkaSettings
    specs: tuple[TopicSpec, ...] = TOPICS
    created: list[str] = field(default_factory=list)

    async def start(self) -> None:
        self.created = await ensure_topics(self.settings, self.specs)

    async def stop(self) -> None:
        return None


@dataclass
class InfluxComponent:
    """The InfluxDB writer (thread-based batching) and InfluxQL reader as one component."""

    writer: InfluxWriter
    reader: InfluxQLReader

    async def start(self) -> None:
        await self.reader.ping()
        self.writer.start()

    async def stop(self) -> None:
        self.writer.close()
        await self.reader.close()


def readiness_checks(
    *,
    producer: EventProducer | None = None,
    database: object | None = None,
    redis: object | None = None,
    influx: InfluxQLReader | None = None,
) -> list[Check]:
    checks: list[Check] = []
    if producer is not None:
        checks.append(Check("kafka", producer.ping))
    if database is not None:
        checks.append(Check("postgres", database.ping))  # type: ignore[attr-defined]
    if redis is not None:
        checks.append(Check("redis", redis.ping))  # type: ignore[attr-defined]
    if influx is not None:
        checks.append(Check("influxdb", influx.ping))
    return checks
