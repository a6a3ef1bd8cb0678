"""Records held back because of ordering between topics, never skipped.

A prediction can reach drift detection before the registry event that announces its model
(ingestion accepts it once the model is in the registry; the registry event follows through
the outbox, a second or so later), and a label can arrive before its prediction is stashed.
Such a record is held, per model, until what it waits for arrives; then the processor
applies it as if it had just been read. Held records are part of the processor's state:
saved in the same checkpoint transaction as the offsets that passed them (`held_events`,
raw bytes), so a crash neither loses nor repeats one.

Holding is bounded: a record held longer than `max_age_s`, or past `max_records` held in
all, goes to the DLQ with the reason (`expired`). Counted in
`driftline_drift_held_records` (gauge, by processor) and `driftline_drift_held_total`
(counter, by processor and outcome: held, released, dead_lettered)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["HeldMetrics", "HeldRecord", "Holding"]

log = logging.getLogger(__name__)

ModelKey = tuple[str, str]


@dataclass(slots=True)
class HeldRecord:
    partition: int
    offset: int
    model: ModelKey
    since: float  # wall clock when first held
    reason: str  # what it waits for (shown in the DLQ if it waits too long)
    value: bytes


class HeldMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.held = Gauge(
            "driftline_drift_held_records",
            "Records held until their model's registry state (or their prediction) arrives",
            ["processor"],
            registry=registry,
        )
        self.outcomes = Counter(
            "driftline_drift_held",
            "Records held, released after the wait, or dead-lettered when the wait was too long",
            ["processor", "outcome"],
            registry=registry,
        )


@dataclass
class Holding:
    name: str  # the processor ("predictions", "labels"), for metrics and logs
    max_age_s: float = 120.0
    max_records: int = 200_000
    metrics: HeldMetrics | None = None
    by_model: dict[ModelKey, list[HeldRecord]] = field(default_factory=dict)
    added: dict[tuple[int, int], HeldRecord] = field(default_factory=dict)  # not saved yet
    removed: set[tuple[int, int]] = field(default_factory=set)  # saved, to delete
    count: int = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def holds(self, key: ModelKey) -> bool:
        return key in self.by_model

    def hold(
        self,
        key: ModelKey,
        partition: int,
        offset: int,
        value: bytes,
        since: float,
        reason: str,
        *,
        again: bool = False,
    ) -> None:
        """Hold a record (`again`: one taken for a retry that must wait longer)."""
        rec = HeldRecord(partition, offset, key, since, reason, value)
        self.by_model.setdefault(key, []).append(rec)
        pk = (partition, offset)
        self.removed.discard(pk)
        self.added[pk] = rec  # an upsert: a record held again may wait for something else
        self.count += 1
        self._count("held" if not again else "", 0 if again else 1)

    def _forget(self, recs: Iterable[HeldRecord]) -> None:
        for r in recs:
            pk = (r.partition, r.offset)
            if self.added.pop(pk, None) is None:
                self.removed.add(pk)
            self.count -= 1

    def take(self, key: ModelKey) -> list[HeldRecord]:
        """All held records of a model, in offset order, and forget them (released, unless
        held `again`)."""
        recs = sorted(self.by_model.pop(key, []), key=lambda r: (r.partition, r.offset))
        self._forget(recs)
        return recs

    def released(self, n: int) -> None:
        """n taken records were applied (the caller counts: some may be held again)."""
        self._count("released", n)

    def releasable(self, ready: Callable[[ModelKey], bool]) -> list[ModelKey]:
        return [k for k in self.by_model if ready(k)]

    def expired(self, now: float) -> list[HeldRecord]:
        """Records that waited too long (or overflow the bound, oldest first): forgotten
        here, for the caller to dead-letter."""
        out: list[HeldRecord] = []
        for key in list(self.by_model):
            recs = self.by_model[key]
            old = [r for r in recs if now - r.since >= self.max_age_s]
            if old:
                keep = [r for r in recs if now - r.since < self.max_age_s]
                if keep:
                    self.by_model[key] = keep
                else:
                    del self.by_model[key]
                out.extend(old)
        self._forget(out)
        over = self.count - self.max_records
        if over > 0:
            oldest = sorted(
                (r for recs in self.by_model.values() for r in recs), key=lambda r: r.since
            )[:over]
            gone = {(r.partition, r.offset) for r in oldest}
            for key in list(self.by_model):
                keep = [r for r in self.by_model[key] if (r.partition, r.offset) not in gone]
                if keep:
                    self.by_model[key] = keep
                else:
                    del self.by_model[key]
            self._forget(oldest)
            out.extend(oldest)
        self._count("dead_lettered", len(out))
        return out

    def _count(self, outcome: str, n: int = 1) -> None:
        if self.metrics is not None:
            if n:
                self.metrics.outcomes.labels(self.name, outcome).inc(n)
            self.metrics.held.labels(self.name).set(self.count)

    # --- checkpoints -----------------------------------------------------------------------

    async def save(self, conn: asyncpg.Connection, group_id: str) -> None:
        if self.removed:
            await conn.executemany(
                "DELETE FROM held_events WHERE group_id = $1 AND partition = $2 "
                "AND source_offset = $3",
                [(group_id, p, o) for p, o in self.removed],
            )
        if self.added:
            await conn.executemany(
                "INSERT INTO held_events (group_id, partition, source_offset, tenant_id, "
                "model_id, held_since, reason, payload) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                "ON CONFLICT (group_id, partition, source_offset) DO UPDATE SET "
                "held_since = excluded.held_since, reason = excluded.reason",
                [
                    (group_id, r.partition, r.offset, *r.model, r.since, r.reason, r.value)
                    for r in self.added.values()
                ],
            )

    def saved(self) -> None:
        self.added.clear()
        self.removed.clear()

    def drop(self, partitions: set[int]) -> None:
        for key in list(self.by_model):
            keep = [r for r in self.by_model[key] if r.partition not in partitions]
            self.count -= len(self.by_model[key]) - len(keep)
            if keep:
                self.by_model[key] = keep
            else:
                del self.by_model[key]
        self.added = {k: r for k, r in self.added.items() if k[0] not in partitions}
        self.removed = {k for k in self.removed if k[0] not in partitions}
        self._count("dropped", 0)

    def load(self, rows: Iterable[Any]) -> None:
        for r in rows:
            rec = HeldRecord(
                r["partition"],
                r["source_offset"],
                (r["tenant_id"], r["model_id"]),
                r["held_since"],
                r["reason"],
                bytes(r["payload"]),
            )
            self.by_model.setdefault(rec.model, []).append(rec)
            self.count += 1
        self._count("loaded", 0)
