"""The stream processor: predictions in, per-window verdicts out.

State (open windows, how far each model is closed) and the source offsets it includes are
checkpointed together in one PostgreSQL transaction. After a crash the processor reloads the
last checkpoint and resumes at its offsets, so every event is counted exactly once in the
windows. Closing a window emits results before the checkpoint that forgets it; a crash in
between re-emits the same results (same event ids, same InfluxDB points). A rebalance
checkpoints first, and the new owner of a partition loads what was saved."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from driftline_core.db.pool import Database
from driftline_core.events import DeadLetter, encode
from driftline_core.events import predictions as predictions_topic
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import EventProducer
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

from .catalog import ModelCatalog
from .evaluate import evaluate
from .settings import DriftOptions
from .windows import ModelKey, WindowKey, WindowManager, WindowState

__all__ = ["DriftProcessor"]

log = logging.getLogger(__name__)
TOPIC = predictions_topic.TOPIC


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: DriftProcessor) -> None:
        self.p = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.p.lock:
            await self.p.checkpoint()
            self.p.manager.drop_partitions({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.p.lock:
            await self.p.restore({tp.partition for tp in assigned})


class DriftProcessor:
    def __init__(
        self,
        kafka: KafkaSettings,
        opts: DriftOptions,
        db: Database,
        producer: EventProducer,
        influx: InfluxWriter,
        catalog: ModelCatalog,
        topic: str = TOPIC,
    ) -> None:
        self.kafka, self.opts, self.db = kafka, opts, db
        self.producer, self.influx, self.catalog = producer, influx, catalog
        self.topic = topic
        self.manager = WindowManager(opts.idle_close_s)
        self.lock = asyncio.Lock()
        self.positions: dict[int, int] = {}
        self.closed: set[WindowKey] = set()
        self.touched: dict[ModelKey, int] = {}
        self.windows_closed = 0
        self.events_counted = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_checkpoint = time.monotonic()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_kwargs(self.kafka),
            group_id=self.opts.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.opts.max_poll_records,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            await asyncio.wait_for(self._task, 30)
        if self._consumer:
            async with self.lock:
                await self.checkpoint()
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while not self._stopping:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
                async with self.lock:
                    if batches:
                        await self._ingest(batches)
                    await self._close_ready()
                    if time.monotonic() - self._last_checkpoint >= self.opts.checkpoint_interval_s:
                        await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep going: a store outage must not kill the worker
                log.exception("drift processing failed; retrying")
                await asyncio.sleep(1.0)

    # --- work ------------------------------------------------------------------------------

    async def _ingest(self, batches: dict[TopicPartition, list[Any]]) -> None:
        now = time.time()
        dead: list[DeadLetter] = []
        for tp, records in batches.items():
            by_model: dict[ModelKey, list[dict[str, Any]]] = {}
            applied = self.positions.get(tp.partition, -1)
            records = [r for r in records if r.offset >= applied]  # already in saved state
            if not records:
                continue
            monitored = self.catalog.models
            for r in records:
                if r.key is not None:  # keyed tenant:model: skip models nobody monitors unparsed
                    tenant, _, model = r.key.decode("utf-8", "replace").partition(":")
                    if (tenant, model) not in monitored:
                        continue
                try:
                    ev = orjson.loads(r.value)

                    key = (ev["tenant_id"], ev["model_id"])
                    ev["occurred_at"], ev["features"], ev["model_version"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                    payload, enc = DeadLetter.wrap_payload(r.value)
                    dead.append(
                        DeadLetter(
                            reason=f"not a prediction event: {e!r}",
                            error_type="schema_mismatch",
                            source=self.opts.group_id,
                            source_topic=tp.topic,
                            source_partition=tp.partition,
                            source_offset=r.offset,
                            payload=payload,
                            payload_encoding=enc,
                        )
                    )
                    continue
                if key in self.catalog.models:
                    by_model.setdefault(key, []).append(ev)
            for key, events in by_model.items():
                mon = self.catalog.models[key]
                self.manager.configure(
                    key,
                    mon.monitoring.window.seconds,
                    mon.monitoring.window.grace_seconds,
                    mon.refs,
                )
                self.events_counted += self.manager.add(key, tp.partition, events, now)
                self.touched[key] = tp.partition
            self.positions[tp.partition] = records[-1].offset + 1
        if dead:
            await self.producer.send_records(DeadLetter.TOPIC, [(d.key(), encode(d)) for d in dead])

    async def _close_ready(self) -> None:
        for w in self.manager.ready(time.time()):
            mon = self.catalog.models.get((w.key[0], w.key[1]))
            if mon is not None and w.events:
                drift, quality, points = evaluate(
                    w, mon.detector, mon.monitoring.dataset_drift_share
                )
                await self.producer.send_many([drift, quality])
                self.influx.write(points)
            self.manager.close(w)
            self.closed.add(w.key)
            self.touched[(w.key[0], w.key[1])] = w.partition
            self.windows_closed += 1

    async def checkpoint(self) -> None:
        g = self.opts.group_id
        dirty = [self.manager.windows[k] for k in self.manager.dirty if k in self.manager.windows]
        async with self.db.pool.acquire() as conn, conn.transaction():
            if dirty:
                await conn.executemany(
                    "INSERT INTO windows (group_id, partition, tenant_id, model_id, model_version,"
                    " window_start, state) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT "
                    "(group_id, tenant_id, model_id, model_version, window_start) DO UPDATE "
                    "SET state = excluded.state, partition = excluded.partition",
                    [(g, w.partition, *w.key, orjson.dumps(w.to_json()).decode()) for w in dirty],
                )
            if self.closed:
                await conn.executemany(
                    "DELETE FROM windows WHERE group_id = $1 AND tenant_id = $2 AND model_id = $3"
                    " AND model_version = $4 AND window_start = $5",
                    [(g, *k) for k in self.closed],
                )
            if self.touched:
                rows = []
                for key, part in self.touched.items():
                    m = self.manager.models.get(key)
                    if m is not None:
                        rows.append((g, part, *key, _finite(m.closed_until), _finite(m.watermark)))
                await conn.executemany(
                    "INSERT INTO progress (group_id, partition, tenant_id, model_id, closed_until,"
                    " watermark) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (group_id, "
                    "tenant_id, model_id) DO UPDATE SET closed_until = excluded.closed_until, "
                    "watermark = excluded.watermark, partition = excluded.partition",
                    rows,
                )
            if self.positions:
                await conn.executemany(
                    "INSERT INTO offsets (group_id, topic, partition, next_offset) VALUES "
                    "($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition) DO UPDATE SET "
                    "next_offset = excluded.next_offset",
                    [(g, self.topic, p, o) for p, o in self.positions.items()],
                )
        if self.positions and self._consumer is not None:
            try:  # for lag monitoring only; the truth is in PostgreSQL
                assigned = self._consumer.assignment()
                await self._consumer.commit(
                    {
                        TopicPartition(self.topic, p): o
                        for p, o in self.positions.items()
                        if TopicPartition(self.topic, p) in assigned
                    }
                )
            except Exception as e:
                log.debug("offset commit to Kafka skipped", extra={"error": repr(e)})
        self.manager.dirty.clear()
        self.closed.clear()
        self.touched.clear()
        self._last_checkpoint = time.monotonic()

    async def restore(self, partitions: set[int]) -> None:
        assert self._consumer is not None
        g = self.opts.group_id
        rows = await self.db.pool.fetch(
            "SELECT partition, next_offset FROM offsets WHERE group_id = $1 AND topic = $2 "
            "AND partition = ANY($3::int[])",
            g,
            self.topic,
            sorted(partitions),
        )
        self.manager.drop_partitions(partitions)  # the saved state is the truth
        for r in rows:
            self._consumer.seek(TopicPartition(self.topic, r["partition"]), r["next_offset"])
            self.positions[r["partition"]] = r["next_offset"]

        now = time.time()
        for r in await self.db.pool.fetch(
            "SELECT tenant_id, model_id, closed_until, watermark FROM progress "
            "WHERE group_id = $1 AND partition = ANY($2::int[])",
            g,
            sorted(partitions),
        ):
            key = (r["tenant_id"], r["model_id"])
            mon = self.catalog.models.get(key)
            if mon is None:
                continue
            self.manager.configure(
                key, mon.monitoring.window.seconds, mon.monitoring.window.grace_seconds, mon.refs
            )
            m = self.manager.models[key]
            m.closed_until, m.watermark, m.last_seen_wall = r["closed_until"], r["watermark"], now
        for r in await self.db.pool.fetch(
            "SELECT tenant_id, model_id, model_version, window_start, state FROM windows "
            "WHERE group_id = $1 AND partition = ANY($2::int[])",
            g,
            sorted(partitions),
        ):
            wkey: WindowKey = (r["tenant_id"], r["model_id"], r["model_version"], r["window_start"])
            if (wkey[0], wkey[1]) in self.manager.models:
                self.manager.windows[wkey] = WindowState.from_json(wkey, orjson.loads(r["state"]))
        log.info(
            "partitions restored", extra={"partitions": sorted(partitions), "offsets": len(rows)}
        )


def _finite(x: float) -> float:
    return x if x not in (float("inf"), float("-inf")) else -1e18
