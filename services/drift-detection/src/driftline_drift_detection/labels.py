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

A classifier's labels, predictions and probabilities are read as its class contract's
classes (`ClassContract`: mapped spellings, probabilities keyed by class), and precision,
recall, F1 and ROC-AUC are about its declared positive class; without a contract they are
macro-averaged over the classes seen, never about a guessed class. A label or prediction
outside the contract goes to the DLQ (`bad_label`).

A Page-Hinkley detector per model watches the error stream in label order and emits a
`concept_drift` result when it fires. Its event id derives from the label's offset, so a
replay after a crash gives the same id.

Ordering between topics never drops a label (`held`): a label of a model whose registry
state has not arrived, or whose prediction is not stashed yet (the drift processor may be
behind, or holding it), is held and joined again about once a second; after
`hold_max_s` it goes to the DLQ with the reason (`unknown_model`, or `unmatched_label`:
expired, or never seen). Performance needs no reference: any model with a task is scored."""

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
from driftline_core.events.registry import ClassContract
from driftline_core.events.windows import WindowSpan
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import EventProducer
from driftline_core.settings import KafkaSettings
from driftline_stats.performance import (
    ClassificationWindow,
    PageHinkley,
    RegressionWindow,
)

from .catalog import ModelCatalog
from .decoding import BadRecord, decode_actual
from .held import HeldMetrics, HeldRecord, Holding
from .settings import DriftOptions
from .stream import CheckpointedProcessor, finite
from .windows import ModelKey, bounded, epoch, segment_of, too_late_reason

__all__ = ["PerformanceProcessor", "PredictionStash"]

log = logging.getLogger(__name__)
DAY = 86_400
_NS = uuid.UUID("8f0a3c55-1e7b-4d0e-a6f5-2b7d1c9e4a60")
PerfKey = tuple[str, str, str, str, float]  # tenant, model, version, segment, start
_UNKNOWN = "its model is not known yet (registry state not arrived)"
_UNSTASHED = "its prediction is not stashed (yet)"
_Item = tuple[int, dict[str, Any], bytes, float]  # offset, event, raw record, held since
_HELD_COLUMNS = "partition, source_offset, tenant_id, model_id, held_since, reason, payload"


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
        held_metrics: HeldMetrics | None = None,
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
        self.labels_too_late = 0  # their window closed before they came: dead-lettered
        self.concept_drifts = 0
        self.holding = Holding("labels", opts.hold_max_s, opts.hold_max_records, held_metrics)
        self._last_retry = 0.0
        self.windows_closed = 0

    def _model(self, key: ModelKey) -> _PerfModel:
        monitored = self.catalog.models[key]
        mon = monitored.monitoring
        cd = mon.concept_drift
        # the declared positive class (class contract, else the monitoring config's); with
        # none, precision/recall/F1 are macro-averaged: never a guess
        contract = monitored.contract
        positive = contract.positive_class if contract is not None else mon.positive_class
        m = self.models.get(key)
        if m is None:
            m = self.models[key] = _PerfModel(
                mon.window.seconds,
                mon.window.grace_seconds,
                PageHinkley(cd.delta, cd.threshold, cd.min_samples),
                positive,
            )
        else:
            m.length, m.grace = mon.window.seconds, mon.window.grace_seconds
            m.detector.delta, m.detector.threshold = cd.delta, cd.threshold
            m.detector.min_samples = cd.min_samples
            m.positive = positive
        return m

    # --- work ------------------------------------------------------------------------------

    async def ingest(self, partition: int, records: list[Any]) -> None:
        now = time.time()
        dead: list[DeadLetter] = []
        by_model: dict[ModelKey, list[_Item]] = {}
        await self._release(now)
        for r in records:
            try:  # per record: a bad one goes to the DLQ, its neighbours go on
                ev = decode_actual(r.value)
            except BadRecord as e:
                dead.append(self.bad_record(partition, r, e))
                continue
            key = (ev["tenant_id"], ev["model_id"])
            mon = self.catalog.models.get(key)
            if mon is None:  # registry state behind: hold (released before anything newer)
                self.holding.hold(key, partition, r.offset, r.value, now, _UNKNOWN)
                continue
            if mon.task is None:
                dead.append(
                    self.letter(
                        partition,
                        r,
                        f"model {key[1]!r} has no task (classification or regression): "
                        "its labels cannot be scored",
                        "no_task",
                    )
                )
                continue
            by_model.setdefault(key, []).append((r.offset, ev, r.value, now))
        for key, items in by_model.items():
            await self._join(key, partition, items, now, dead)
        await self.send_dead(dead)

    async def _join(
        self,
        key: ModelKey,
        partition: int,
        items: list[_Item],
        now: float,
        dead: list[DeadLetter],
        *,
        again: bool = False,
    ) -> None:
        """Join labels to their stashed predictions and add them to their windows. A label
        whose prediction is not stashed (yet) is held: the prediction may be behind."""
        mon = self.catalog.models[key]
        ttl = mon.monitoring.label_ttl_seconds
        found = await self.stash.get(
            key,
            [(ev["prediction_event_id"], epoch(ev["occurred_at"])) for _, ev, _, _ in items],
            ttl,
        )
        m = self._model(key)
        m.last_seen_wall = now
        self.touched[key] = partition
        results: list[PerformanceResult] = []
        for offset, ev, raw, since in items:
            pred = found.get(ev["prediction_event_id"])
            if pred is None:  # held since it first came, not since this retry
                self.holding.hold(key, partition, offset, raw, since, _UNSTASHED, again=again)
                continue
            try:
                fired = self._add(key, m, partition, mon.task or "", ev, pred)
            except _BadLabel as e:
                rec = _Raw(offset, raw, f"{key[0]}:{key[1]}".encode())
                kind = "too_late" if isinstance(e, _TooLate) else "bad_label"
                if isinstance(e, _TooLate):
                    self.labels_too_late += 1
                dead.append(self._dead(partition, rec, str(e), kind))
                continue
            self.labels_joined += 1
            if fired:
                results.append(self._concept(key, m, partition, offset, ev))
        if results:
            await self.producer.send_many(results)
            self.influx.write([_concept_point(r) for r in results])

    async def _release(self, now: float) -> None:
        """Join held labels whose model is now known (at most once a second for labels
        waiting for their prediction); dead-letter those held too long."""
        if not self.holding:
            return
        retry = now - self._last_retry >= 1.0
        if retry:
            self._last_retry = now
        dead: list[DeadLetter] = []
        for key in self.holding.releasable(lambda k: k in self.catalog.models):
            recs = self.holding.by_model[key]
            if not retry and not any(h.reason == _UNKNOWN for h in recs):
                continue  # waiting for predictions: looked up again once a second
            taken = self.holding.take(key)
            mon = self.catalog.models[key]
            by_partition: dict[int, list[_Item]] = {}
            for h in taken:
                if mon.task is None:
                    letter = self.letter(h.partition, h, "its model has no task", "no_task")
                    dead.append(letter.model_copy(update={"tenant_id": key[0]}))
                    continue
                item = (h.offset, decode_actual(h.value), h.value, h.since)
                by_partition.setdefault(h.partition, []).append(item)
            for partition, items in by_partition.items():
                waiting = self.holding.count
                await self._join(key, partition, items, now, dead, again=True)
                self.holding.released(len(items) - (self.holding.count - waiting))
        for h in self.holding.expired(now):
            dead.append(self._expired(h, now))
        await self.send_dead(dead)

    def _expired(self, h: HeldRecord, now: float) -> DeadLetter:
        waited = f"{now - h.since:.0f} s"
        if h.reason == _UNSTASHED:
            self.labels_unmatched += 1
            mon = self.catalog.models.get(h.model)
            ttl = mon.monitoring.label_ttl_seconds if mon is not None else 0
            ev = orjson.loads(h.value)
            reason = (
                f"no prediction {ev.get('prediction_event_id')} of model {h.model[1]!r} "
                f"within its label TTL ({ttl} s): expired, or never seen (waited {waited})"
            )
            letter = self._dead(h.partition, h, reason)
        else:
            reason = (
                f"model {h.model[1]!r} of tenant {h.model[0]!r} is unknown to drift "
                f"detection: no registry state arrived in {waited}"
            )
            letter = self.letter(h.partition, h, reason, "unknown_model")
        return letter.model_copy(update={"tenant_id": h.model[0]})

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
        actual_class: Any = ev["actual"]
        if task == "classification":
            actual_class, predicted, probs = _classes(
                self.catalog.models[key].contract, actual_class, predicted, probs
            )
        t = epoch(ev["occurred_at"])
        start = (t // m.length) * m.length
        if start + m.length <= m.closed_until:
            raise _TooLate(too_late_reason("a label", t, start, m.length, m.closed_until))
        m.watermark = max(m.watermark, t)
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
                error = float(w.acc.add(actual_class, predicted, probs))
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

    def _dead(
        self, partition: int, r: Any, reason: str, error_type: str = "unmatched_label"
    ) -> DeadLetter:
        return self.letter(partition, r, reason, error_type)

    async def close_ready(self) -> None:
        now = time.time()
        await self._release(now)
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
        await self.holding.save(conn, g)
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
        self.holding.saved()

    def drop(self, partitions: set[int]) -> None:
        for k in [k for k, w in self.windows.items() if w.partition in partitions]:
            self.windows.pop(k)
            self.dirty.discard(k)
        self.holding.drop(partitions)

    def reset(self) -> None:
        self.models.clear()
        self.windows.clear()
        self.dirty.clear()
        self.closed.clear()
        self.touched.clear()
        self.holding = Holding(
            "labels", self.opts.hold_max_s, self.opts.hold_max_records, self.holding.metrics
        )

    async def load(self, partitions: set[int]) -> None:
        now = time.time()
        self.holding.load(await self.saved_rows("held_events", _HELD_COLUMNS, partitions))
        for r in await self.saved_rows(
            "perf_progress", "tenant_id, model_id, closed_until, watermark, detector", partitions
        ):
            key = (r["tenant_id"], r["model_id"])
            if key not in self.catalog.models:
                continue
            m = self._model(key)
            state = orjson.loads(r["detector"])
            m.detector.load(state["page_hinkley"])
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


class _TooLate(_BadLabel):
    """A label whose performance window closed before it came."""


def _classes(
    contract: ClassContract | None, actual: Any, predicted: Any, probs: dict[str, float] | None
) -> tuple[Any, Any, dict[str, float] | None]:
    """A label, its prediction and probabilities spelt as the contract's classes; a value
    outside the contract is refused (Kafka-native producers bypass ingestion's check)."""
    if contract is None:
        return actual, predicted, probs
    a, why = contract.check_label(actual)
    if why:
        raise _BadLabel(f"{why} (class contract)")
    p, mapped, why = contract.check_prediction(predicted, probs)
    if why:
        raise _BadLabel(f"the label's prediction does not fit the class contract: {why}")
    return a, p, mapped


@dataclass
class _Raw:
    offset: int
    value: bytes
    key: bytes | None = None


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
