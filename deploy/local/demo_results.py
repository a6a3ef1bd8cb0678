"""Reading the demo's drift verdicts back from `driftline.drift.v1` and showing them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from driftline_core.events import DriftResult, decode
from driftline_core.events import drift as drift_topic
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

__all__ = ["mark", "show"]


async def _consumer() -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(**client_kwargs(KafkaSettings()), group_id=None, enable_auto_commit=False)
    await c.start()
    return c


async def mark() -> dict[TopicPartition, int]:
    c = await _consumer()
    try:
        cluster = await c._client.fetch_all_metadata()
        parts = [
            TopicPartition(drift_topic.TOPIC, p)
            for p in sorted(cluster.partitions_for_topic(drift_topic.TOPIC) or [])
        ]
        return dict(await c.end_offsets(parts))
    finally:
        await c.stop()


async def collect(
    start: dict[TopicPartition, Any], tenant: str, quiet_s: float = 15.0, limit_s: float = 60.0
) -> list[DriftResult]:
    """Results of the tenant's windows, until none came for `quiet_s` (at most `limit_s`)."""
    c = await _consumer()
    found: list[DriftResult] = []
    try:
        c.assign(list(start))
        for tp, off in start.items():
            c.seek(tp, off)
        t0 = last = time.monotonic()
        while time.monotonic() - t0 < limit_s and time.monotonic() - last < quiet_s:
            for records in (await c.getmany(timeout_ms=500)).values():
                for r in records:
                    d = decode(DriftResult, r.value)
                    if d.tenant_id == tenant:
                        found.append(d)
                        last = time.monotonic()
    finally:
        await c.stop()
    unique = {d.event_id: d for d in found}
    return sorted(unique.values(), key=lambda d: d.window.start)


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


def run_collect(start: dict[TopicPartition, Any], tenant: str) -> list[DriftResult]:
    return asyncio.run(collect(start, tenant))
