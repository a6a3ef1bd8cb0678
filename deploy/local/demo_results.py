"""Reading the demo's results back (drift verdicts, performance and concept-drift signals,
alert events) from their topics, and showing the drift verdicts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from driftline_core.events import AlertEvent, DriftResult, PerformanceResult, decode
from driftline_core.events import alerts as alerts_topic
from driftline_core.events import drift as drift_topic
from driftline_core.events import performance as performance_topic
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

__all__ = ["Collected", "collect", "mark", "run_collect", "show", "since"]


async def _consumer() -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(**client_kwargs(KafkaSettings()), group_id=None, enable_auto_commit=False)
    await c.start()
    return c


TOPICS = (drift_topic.TOPIC, performance_topic.TOPIC, alerts_topic.TOPIC)


@dataclass
class Collected:
    """What the demo tenant's run published: drift verdicts, concept-drift signals (and
    performance windows), and alert events."""

    drift: list[DriftResult] = field(default_factory=list)
    performance: list[PerformanceResult] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)

    @property
    def concept(self) -> list[PerformanceResult]:
        return [p for p in self.performance if p.kind == "concept_drift"]

    def take(self, topic: str, value: bytes, tenant: str) -> bool:
        """Keep the record if it is the tenant's; True for a drift verdict kept."""
        if topic == drift_topic.TOPIC:
            d = decode(DriftResult, value)
            if d.tenant_id == tenant:
                self.drift.append(d)
                return True
        elif topic == performance_topic.TOPIC:
            p = decode(PerformanceResult, value)
            if p.tenant_id == tenant:
                self.performance.append(p)
        else:
            a = decode(AlertEvent, value)
            if a.tenant_id == tenant:
                self.alerts.append(a)
        return False

    def deduplicated(self) -> Collected:
        """Each result once (a record read twice across a rebalance), verdicts in time order."""
        self.drift = sorted(
            {d.event_id: d for d in self.drift}.values(), key=lambda d: d.window.start
        )
        self.performance = list({p.event_id: p for p in self.performance}.values())
        self.alerts = list({a.event_id: a for a in self.alerts}.values())
        return self


async def mark() -> dict[TopicPartition, int]:
    """The end of every result topic now: what the run publishes comes after."""
    c = await _consumer()
    try:
        cluster = await c._client.fetch_all_metadata()
        parts = [
            TopicPartition(topic, p)
            for topic in TOPICS
            for p in sorted(cluster.partitions_for_topic(topic) or [])
        ]
        return dict(await c.end_offsets(parts))
    finally:
        await c.stop()


async def collect(
    start: dict[TopicPartition, Any], tenant: str, quiet_s: float = 15.0, limit_s: float = 60.0
) -> Collected:
    """The tenant's results, until no drift verdict came for `quiet_s` (at most `limit_s`)."""
    c = await _consumer()
    out = Collected()
    try:
        c.assign(list(start))
        for tp, off in start.items():
            c.seek(tp, off)
        t0 = last = time.monotonic()
        while time.monotonic() - t0 < limit_s and time.monotonic() - last < quiet_s:
            for tp, records in (await c.getmany(timeout_ms=500)).items():
                for r in records:
                    if out.take(tp.topic, r.value, tenant):
                        last = time.monotonic()
    finally:
        await c.stop()
    return out.deduplicated()


async def since(start: dict[TopicPartition, Any], tenant: str) -> Collected:
    """Everything the tenant's run published since `start`, to the topics' ends as they are
    now (for a second look once late results, such as concept drift, are in)."""
    c = await _consumer()
    out = Collected()
    try:
        parts = list(start)
        c.assign(parts)
        for tp in parts:
            c.seek(tp, start[tp])
        ends = await c.end_offsets(parts)
        while any([await c.position(tp) < ends[tp] for tp in parts]):
            for tp, records in (await c.getmany(timeout_ms=500)).items():
                for r in records:
                    out.take(tp.topic, r.value, tenant)
    finally:
        await c.stop()
    return out.deduplicated()


def show(console: Console, results: list[DriftResult]) -> None:
    table = Table(title="Drift verdicts per window (driftline.drift.v1)")
    for col in ("window", "segment", "events", "drifted features", "share", "dataset drift"):
        table.add_column(col)
    for d in sorted(results, key=lambda d: (d.window.start, sorted(d.segment.items()))):
        drifted = [
            f"{f.feature} ({f.test} {f.statistic:.2f} > {f.threshold:.2f})"
            for f in d.features
            if f.drifted
        ]
        table.add_row(
            d.window.start.strftime("%H:%M:%S"),
            ",".join(f"{k}={v}" for k, v in d.segment.items()) or "all",
            f"{d.window.events:,}",
            "\n".join(drifted) or "-",
            f"{d.drifted_share:.0%}",
            "[red]yes" if d.dataset_drift else "no",
        )
    console.print(table)


def run_collect(start: dict[TopicPartition, Any], tenant: str) -> Collected:
    return asyncio.run(collect(start, tenant))
