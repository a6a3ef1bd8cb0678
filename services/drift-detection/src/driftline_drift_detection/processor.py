"""The stream processor: predictions in, per-window verdicts out.

State (open windows, how far each model is closed) and the source offsets it includes are
checkpointed together in one PostgreSQL transaction (see `stream`), so every event is counted
exactly once in the windows. Closing a window emits results before the checkpoint that
forgets it; a crash in between re-emits the same results (same event ids, same InfluxDB
points). Predictions of models with a task are also kept for the late-label join (`labels`)."""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
import orjson

from driftline_core.db.pool import Database
from driftline_core.events import DeadLetter
from driftline_core.events import predictions as predictions_topic
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import EventProducer
from driftline_core.settings import KafkaSettings

from .catalog import ModelCatalog
from .decoding import BadRecord, decode_prediction
from .evaluate import evaluate
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
    ) -> None:
        super().__init__(
            kafka,
            db,
            topic=topic,
            group_id=opts.group_id,
            checkpoint_interval_s=opts.checkpoint_interval_s,
            max_poll_records=opts.max_poll_records,
            dlq=producer,
        )
        self.opts = opts
        self.producer, self.influx, self.catalog, self.stash = producer, influx, catalog, stash
        self.manager = WindowManager(opts.idle_close_s)
        self.closed: set[WindowKey] = set()
        self.touched: dict[ModelKey, int] = {}
        self.windows_closed = 0
        self.events_counted = 0

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
        monitored = self.catalog.models
        for r in records:
            if r.key is not None:  # keyed tenant:model: skip models nobody monitors unparsed
                tenant, _, model = r.key.decode("utf-8", "replace").partition(":")
                if (tenant, model) not in monitored:
                    continue
            try:  # per record: a bad one goes to the DLQ, its neighbours go on
                ev = decode_prediction(r.value)
            except BadRecord as e:
                dead.append(self.bad_record(partition, r, e))
                continue
            key = (ev["tenant_id"], ev["model_id"])
            if key in monitored:
                by_model.setdefault(key, []).append(ev)
        for key, events in by_model.items():
            self._configure(key)
            self.events_counted += self.manager.add(key, partition, events, now)
            self.touched[key] = partition
            mon = monitored[key]
            if self.stash is not None and mon.task is not None:
                await self.stash.put(key, events, mon.monitoring)
        await self.send_dead(dead)

    async def close_ready(self) -> None:
        for w in self.manager.ready(time.time()):
            mon = self.catalog.models.get((w.key[0], w.key[1]))
            if mon is not None and w.events:
                drift, quality, points = evaluate(
                    w, mon.detector, mon.monitoring.dataset_drift_share, mon.pca
                )
                await self.producer.send_many([drift, quality])
                self.influx.write(points)
            self.manager.close(w)
            self.closed.add(w.key)
            self.touched[(w.key[0], w.key[1])] = w.partition
            self.windows_closed += 1

    async def save(self, conn: asyncpg.Connection) -> None:
        g = self.group_id
        dirty = [self.manager.windows[k] for k in self.manager.dirty if k in self.manager.windows]
        if dirty:
            await conn.executemany(
                "INSERT INTO windows (group_id, partition, tenant_id, model_id, model_version,"
                " segment, window_start, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON "
                "CONFLICT (group_id, tenant_id, model_id, model_version, segment, window_start)"
                " DO UPDATE SET state = excluded.state, partition = excluded.partition",
                [(g, w.partition, *w.key, orjson.dumps(w.to_json()).decode()) for w in dirty],
            )
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

    def drop(self, partitions: set[int]) -> None:
        self.manager.drop_partitions(partitions)

    def reset(self) -> None:
        self.manager = WindowManager(self.opts.idle_close_s)
        self.closed.clear()
        self.touched.clear()

    async def load(self, partitions: set[int]) -> None:
        now = time.time()
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
            "tenant_id, model_id, model_version, segment, window_start, state",
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
                self.manager.windows[wkey] = WindowState.from_json(wkey, orjson.loads(r["state"]))
