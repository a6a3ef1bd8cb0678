"""Late labels: actuals joined to their predictions, performance per window, concept drift.

The drift processor keeps each prediction of a model with a task in Redis for the model's
`label_ttl_seconds`, in one hash per model and day (`dl:pred:{tenant}:{model}:{day}`, field:
the prediction's event id), written with one pipelined HSET per batch. The performance
processor reads `driftline.actuals.v1` in its own consumer group, looks each label's
prediction up (HMGET over the days the TTL spans), and adds the pair to its window.

Performance windows are tumbling windows by the **label's** event time, of the model's
window length, closed like drift windows (watermark plus grace, or quiet). Labels come days
after predictions, so windows of prediction time could not close; each result says how many
labels it holds. Segments as for drift. State and offsets are checkpointed together (see
`stream`), so each label counts once.

A Page-Hinkley detector per model watches the error stream in label order and emits a
`concept_drift` result when it fires. Its event id derives from the label's offset, so a
replay after a crash gives the same id. A label whose prediction is not found (expired, or
never seen) goes to the DLQ with the reason."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from influxdb_client.client.write.point import Point
from redis.asyncio import Redis

from driftline_core.db.pool import Database
from driftline_core.events import DeadLetter, PerformanceResult
from driftline_core.events import actuals as actuals_topic
from driftline_core.events.features import MonitoringConfig
from driftline_core.events.windows import WindowSpan
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import EventProducer
from driftline_core.settings import KafkaSettings
from driftline_stats.performance import (
    ClassificationWindow,
    PageHinkley,
    RegressionWindow,
    label,
)

from .catalog import ModelCatalog
from .decoding import BadRecord, decode_actual
from .settings import DriftOptions
from .stream import CheckpointedProcessor, finite
from .windows import ModelKey, bounded, epoch, segment_of

__all__ = ["PerformanceProcessor", "PredictionStash"]

log = logging.getLogger(__name__)
DAY = 86_400
_NS = uuid.UUID("8f0a3c55-1e7b-4d0e-a6f5-2b7d1c9e4a60")
PerfKey = tuple[str, str, str, str, float]  # tenant, model, version, segment, start
POSITIVE = ("1", "true", "yes", "positive")


def _bucket(tenant: str, model: str, day: int) -> str:
    return f"dl:pred:{tenant}:{model}:{day}"


class PredictionStash:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def put(
        self, key: ModelKey, events: Iterable[dict[str, Any]], monitoring: MonitoringConfig
    ) -> None:
        ttl = monitoring.label_ttl_seconds
        buckets: dict[int, dict[str, bytes]] = {}
        for ev in events:
            t = epoch(ev["occurred_at"])
            seg = segment_of(ev, monitoring.segments) if monitoring.segments else None
            buckets.setdefault(int(t // DAY), {})[ev["event_id"]] = orjson.dumps(
                [
                    ev["model_version"],
                    ev.get("prediction"),
                    ev.get("probabilities"),
                    seg,
                    t,
                    ev.get("business_value"),
                ]
            )
        pipe = self.redis.pipeline(transaction=False)
        for day, mapping in buckets.items():
            name = _bucket(key[0], key[1], day)
            pipe.hset(name, mapping=mapping)  # type: ignore[arg-type]
            pipe.expireat(name, (day + 1) * DAY + ttl)
        await pipe.execute()

    async def get(
        self, key: ModelKey, wanted: list[tuple[str, float]], ttl: int
    ) -> dict[str, list[Any]]:
        """Predictions by event id, for labels (event id, label time) within the TTL."""
        if not wanted:
            return {}
        ids = sorted({i for i, _ in wanted})
        lo = min(t for _, t in wanted) - ttl
        hi = max(t for _, t in wanted) + DAY  # clocks of label and prediction may differ
        days = range(int(lo // DAY), int(hi // DAY) + 1)
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hmget(_bucket(key[0], key[1], day), ids)
        found: dict[str, list[Any]] = {}
        for values in await pipe.execute():
            for i, v in zip(ids, values, strict=True):
                if v is not None:
                    found[i] = orjson.loads(v)
        return found


Accumulator = ClassificationWindow | RegressionWindow


@dataclass
class _PerfModel:
    length: float
    grace: float
    detector: PageHinkley
    positive: str | None = None
    watermark: float = float("-inf")
    closed_until: float = float("-inf")
    last_seen_wall: float = 0.0
    segment_values: dict[str, set[str]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        return {"page_hinkley": self.detector.to_dict(), "positive": self.positive}


@dataclass
class _PerfWindow:
    partition: int
    acc: Accumulator
    value_wrong: float = 0.0  # business_value of the wrongly predicted (classification)

    def to_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "acc": self.acc.to_dict(), "vw": self.value_wrong}


def _acc_from(d: dict[str, Any]) -> Accumulator:
    if d["task"] == "regression":
        return RegressionWindow.from_dict(d)
    return ClassificationWindow.from_dict(d)


class PerformanceProcessor(CheckpointedProcessor):
    def __init__(
        self,
        kafka: KafkaSettings,
        opts: DriftOptions,
        db: Database,
        producer: EventProducer,
        influx: InfluxWriter,
        catalog: ModelCatalog,
        stash: PredictionStash,
        topic: str = actuals_topic.TOPIC,
    ) -> None:
        super().__init__(
            kafka,
            db,
            topic=topic,
            group_id=f"{opts.group_id}-labels",
            checkpoint_interval_s=opts.checkpoint_interval_s,
            max_poll_records=opts.max_poll_records,
            dlq=producer,
        )
        self.opts, self.producer, self.influx = opts, producer, influx
        self.catalog, self.stash = catalog, stash
        self.models: dict[ModelKey, _PerfModel] = {}
        self.windows: dict[PerfKey, _PerfWindow] = {}
        self.dirty: set[PerfKey] = set()
        self.closed: set[PerfKey] = set()
        self.touched: dict[ModelKey, int] = {}
        self.labels_joined = 0
        self.labels_unmatched = 0
        self.concept_drifts = 0
        self.windows_closed = 0

    def _model(self, key: ModelKey) -> _PerfModel:
        mon = self.catalog.models[key].monitoring
        cd = mon.concept_drift
        m = self.models.get(key)
        if m is None:
            m = self.models[key] = _PerfModel(
                mon.window.seconds,
                mon.window.grace_seconds,
                PageHinkley(cd.delta, cd.threshold, cd.min_samples),
                mon.positive_class,
            )
        else:
            m.length, m.grace = mon.window.seconds, mon.window.grace_seconds
            m.detector.delta, m.detector.threshold = cd.delta, cd.threshold
            m.detector.min_samples = cd.min_samples
            m.positive = mon.positive_class or m.positive
        return m

    # --- work ------------------------------------------------------------------------------

    async def ingest(self, partition: int, records: list[Any]) -> None:
        now = time.time()
        dead: list[DeadLetter] = []
        by_model: dict[ModelKey, list[tuple[int, dict[str, Any]]]] = {}
        for r in records:
            try:  # per record: a bad one goes to the DLQ, its neighbours go on
                ev = decode_actual(r.value)
            except BadRecord as e:
                dead.append(self.bad_record(partition, r, e))
                continue
            key = (ev["tenant_id"], ev["model_id"])
            mon = self.catalog.models.get(key)
            if mon is not None and mon.task is not None:
                by_model.setdefault(key, []).append((r.offset, ev))
        results: list[PerformanceResult] = []
        for key, items in by_model.items():
            mon = self.catalog.models[key]
            ttl = mon.monitoring.label_ttl_seconds
            found = await self.stash.get(
                key, [(ev["prediction_event_id"], epoch(ev["occurred_at"])) for _, ev in items], ttl
            )
            m = self._model(key)
            m.last_seen_wall = now
            self.touched[key] = partition
            for offset, ev in items:
                pred = found.get(ev["prediction_event_id"])
                if pred is None:
                    self.labels_unmatched += 1
                    dead.append(
                        self._dead(
                            partition,
                            _Raw(offset, orjson.dumps(ev)),
                            f"no prediction {ev['prediction_event_id']} of model {key[1]!r} "
                            f"within its label TTL ({ttl} s): expired, or not seen yet",
                        )
                    )
                    continue
                try:
                    fired = self._add(key, m, partition, mon.task or "", ev, pred)
                except _BadLabel as e:
                    dead.append(self._dead(partition, _Raw(offset, orjson.dumps(ev)), str(e)))
                    continue
                self.labels_joined += 1
                if fired:
                    results.append(self._concept(key, m, partition, offset, ev))
        if results:
            await self.producer.send_many(results)
            self.influx.write([_concept_point(r) for r in results])
        await self.send_dead(dead)

    def _add(
        self,
        key: ModelKey,
        m: _PerfModel,
        partition: int,
        task: str,
        ev: dict[str, Any],
        pred: list[Any],
    ) -> bool:
        version, predicted, probs, seg, _t_pred = pred[:5]
        value = pred[5] if len(pred) > 5 and type(pred[5]) in (int, float) else None
        if task == "regression":
            try:
                actual, predicted = float(ev["actual"]), float(predicted)
            except (TypeError, ValueError) as e:
                raise _BadLabel(f"a regression needs numbers: {e}") from e
        t = epoch(ev["occurred_at"])
        start = (t // m.length) * m.length
        if start + m.length <= m.closed_until:
            return False  # its window is closed: too late
        m.watermark = max(m.watermark, t)
        if task == "classification" and m.positive is None and probs and len(probs) == 2:
            classes = sorted(label(c) for c in probs)
            m.positive = next((c for c in classes if c.lower() in POSITIVE), classes[-1])
        segments = [""] + [bounded(m.segment_values, k, v) for k, v in (seg or {}).items()]
        error = 0.0
        for segment in segments:
            wkey = (key[0], key[1], str(version), segment, start)
            w = self.windows.get(wkey)
            if w is None:
                acc: Accumulator = (
                    RegressionWindow()
                    if task == "regression"
                    else ClassificationWindow(positive=m.positive)
                )
                w = self.windows[wkey] = _PerfWindow(partition, acc)
            if isinstance(w.acc, RegressionWindow):
                abs_err = w.acc.add(actual, predicted)
                error = min(1.0, abs_err / abs(actual)) if actual else min(1.0, abs_err)

            else:
                error = float(w.acc.add(ev["actual"], predicted, probs))
                if error and value is not None:
                    w.value_wrong += value
            self.dirty.add(wkey)
        return m.detector.update(error)

    def _concept(
        self, key: ModelKey, m: _PerfModel, partition: int, offset: int, ev: dict[str, Any]
    ) -> PerformanceResult:
        self.concept_drifts += 1
        t = epoch(ev["occurred_at"])
        start = (t // m.length) * m.length
        return PerformanceResult(
            event_id=uuid.uuid5(_NS, f"concept:{key[0]}:{key[1]}:{partition}:{offset}"),
            tenant_id=key[0],
            model_id=key[1],
            model_version="*",
            window=WindowSpan(
                start=datetime.fromtimestamp(start, UTC),
                end=datetime.fromtimestamp(t, UTC),
                events=0,
            ),
            occurred_at=datetime.fromtimestamp(t, UTC),
            kind="concept_drift",
            task="regression"
            if self.catalog.models[key].task == "regression"
            else "classification",
            labelled=0,
            metrics={
                **m.detector.last_alarm,
                "threshold": m.detector.threshold,
                "delta": m.detector.delta,
            },
            detector="page_hinkley",
        )

    def _dead(self, partition: int, r: Any, reason: str) -> DeadLetter:
        return self.letter(partition, r, reason, "unmatched_label")

    async def close_ready(self) -> None:
        now = time.time()
        ready = []
        for wkey in self.windows:
            m = self.models.get((wkey[0], wkey[1]))
            if m is None:
                continue
            end = wkey[4] + m.length
            if end + m.grace <= m.watermark or now - m.last_seen_wall >= self.opts.idle_close_s:
                ready.append(wkey)
        results, points = [], []
        for wkey in sorted(ready, key=lambda k: (k[4], k[3])):
            w = self.windows.pop(wkey)
            self.dirty.discard(wkey)
            self.closed.add(wkey)
            m = self.models[(wkey[0], wkey[1])]
            m.closed_until = max(m.closed_until, wkey[4] + m.length)
            self.touched[(wkey[0], wkey[1])] = w.partition
            if w.acc.n:
                r, p = _window_result(wkey, m.length, w.acc)
                if isinstance(w.acc, ClassificationWindow):
                    p = p.field("business_value_wrong", w.value_wrong)
                results.append(r)
                self.windows_closed += 1
                points.append(p)
        if results:
            await self.producer.send_many(results)
            self.influx.write(points)

    # --- checkpoints -----------------------------------------------------------------------

    async def save(self, conn: asyncpg.Connection) -> None:
        g = self.group_id
        dirty = [(k, self.windows[k]) for k in self.dirty if k in self.windows]
        if dirty:
            await conn.executemany(
                "INSERT INTO perf_windows (group_id, partition, tenant_id, model_id, "
                "model_version, segment, window_start, state) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
                " ON CONFLICT (group_id, tenant_id, model_id, model_version, segment, "
                "window_start) DO UPDATE SET state = excluded.state, "
                "partition = excluded.partition",
                [(g, w.partition, *k, orjson.dumps(w.to_json()).decode()) for k, w in dirty],
            )
        if self.closed:
            await conn.executemany(
                "DELETE FROM perf_windows WHERE group_id = $1 AND tenant_id = $2 AND "
                "model_id = $3 AND model_version = $4 AND segment = $5 AND window_start = $6",
                [(g, *k) for k in self.closed],
            )
        rows = [
            (
                g,
                part,
                *key,
                finite(m.closed_until),
                finite(m.watermark),
                orjson.dumps(m.state()).decode(),
            )
            for key, part in self.touched.items()
            if (m := self.models.get(key)) is not None
        ]
        if rows:
            await conn.executemany(
                "INSERT INTO perf_progress (group_id, partition, tenant_id, model_id, "
                "closed_until, watermark, detector) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT"
                " (group_id, tenant_id, model_id) DO UPDATE SET closed_until = "
                "excluded.closed_until, watermark = excluded.watermark, detector = "
                "excluded.detector, partition = excluded.partition",
                rows,
            )

    def saved(self) -> None:
        self.dirty.clear()
        self.closed.clear()
        self.touched.clear()

    def drop(self, partitions: set[int]) -> None:
        for k in [k for k, w in self.windows.items() if w.partition in partitions]:
            self.windows.pop(k)
            self.dirty.discard(k)

    def reset(self) -> None:
        self.models.clear()
        self.windows.clear()
        self.dirty.clear()
        self.closed.clear()
        self.touched.clear()

    async def load(self, partitions: set[int]) -> None:
        now = time.time()
        for r in await self.saved_rows(
            "perf_progress", "tenant_id, model_id, closed_until, watermark, detector", partitions
        ):
            key = (r["tenant_id"], r["model_id"])
            if key not in self.catalog.models:
                continue
            m = self._model(key)
            state = orjson.loads(r["detector"])
            m.detector.load(state["page_hinkley"])
            m.positive = m.positive or state.get("positive")
            m.closed_until, m.watermark, m.last_seen_wall = r["closed_until"], r["watermark"], now
        for r in await self.saved_rows(
            "perf_windows",
            "tenant_id, model_id, model_version, segment, window_start, state",
            partitions,
        ):
            key = (r["tenant_id"], r["model_id"])
            if key in self.models:
                d = orjson.loads(r["state"])
                wkey = (*key, r["model_version"], r["segment"], r["window_start"])
                self.windows[wkey] = _PerfWindow(
                    d["partition"], _acc_from(d["acc"]), float(d.get("vw", 0.0))
                )


class _BadLabel(ValueError):
    pass


@dataclass
class _Raw:
    offset: int
    value: bytes


def _window_result(
    wkey: PerfKey, length: float, acc: Accumulator
) -> tuple[PerformanceResult, Point]:
    tenant, model, version, segment, start = wkey
    k, _, v = segment.partition("=")
    span = WindowSpan(
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(start + length, UTC),
        events=acc.n,
    )
    metrics = acc.metrics()
    result = PerformanceResult(
        event_id=uuid.uuid5(_NS, f"perf:{tenant}:{model}:{version}:{segment}:{start}"),
        tenant_id=tenant,
        model_id=model,
        model_version=version,
        segment={k: v} if k else {},
        window=span,
        occurred_at=span.end,
        task="regression" if isinstance(acc, RegressionWindow) else "classification",
        labelled=acc.n,
        metrics=metrics,
    )
    p = Point("performance").tag("tenant", tenant).tag("model", model).tag("version", version)
    if segment:
        p = p.tag("segment", segment)
    p = p.field("labelled", acc.n)
    for name, value in metrics.items():
        p = p.field(name, float(value))
    return result, p.time(int((start + length) * 1e9))


def _concept_point(r: PerformanceResult) -> Point:
    return (  # type: ignore[no-any-return]
        Point("concept_drift")
        .tag("tenant", r.tenant_id)
        .tag("model", r.model_id)
        .tag("detector", r.detector or "")
        .field("fired", 1)
        .time(int(r.occurred_at.timestamp() * 1e9))
    )
