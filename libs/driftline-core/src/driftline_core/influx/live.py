"""Live series: per model and version, every second, what ingestion accepted and refused
(and, written by drift detection with the same code, what Kafka-native producers wrote).

Buckets are one wall-clock second of acceptance time. Every `interval_s` (250 ms) the
buckets that changed are written again, whole, with the same timestamp; InfluxDB replaces a
point of the same series and time, so a second's point grows until the second is over and
`sum("events")` over any range is the number of events accepted in it. An accepted event
is therefore visible about `interval_s` after it was acknowledged (measured by
tests/benchmarks/bench_live.py as `live_metrics_latency_ms_p99`).

Measurements (docs/metrics.md):
- `live_model` tags tenant, model, version, source; fields events, rejected,
  prediction_count, prediction_sum, prediction_mean, latency_count, latency_p50_ms,
  latency_p99_ms (from the events' `latency_ms`).
- `live_prediction_class` tags tenant, model, version, source, class; field count.

`source` is the writer: `ingestion` (events accepted over HTTP), or `kafka` (drift
detection, for records produced straight to Kafka: those without ingestion's
`driftline-origin` header). The two writers' points are different series, so neither ever
replaces the other's second; panels sum over both.

Tags stay bounded: past `max_models` models per tenant, `max_versions` versions per model
and `max_classes` classes per model the rest share `__other__`; a refused event whose model
is not registered counts under model `__unknown__`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from influxdb_client.client.write.point import Point

from ..observability.metrics import IngestionMetrics, rejection_reason
from .writer import InfluxWriter

__all__ = ["OTHER", "UNKNOWN", "IntakeObserver", "LiveSeries"]

log = logging.getLogger(__name__)

OTHER = "__other__"
UNKNOWN = "__unknown__"
Key = tuple[str, str, str, int]  # tenant, model, version, second


@dataclass
class _Bucket:
    events: int = 0
    rejected: int = 0
    pred_sum: float = 0.0
    pred_n: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    latency_n: int = 0
    written_at: float = 0.0


class _Bounded:
    """Distinct values per scope up to a limit; the rest are `__other__`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: dict[Any, set[str]] = {}

    def __call__(self, scope: Any, value: str) -> str:
        values = self.seen.setdefault(scope, set())
        if value in values:
            return value
        if len(values) >= self.limit:
            return OTHER
        values.add(value)
        return value


