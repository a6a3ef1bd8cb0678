"""The stream processor: predictions in, per-window verdicts out.

State (open windows, how far each model is closed) and the source offsets it includes are
checkpointed together in one PostgreSQL transaction (see `stream`), so every event is counted
exactly once in the windows. Closing a window emits results before the checkpoint that
forgets it; a crash in between re-emits the same results (same event ids, same InfluxDB
points). Predictions of models with a task are also kept for the late-label join (`labels`).

Every model the registry announced is windowed, with or without a reference (without one,
windows count events and quality, and drift tests start with the reference). A record of a
model the catalogue does not know yet (its registry event is behind the prediction) is held,
not skipped, and applied when the model arrives, or dead-lettered after `hold_max_s`
(`held`). A window whose verdict cannot be computed is closed and dead-lettered with the
reason, so one model never stops the others' windows or the checkpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import orjson

from driftline_core.db.pool import Database
from driftline_core.errors import is_retriable
from driftline_core.events import DeadLetter
from driftline_core.events import predictions as predictions_topic
from driftline_core.events.batch import BadBatch, decode_batch, is_batch
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import EventProducer
from driftline_core.settings import KafkaSettings

from .catalog import ModelCatalog
from .columnar import batch_columns, batch_problems, decoder_for
from .decoding import BadRecord, decode_prediction
from .evaluate import evaluate
from .held import HeldMetrics, HeldRecord, Holding
from .labels import PredictionStash
from .settings import DriftOptions
from .stream import CheckpointedProcessor, finite
from .windows import ModelKey, WindowKey, WindowManager, WindowState

__all__ = ["DriftProcessor"]

log = logging.getLogger(__name__)
TOPIC = predictions_topic.TOPIC


class DriftProcessor(CheckpointedProcessor):
    def __init__(
        self,
        kafka: KafkaSettings,
        opts: DriftOptions,
        db: Database,
        producer: EventProducer,
        influx: InfluxWriter,
        catalog: ModelCatalog,
        topic: str = TOPIC,
        stash: PredictionStash | None = None,
        held_metrics: HeldMetrics | None = None,
    ) -> None:
        super().__init__(
            kafka,
            db,
            topic=topic,
            group_id=opts.group_id,
            checkpoint_interval_s=opts.checkpoint_interval_s,
            max_poll_records=opts.max_poll_records,
            dlq=producer,
            checkpoint_max_bytes_per_s=opts.checkpoint_max_bytes_per_s,
        )
        self.opts = opts
        self.producer, self.influx, self.catalog, self.stash = producer, influx, catalog, stash
        self.manager = WindowManager(opts.idle_close_s)
        self.closed: set[WindowKey] = set()
        self.touched: dict[ModelKey, int] = {}
        self.windows_closed = 0
        self.events_counted = 0
        self.windows_failed = 0
        self.holding = Holding("predictions", opts.hold_max_s, opts.hold_max_records, held_metrics)

    # --- work ------------------------------------------------------------------------------

    def _configure(self, key: ModelKey) -> None:
        mon = self.catalog.models[key]
        self.manager.configure(
            key,
            mon.monitoring.window.seconds,
            mon.monitoring.window.grace_seconds,
            mon.refs,
            mon.monitoring.segments,
            mon.pca,
        )

    async def ingest(self, partition: int, records: list[Any]) -> None:
        now = time.time()
        dead: list[DeadLetter] = []
        by_model: dict[ModelKey, list[dict[str, Any]]] = {}
        sources: dict[ModelKey, list[tuple[Any, int | None]]] = {}
        monitored = self.catalog.models
        await self._release(now)
        for r in self._ingest_columnar(partition, records, now, dead):
            evs, places = self._decode_placed(partition, r, dead)  # bad ones: DLQ, rest go on
            if not evs:
                continue
            key = (evs[0]["tenant_id"], evs[0]["model_id"])
            if key not in monitored or self.holding.holds(key) or self._awaits_reference(key, now):
                # its registry state (or the reference that follows registration) is
                # behind: hold, never skip
                reason = _UNKNOWN if key not in monitored else _NO_REFERENCE
                self.holding.hold(key, partition, r.offset, r.value, now, reason)
                continue
            by_model.setdefault(key, []).extend(evs)
            sources.setdefault(key, []).extend((r, j) for j in places)
        for key, events in by_model.items():
            await self._apply(key, partition, events, now, sources[key], dead)
        for key in self.touched:  # models with live traffic: their thresholds warmed ahead
            m = self.manager.models.get(key)
            if m is not None:
                self.catalog.touch(key, m.watermark)
        await self.send_dead(dead)

    def _decode(self, partition: int, r: Any, dead: list[DeadLetter]) -> list[dict[str, Any]]:
        return self._decode_placed(partition, r, dead)[0]

    def _decode_placed(
        self, partition: int, r: Any, dead: list[DeadLetter]
    ) -> tuple[list[dict[str, Any]], list[int | None]]:
        """The record's events as dicts (one for a per-event record, the good ones of a batch
        record) and each one's place in its batch (None: a per-event record); bad ones
        become dead letters."""
        if is_batch(r.value, getattr(r, "headers", None)):
            try:
                batch = decode_batch(r.value)
            except BadBatch as e:
                dead.append(self.letter(partition, r, e.reason, "schema_mismatch"))
                return [], []
            problems = batch_problems(batch)
            evs = batch.events()
            for i, reason in problems.items():
                dead.append(self._bad_event(partition, r, evs[i], i, reason))
            places: list[int | None] = [i for i in range(len(evs)) if i not in problems]
            return [evs[i] for i in places if i is not None], places
        try:
            return [decode_prediction(r.value)], [None]
        except BadRecord as e:
            dead.append(self.bad_record(partition, r, e))
            return [], []

    def _too_late(
        self,
        tenant: str,
        partition: int,
        r: Any,
        place: int | None,
        ev: dict[str, Any] | None,
        reason: str,
    ) -> DeadLetter:
        """The dead letter of an event too late for its window (the record, or the event of
        a batch record at `place`)."""
        if place is None:
            letter = self.letter(partition, r, reason, "too_late")
        else:
            assert ev is not None
            letter = self._bad_event(partition, r, ev, place, reason, "too_late")
        return letter.model_copy(update={"tenant_id": tenant})

    def _bad_event(
        self,
        partition: int,
        r: Any,
        ev: dict[str, Any],
        index: int,
        reason: str,
        error_type: str = "schema_mismatch",
    ) -> DeadLetter:
        """The dead letter of one event of a batch record: the event as JSON, its place."""
        one = _Window(r.offset, orjson.dumps(ev, option=orjson.OPT_SERIALIZE_NUMPY, default=str))
        one.key = getattr(r, "key", None)
        return self.letter(partition, one, f"event {index} of a batch record: {reason}", error_type)

    def _fast(self, key: ModelKey | None, now: float) -> bool:
        """Whether this model's events can take the columnar path now."""
        mon = self.catalog.models.get(key) if key is not None else None
        if (
            key is None
            or mon is None
            or self.holding.holds(key)
            or self._awaits_reference(key, now)
            or (self.stash is not None and mon.task is not None)
        ):
            return False
        self._configure(key)
        return self.manager.columnar(key)

    def _ingest_batch(self, partition: int, r: Any, now: float, dead: list[DeadLetter]) -> bool:
        """A batch record on the columnar path; False leaves it to the per-event path."""
        try:
            batch = decode_batch(r.value)
        except BadBatch:
            return False  # the per-event path dead-letters it with the reason
        key = (batch.tenant_id, batch.model_id)
        if not self._fast(key, now):
            return False
        problems = batch_problems(batch)
        keep = None
        if problems:
            keep = np.array([i for i in range(batch.n) if i not in problems], dtype=np.intp)
        cols = batch_columns(decoder_for(self.catalog.models[key].refs), batch, keep)
        rejected: list[tuple[int, str]] = []
        counted = (
            None if cols is None else self.manager.add_columns(key, partition, cols, now, rejected)
        )
        if counted is None:
            return False
        evs = batch.events() if problems or rejected else []
        for i, reason in problems.items():
            dead.append(self._bad_event(partition, r, evs[i], i, reason))
        for i, reason in rejected:
            j = int(keep[i]) if keep is not None else i
            dead.append(self._too_late(key[0], partition, r, j, evs[j], reason))
        self.events_counted += counted
        self.touched[key] = partition
        return True

    def _ingest_columnar(
        self, partition: int, records: list[Any], now: float, dead: list[DeadLetter]
    ) -> list[Any]:
        """The fast path: each Kafka key's per-event records of a known model decoded in one
        call into columns, and each batch record's columns, added to the windows. Returns
        the records left for the per-event path (a group that does not decode cleanly, held
        or unknown models, models with segments, PCA or a label join), which decides each
        one's fate as before."""
        by_key: dict[bytes | None, list[Any]] = {}
        rest: list[Any] = []
        for r in records:
            if is_batch(r.value, getattr(r, "headers", None)):
                if not self._ingest_batch(partition, r, now, dead):
                    rest.append(r)
            else:
                by_key.setdefault(r.key, []).append(r)
        for raw, group in by_key.items():
            key = _model_key(raw)
            if key is None or not self._fast(key, now):
                rest.extend(group)
                continue
            mon = self.catalog.models[key]
            cols = decoder_for(mon.refs).decode_group(key[0], key[1], [r.value for r in group])
            rejected: list[tuple[int, str]] = []
            counted = (
                None
                if cols is None
                else self.manager.add_columns(key, partition, cols, now, rejected)
            )
            if counted is None:
                rest.extend(group)
                continue
            for i, reason in rejected:
                dead.append(self._too_late(key[0], partition, group[i], None, None, reason))
            self.events_counted += counted
            self.touched[key] = partition
        if rest:
            rest.sort(key=lambda r: r.offset)
        return rest

    async def _apply(
        self,
        key: ModelKey,
        partition: int,
        events: list[dict[str, Any]],
        now: float,
        sources: list[tuple[Any, int | None]],
        dead: list[DeadLetter],
    ) -> None:
        """Add one model's events (each from `sources`: its record, its place in a batch
        record); the ones too late for their window become dead letters."""
        self._configure(key)
        rejected: list[tuple[int, str]] = []
        self.events_counted += self.manager.add(key, partition, events, now, rejected)
        for i, reason in rejected:
            r, place = sources[i]
            dead.append(self._too_late(key[0], partition, r, place, events[i], reason))
        self.touched[key] = partition
        mon = self.catalog.models[key]
        if self.stash is not None and mon.task is not None:
            await self.stash.put(key, events, mon.monitoring)

    def _awaits_reference(self, key: ModelKey, now: float) -> bool:
        """A model registered moments ago without a reference: its reference usually follows
        within a second, and a window opened before it would have no verdicts."""
        mon = self.catalog.models.get(key)
        return (
            mon is not None
            and not mon.has_reference
            and now - mon.known_since < self.opts.reference_wait_s
        )

    async def _release(self, now: float) -> None:
        """Apply the held records of models now known (with their reference, or past the
        wait for it); dead-letter those held too long."""
        if not self.holding:
            return
        known = self.catalog.models
        ready = self.holding.releasable(lambda k: k in known and not self._awaits_reference(k, now))
        late: list[DeadLetter] = []
        for key in ready:
            by_partition: dict[int, list[dict[str, Any]]] = {}
            placed: dict[int, list[tuple[Any, int | None]]] = {}
            for h in self.holding.take(key):
                # a held batch's bad events were dead-lettered when it was held
                evs, places = self._decode_placed(h.partition, h, [])
                by_partition.setdefault(h.partition, []).extend(evs)
                placed.setdefault(h.partition, []).extend((h, j) for j in places)
            for partition, events in by_partition.items():
                await self._apply(key, partition, events, now, placed[partition], late)
                self.holding.released(len(events))
        await self.send_dead(late)
        expired = self.holding.expired(now)
        if expired:
            await self.send_dead([self._expired(h, now) for h in expired])

    def _expired(self, h: HeldRecord, now: float) -> DeadLetter:
        letter = self.letter(
            h.partition,
            h,
            f"model {h.model[1]!r} of tenant {h.model[0]!r}: {h.reason}, and no registry "
            f"state arrived in {now - h.since:.0f} s "
            f"(held at most {self.holding.max_age_s:g} s or {self.holding.max_records} records)",
            "unknown_model",
        )
        return letter.model_copy(update={"tenant_id": h.model[0]})

    async def close_ready(self) -> None:
        now = time.time()
        await self._release(now)
        for w in self.manager.ready(now):
            mon = self.catalog.models.get((w.key[0], w.key[1]))
            if mon is not None and w.events and not mon.detector.ready:
                try:  # awaited, never computed in this event loop
                    await self.catalog.ensure((w.key[0], w.key[1]))
                except Exception as e:  # then the detector computes what is missing
                    log.error("drift thresholds not ready", extra={"error": repr(e)})
                mon = self.catalog.models.get((w.key[0], w.key[1]))
            if mon is not None and w.events:
                try:  # one model's failure never stops the others' windows or checkpoints
                    drift, quality, points = evaluate(
                        w, mon.detector, mon.monitoring.dataset_drift_share, mon.pca
                    )
                except Exception as e:
                    if is_retriable(e):
                        raise
                    await self._window_failed(w, e)
                else:
                    await self.producer.send_many([drift, quality])
                    self.influx.write(points)
            self.manager.close(w)
            self.closed.add(w.key)
            self.touched[(w.key[0], w.key[1])] = w.partition
            self.windows_closed += 1
            await asyncio.sleep(0)  # many windows closing at once never hold the loop

    async def _window_failed(self, w: WindowState, e: Exception) -> None:
        """A window whose verdict cannot be computed: closed, with a dead letter that says
        which window, how many events it held, and why."""
        self.windows_failed += 1
        tenant, model, version, segment, start = w.key
        log.error(
            "window evaluation failed; window dead-lettered",
            extra={"tenant": tenant, "model": model, "error": repr(e)},
        )
        summary = {
            "tenant_id": tenant,
            "model_id": model,
            "model_version": version,
            "segment": segment,
            "window_start": start,
            "window_end": w.end,
            "events": w.events,
        }
        letter = self.letter(
            w.partition,
            _Window(-1, orjson.dumps(summary)),
            f"the {w.events} events of window {start:.0f}-{w.end:.0f} of model {model!r} "
            f"(version {version!r}{', ' + segment if segment else ''}) got no verdict: "
            f"{type(e).__name__}: {e}",
            "window_failed",
        )
        await self.send_dead([letter.model_copy(update={"tenant_id": tenant})])

    async def save(self, conn: asyncpg.Connection) -> None:
        g = self.group_id
        await self.holding.save(conn, g)
        dirty = [self.manager.windows[k] for k in self.manager.dirty if k in self.manager.windows]
        if dirty:  # only windows changed since the last checkpoint, in binary
            states = [(g, w.partition, *w.key, w.to_bytes()) for w in dirty]
            self.last_checkpoint_bytes = sum(len(s[-1]) for s in states)
            self.checkpoint_bytes_total += self.last_checkpoint_bytes
            await conn.executemany(
                "INSERT INTO windows (group_id, partition, tenant_id, model_id, model_version,"
                " segment, window_start, state_bin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON "
                "CONFLICT (group_id, tenant_id, model_id, model_version, segment, window_start)"
                " DO UPDATE SET state_bin = excluded.state_bin, state = NULL, "
                "partition = excluded.partition",
                states,
            )
        else:
            self.last_checkpoint_bytes = 0
        if self.closed:
            await conn.executemany(
                "DELETE FROM windows WHERE group_id = $1 AND tenant_id = $2 AND model_id = $3"
                " AND model_version = $4 AND segment = $5 AND window_start = $6",
                [(g, *k) for k in self.closed],
            )
        if self.touched:
            rows = []
            for key, part in self.touched.items():
                m = self.manager.models.get(key)
                if m is not None:
                    rows.append((g, part, *key, finite(m.closed_until), finite(m.watermark)))
            await conn.executemany(
                "INSERT INTO progress (group_id, partition, tenant_id, model_id, closed_until,"
                " watermark) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (group_id, "
                "tenant_id, model_id) DO UPDATE SET closed_until = excluded.closed_until, "
                "watermark = excluded.watermark, partition = excluded.partition",
                rows,
            )

    def saved(self) -> None:
        self.manager.dirty.clear()
        self.closed.clear()
        self.touched.clear()
        self.holding.saved()

    def drop(self, partitions: set[int]) -> None:
        self.manager.drop_partitions(partitions)
        self.holding.drop(partitions)

    def reset(self) -> None:
        self.manager = WindowManager(self.opts.idle_close_s)
        self.closed.clear()
        self.touched.clear()
        self.holding = Holding(
            "predictions", self.opts.hold_max_s, self.opts.hold_max_records, self.holding.metrics
        )

    async def load(self, partitions: set[int]) -> None:
        now = time.time()
        self.holding.load(await self.saved_rows("held_events", _HELD_COLUMNS, partitions))
        for r in await self.saved_rows(
            "progress", "tenant_id, model_id, closed_until, watermark", partitions
        ):
            key = (r["tenant_id"], r["model_id"])
            if key not in self.catalog.models:
                continue
            self._configure(key)
            m = self.manager.models[key]
            m.closed_until, m.watermark, m.last_seen_wall = r["closed_until"], r["watermark"], now
        for r in await self.saved_rows(
            "windows",
            "tenant_id, model_id, model_version, segment, window_start, state, state_bin",
            partitions,
        ):
            wkey: WindowKey = (
                r["tenant_id"],
                r["model_id"],
                r["model_version"],
                r["segment"],
                r["window_start"],
            )
            if (wkey[0], wkey[1]) in self.manager.models:
                self.manager.windows[wkey] = (
                    WindowState.from_bytes(wkey, r["state_bin"])
                    if r["state_bin"] is not None
                    else WindowState.from_json(wkey, orjson.loads(r["state"]))  # older rows
                )


def _model_key(raw: bytes | None) -> ModelKey | None:
    """The (tenant, model) a record key `tenant:model` names, if it does."""
    if not raw:
        return None
    tenant, sep, model = raw.decode("utf-8", "replace").partition(":")
    return (tenant, model) if sep and tenant and model else None


_UNKNOWN = "its model is not known yet (registry state not arrived)"
_NO_REFERENCE = "its model was registered moments ago; its reference may follow"
_HELD_COLUMNS = "partition, source_offset, tenant_id, model_id, held_since, reason, payload"


@dataclass
class _Window:
    """A closed window (or one event of a batch record) as the record a dead letter
    describes."""

    offset: int
    value: bytes
    key: bytes | None = None