class LiveSeries:
    def __init__(
        self,
        writer: InfluxWriter,
        *,
        interval_s: float = 0.25,
        max_models: int = 1000,
        max_versions: int = 20,
        max_classes: int = 20,
        max_latency_samples: int = 4096,
        keep_s: float = 3.0,
        source: str = "ingestion",
    ) -> None:
        self.writer = writer
        self.source = source
        self.interval_s = interval_s
        self.max_latency_samples = max_latency_samples
        self.keep_s = keep_s
        self._models = _Bounded(max_models)
        self._versions = _Bounded(max_versions)
        self._classes = _Bounded(max_classes)
        self._buckets: dict[Key, _Bucket] = {}
        self._dirty: set[Key] = set()
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random(0)

    # --- recording (event loop, hot path) ---------------------------------------------------

    def _bucket(self, tenant: str, model: str, version: str, now: float) -> tuple[Key, _Bucket]:
        model = self._models(tenant, model)
        version = self._versions((tenant, model), version)
        key = (tenant, model, version, int(now))
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket()
        self._dirty.add(key)
        return key, b

    def accepted(self, tenant: str, events: Iterable[dict[str, Any]], now: float | None) -> None:
        """Events the broker acknowledged (ingestion's records: model_id, model_version,
        prediction, latency_ms)."""
        now = time.time() if now is None else now
        last: tuple[str, str] | None = None
        b = _Bucket()
        key: Key = ("", "", "", 0)
        for ev in events:
            mv = (str(ev["model_id"]), str(ev.get("model_version") or UNKNOWN))
            if mv != last:
                key, b = self._bucket(tenant, mv[0], mv[1], now)
                last = mv
            b.events += 1
            p = ev.get("prediction")
            if isinstance(p, bool | str):
                c = self._classes(key[:2], str(p).lower() if isinstance(p, bool) else p)
                b.classes[c] = b.classes.get(c, 0) + 1
            elif isinstance(p, int | float) and p == p and abs(p) != float("inf"):
                b.pred_sum += p
                b.pred_n += 1
                if isinstance(p, int):
                    c = self._classes(key[:2], str(p))
                    b.classes[c] = b.classes.get(c, 0) + 1
            lat = ev.get("latency_ms")
            if isinstance(lat, int | float) and not isinstance(lat, bool) and lat >= 0:
                b.latency_n += 1
                if len(b.latencies) < self.max_latency_samples:
                    b.latencies.append(float(lat))
                else:  # reservoir sampling keeps the percentiles unbiased
                    j = self._rng.randrange(b.latency_n)
                    if j < self.max_latency_samples:
                        b.latencies[j] = float(lat)

    def rejected(self, tenant: str, model: str, version: str, now: float | None = None) -> None:
        _, b = self._bucket(tenant, model, version, time.time() if now is None else now)
        b.rejected += 1

    # --- writing --------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> list[tuple[Key, _Bucket]]:
        """Copies of the buckets that changed since the last call (cheap: on the event
        loop); forgets buckets older than `keep_s`."""
        now = time.time() if now is None else now
        out = []
        for key in sorted(self._dirty, key=lambda k: k[3]):
            b = self._buckets[key]
            b.written_at = now
            copy = _Bucket(b.events, b.rejected, b.pred_sum, b.pred_n, dict(b.classes))
            copy.latencies, copy.latency_n = list(b.latencies), b.latency_n
            out.append((key, copy))
        self._dirty.clear()
        self.forget(now)
        return out

    def forget(self, now: float) -> None:
        """Drop the buckets of seconds more than `keep_s` ago (they are complete)."""
        for key in [k for k in self._buckets if k[3] < now - self.keep_s]:
            del self._buckets[key]

    @staticmethod
    def to_points(snapshot: list[tuple[Key, _Bucket]], source: str = "ingestion") -> list[Point]:
        """The points of a snapshot (in a worker thread: numpy and Point building)."""
        out: list[Point] = []
        for (tenant, model, version, second), b in snapshot:
            ts = second * 1_000_000_000
            p = (
                Point("live_model")
                .tag("tenant", tenant)
                .tag("model", model)
                .tag("version", version)
                .tag("source", source)
                .field("events", b.events)
                .field("rejected", b.rejected)
                .field("prediction_count", b.pred_n)
                .time(ts)
            )
            if b.pred_n:  # the sum lets a panel weigh seconds and sources by their counts
                p = p.field("prediction_sum", b.pred_sum)
                p = p.field("prediction_mean", b.pred_sum / b.pred_n)
            if b.latencies:
                p50, p99 = np.percentile(np.asarray(b.latencies), [50, 99])
                p = p.field("latency_count", b.latency_n)
                p = p.field("latency_p50_ms", float(p50)).field("latency_p99_ms", float(p99))
            out.append(p)
            for c, n in b.classes.items():
                out.append(
                    Point("live_prediction_class")
                    .tag("tenant", tenant)
                    .tag("model", model)
                    .tag("version", version)
                    .tag("source", source)
                    .tag("class", c)
                    .field("count", n)
                    .time(ts)
                )
        return out

    def points(self, now: float | None = None) -> list[Point]:
        """Points for the buckets that changed since the last call."""
        return self.to_points(self.snapshot(now), self.source)

    def _write(self, snapshot: list[tuple[Key, _Bucket]]) -> int:
        pts = self.to_points(snapshot, self.source)
        if pts:
            self.writer.write_now(pts)
        return len(pts)

    async def flush(self) -> int:
        snap = self.snapshot()
        return await asyncio.to_thread(self._write, snap) if snap else 0

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception:  # write_now spools refused points; anything else: log, go on
                log.exception("live series not written")

    async def start(self) -> None:
        self.writer.start()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
        self.writer.close()


class IntakeObserver:
    """What ingestion reports after each delivery: Prometheus counters (accepted, rejected
    by reason class, last event time per model) and the live series."""

    def __init__(self, metrics: IngestionMetrics, live: LiveSeries | None = None) -> None:
        self.metrics, self.live = metrics, live

    def delivered(
        self,
        tenant: str,
        kind: str,
        accepted: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
        raw: list[Any],
    ) -> None:
        now = time.time()
        self.metrics.intake(kind, len(accepted), rejected)
        if kind != "prediction":
            return
        for m in {str(ev["model_id"]) for ev in accepted}:
            self.metrics.last_event.labels(tenant, m, "ingestion").set(now)
        if self.live is None:
            return
        self.live.accepted(tenant, accepted, now)
        for r in rejected:
            item = raw[r["index"]] if 0 <= r.get("index", -1) < len(raw) else None
            item = item if isinstance(item, dict) else {}
            unknown = rejection_reason(str(r.get("reason", ""))) == "unknown_model"
            model = UNKNOWN if unknown else str(item.get("model_id") or UNKNOWN)
            self.live.rejected(tenant, model, str(item.get("model_version") or UNKNOWN), now)
