"""What drift detection knows of each model: task, feature names, monitoring config,
class contract, references and the PCA reference, kept in its own schema from
`driftline.registry.v1` (it never reads the registry's tables). Any change that carries one
of them (registration, `model_updated`, `schema_changed`, `monitoring_config_changed`,
`reference_profile_updated`) rebuilds the model's detector; a feature dropped from the
schema stops being tested at once.

Every model the registry announced is known, with or without a reference: performance
monitoring needs only the task (and a classifier's contract); drift tests start when a
reference arrives. A change is validated (the model it would make is built) **before** it
is stored: an invalid one is refused with the reason (`InvalidEventError`, so the consumer
sends it to the DLQ) and the stored model stays as it was. A stored row that cannot be built
(written by an older version, say) is skipped at start, logged and counted in
`driftline_drift_models_invalid`, so one bad row never stops the service.

A model's bootstrapped drift thresholds (`driftline_stats.thresholds`) are read back from
the `thresholds` table, or computed in a worker process (spawned, one; never in the event
loop: the bootstrap holds the GIL) and stored there, once the model gets events (`touch`),
and awaited before its window closes (`ensure`), so a window close never computes one and
models without traffic cost nothing (decision 43)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Gauge
from pydantic import ValidationError

from driftline_core.db.pool import HasPool
from driftline_core.errors import InvalidEventError
from driftline_core.events import RegistryChange
from driftline_core.events.features import MonitoringConfig, monitoring_problems
from driftline_core.events.registry import ClassContract
from driftline_core.kafka import Message
from driftline_stats.detector import Detector, FeatureReference, Test
from driftline_stats.multivariate import PCAReference
from driftline_stats.profile import PREDICTION
from driftline_stats.thresholds import (
    ThresholdSpec,
    ThresholdTable,
    cached,
    compute_bytes,
    remember,
)

__all__ = ["ModelCatalog", "Monitored"]

log = logging.getLogger(__name__)


_COLUMNS = "task, features, monitoring, references_, multivariate, classes"
WARM_RECENT_S = 86_400.0  # events this recent (event time) make a model's warming start


@dataclass
class Monitored:
    monitoring: MonitoringConfig
    refs: list[FeatureReference]
    detector: Detector
    task: str | None = None
    pca: PCAReference | None = None
    contract: ClassContract | None = None
    # wall clock when this process learnt of the model (0: loaded at start, long known)
    known_since: float = 0.0

    @property
    def has_reference(self) -> bool:
        return bool(self.refs)


class InvalidModel(ValueError):
    pass


class ModelCatalog:
    def __init__(
        self, db: HasPool, family_alpha: float, registry: CollectorRegistry | None = None
    ) -> None:
        self._db = db
        self._alpha = family_alpha
        self.models: dict[tuple[str, str], Monitored] = {}
        self.invalid: dict[tuple[str, str], str] = {}  # stored models skipped, and why
        # the stored row (its updated_at) each model in memory was built from: `refresh`
        self._versions: dict[tuple[str, str], datetime] = {}
        self.thresholds_computed = 0  # tables this process computed (not read back)
        self.thresholds_loaded = 0  # tables read back from the thresholds table
        self._warming: set[asyncio.Task[None]] = set()
        self._queued: dict[tuple[str, str], None] = {}  # models to warm, in order
        self._drainer: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._invalid_gauge = (
            Gauge(
                "driftline_drift_models_invalid",
                "Stored models drift detection could not build at start (skipped)",
                registry=registry,
            )
            if registry is not None
            else None
        )

    def _build(self, r: Any) -> Monitored:
        """The model a row describes; raises InvalidModel saying what is wrong."""
        try:
            return self._build_unchecked(r)
        except (ValidationError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
            raise InvalidModel(_describe(e)) from e

    def _build_unchecked(self, r: Any) -> Monitored:
        cfg = MonitoringConfig.model_validate(_loads(r["monitoring"]) or {})
        names = set(_loads(r["features"])) if r["features"] is not None else None
        references = [
            FeatureReference.from_dict(d)
            for d in (_loads(r["references_"]) or [])
            if names is None or d["name"] in names or d["name"] == PREDICTION
        ]
        task = r["task"]
        if task not in (None, "classification", "regression"):
            raise ValueError(f"task {task!r} is neither classification nor regression")
        contract = None
        if r["classes"] is not None and task == "classification":
            contract = ClassContract.model_validate(_loads(r["classes"]))
        problems = monitoring_problems(
            cfg, {ref.name: ref.kind for ref in references}, task, complete=False
        )
        if problems:
            raise ValueError("; ".join(f"{f}: {m}" for f, m in problems))
        tests: dict[str, Test] = {n: t.test for n, t in cfg.features.items() if t.test != "auto"}
        fixed = {n: t.threshold for n, t in cfg.features.items() if t.threshold}
        if cfg.prediction.test != "auto":
            tests[PREDICTION] = cfg.prediction.test
        if cfg.prediction.threshold:
            fixed[PREDICTION] = cfg.prediction.threshold
        pca = None
        if r["multivariate"] is not None and references:
            pca = PCAReference.from_dict(_loads(r["multivariate"]))
            if names is not None and not set(pca.features) <= names:
                pca = None  # fitted on features the schema no longer has
        return Monitored(
            cfg,
            references,
            Detector(references, family_alpha=self._alpha, tests=tests, thresholds=fixed),
            task,
            pca,
            contract,
        )

    async def load(self) -> None:
        rows = await self._db.pool.fetch(
            f"SELECT tenant_id, model_id, updated_at, {_COLUMNS} FROM models"
        )
        for r in rows:
            self._apply_row(r)
        if self._invalid_gauge is not None:
            self._invalid_gauge.set(len(self.invalid))

    def _apply_row(self, r: Any, learnt: float = 0.0) -> bool:
        """Build the model a stored row describes into memory (or list it invalid); a model
        new to this process counts as known since `learnt` (0: loaded at start)."""
        key = (r["tenant_id"], r["model_id"])
        self._versions[key] = r["updated_at"]
        try:
            built = self._build(r)
        except InvalidModel as e:
            self.invalid[key] = str(e)
            self.models.pop(key, None)
            log.error(
                "stored model skipped: it cannot be monitored",
                extra={"tenant": key[0], "model": key[1], "reason": str(e)},
            )
            return False
        previous = self.models.get(key)
        built.known_since = previous.known_since if previous is not None else learnt
        self.models[key] = built
        self.invalid.pop(key, None)
        return True

    async def refresh(self) -> int:
        """Take in the models table's changes made by the other processes of the group.

        The registry consumer is a group (its commits make every change applied to the
        table once, across restarts), so with several drift processes each one handles
        only the changes of its own registry partitions; a model registered or changed
        through another partition reaches this process's memory here, from the table,
        while its predictions may come to this process. A cheap listing of (key,
        updated_at) first, then the rows that are newer than what is in memory; a model
        gone from the table (deleted through another partition) is dropped. A change this
        process's own consumer makes meanwhile wins (its row is as new or newer). Returns
        how many models were taken in or dropped."""
        before = dict(self._versions)
        listed = {
            (r["tenant_id"], r["model_id"]): r["updated_at"]
            for r in await self._db.pool.fetch("SELECT tenant_id, model_id, updated_at FROM models")
        }
        newer = [k for k, at in listed.items() if k not in before or at > before[k]]
        changed = 0
        if newer:
            rows = await self._db.pool.fetch(
                f"SELECT tenant_id, model_id, updated_at, {_COLUMNS} FROM models "
                "WHERE (tenant_id, model_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                [k[0] for k in newer],
                [k[1] for k in newer],
            )
            for r in rows:
                key = (r["tenant_id"], r["model_id"])
                mine = self._versions.get(key)
                if mine is None or r["updated_at"] > mine:
                    self._apply_row(r, learnt=time.time())
                    changed += 1
                    log.info("model taken in from the table", extra={"model": key[1]})
        for key in [k for k in before if k not in listed]:
            if self._versions.get(key) == before[key]:  # not re-made meanwhile
                self._versions.pop(key, None)
                self.models.pop(key, None)
                self.invalid.pop(key, None)
                changed += 1
        if changed and self._invalid_gauge is not None:
            self._invalid_gauge.set(len(self.invalid))
        return changed

    # --- drift thresholds, computed ahead (decision 43) ------------------------------------

    def touch(self, key: tuple[str, str], event_time: float) -> None:
        """A model got events: queue its thresholds for warming in the background if they
        are not ready and its events are recent (within `WARM_RECENT_S` of now; a replayed
        backlog's models are warmed when their windows close, `ensure`). One model at a
        time, in the order they came: models without live traffic cost nothing."""
        if key in self._queued:
            return
        mon = self.models.get(key)
        if mon is None or time.time() - event_time > WARM_RECENT_S or mon.detector.ready:
            return
        self._queued[key] = None
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
            self._warming.add(self._drainer)
            self._drainer.add_done_callback(self._warming.discard)

    async def _drain(self) -> None:
        while self._queued:
            key = next(iter(self._queued))
            mon = self.models.get(key)
            try:
                if mon is not None:
                    await self.warm([mon])
            except Exception as e:  # `ensure` (at the window's close) tries again
                log.error(
                    "drift thresholds not precomputed",
                    extra={"tenant": key[0], "model": key[1], "error": repr(e)},
                )
            finally:
                self._queued.pop(key, None)

    async def ensure(self, key: tuple[str, str]) -> None:
        """This model's tables, before a window of it closes (awaited: the event loop goes
        on meanwhile)."""
        mon = self.models.get(key)
        if mon is not None and not mon.detector.ready:
            await self.warm([mon])

    async def stop(self) -> None:
        """Stop warming and the worker process (a table half computed is dropped)."""
        for task in list(self._warming):
            task.cancel()
        await asyncio.gather(*list(self._warming), return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def warming_done(self) -> None:
        """Wait for the threshold tables being read or computed now."""
        while self._warming:
            await asyncio.gather(*list(self._warming), return_exceptions=True)

    async def warm(self, models: list[Monitored]) -> None:
        """Every threshold table these models' detectors need: read back from storage, or
        computed in the worker process (never in this one's event loop: the bootstrap
        holds the GIL) and stored, then handed to the detectors."""
        specs: dict[str, ThresholdSpec] = {}
        for m in models:
            specs.update(m.detector.missing())
        if specs:
            try:
                rows = await self._db.pool.fetch(
                    "SELECT fingerprint, thresholds FROM thresholds WHERE fingerprint = ANY($1)",
                    list(specs),
                )
            except Exception as e:  # computed below, stored another time
                log.warning("stored drift thresholds not read", extra={"error": repr(e)})
                rows = []
            for r in rows:
                try:
                    remember(r["fingerprint"], ThresholdTable.from_bytes(r["thresholds"]))
                except ValueError:
                    continue  # computed again below
                specs.pop(r["fingerprint"])
                self.thresholds_loaded += 1
            for fp, spec in specs.items():
                table = await self._compute(fp, spec)
                try:
                    await self._db.pool.execute(
                        "INSERT INTO thresholds (fingerprint, test, thresholds) VALUES "
                        "($1, $2, $3) ON CONFLICT (fingerprint) DO NOTHING",
                        fp,
                        spec.test,
                        table.to_bytes(),
                    )
                except Exception as e:
                    log.warning("drift thresholds not stored", extra={"error": repr(e)})
        for m in models:
            m.detector.missing()  # takes the tables now known into the detector

    async def _compute(self, fp: str, spec: ThresholdSpec) -> ThresholdTable:
        """One table from the worker process (one computation per fingerprint at a time)."""
        pending = self._pending.get(fp)
        if pending is None:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
            loop = asyncio.get_running_loop()
            pending = self._pending[fp] = loop.run_in_executor(self._pool, compute_bytes, spec)
        try:
            raw = await asyncio.shield(pending)
        finally:
            if pending.done():
                self._pending.pop(fp, None)
        table = ThresholdTable.from_bytes(raw)
        if cached(fp) is None:
            remember(fp, table)
            self.thresholds_computed += 1
        return table

    async def handle(self, batch: list[Message[RegistryChange]]) -> None:
        for m in batch:
            ev = m.value
            key = (ev.tenant_id, ev.model_id)
            if ev.change == "model_deleted":
                await self._db.pool.execute(
                    "DELETE FROM models WHERE tenant_id = $1 AND model_id = $2", *key
                )
                self.models.pop(key, None)
                self.invalid.pop(key, None)
                self._versions.pop(key, None)
                continue
            d = ev.details
            monitoring, refs = d.get("monitoring"), d.get("references")
            schema = d.get("feature_schema")
            features = [f["name"] for f in schema["features"]] if schema else None
            if (
                monitoring is None
                and refs is None
                and features is None
                and "task" not in d
                and "classes" not in d
            ):
                continue

            cur = await self._db.pool.fetchrow(
                f"SELECT {_COLUMNS} FROM models WHERE tenant_id = $1 AND model_id = $2", *key
            )
            merged = _merge(cur, d, monitoring, refs, features)
            try:  # validate before storing: an invalid change leaves the model as it was
                built = self._build(merged)
            except InvalidModel as e:
                raise InvalidEventError(
                    f"registry change {ev.change} of model {key[1]!r} refused: {e}"
                ) from e
            updated_at = await self._db.pool.fetchval(
                "INSERT INTO models (tenant_id, model_id, monitoring, references_, "
                "profile_version, task, features, multivariate, classes) VALUES ($1, $2, "
                "$3::jsonb, $4::jsonb, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb) "
                "ON CONFLICT (tenant_id, model_id) DO UPDATE SET "
                "monitoring = excluded.monitoring, references_ = excluded.references_, "
                "profile_version = coalesce(excluded.profile_version, models.profile_version), "
                "task = excluded.task, features = excluded.features, "
                "multivariate = excluded.multivariate, classes = excluded.classes, "
                "updated_at = now() RETURNING updated_at",
                *key,
                merged["monitoring"],
                merged["references_"],
                d.get("profile_version"),
                merged["task"],
                merged["features"],
                merged["multivariate"],
                merged["classes"],
            )
            previous = self.models.get(key)
            built.known_since = previous.known_since if previous is not None else time.time()
            self.models[key] = built
            self.invalid.pop(key, None)
            self._versions[key] = updated_at
            if m.timestamp_ms > 0:  # a change made just now (not a replay): warm it now
                self.touch(key, m.timestamp_ms / 1000)
            log.info(
                "model monitored",
                extra={"tenant": key[0], "model": key[1], "change": ev.change},
            )


def _loads(v: Any) -> Any:
    return orjson.loads(v) if isinstance(v, str | bytes) else v


def _js(v: Any) -> str | None:
    return orjson.dumps(v).decode() if v is not None else None


def _merge(
    cur: Any,
    d: dict[str, Any],
    monitoring: Any,
    refs: Any,
    features: list[str] | None,
) -> dict[str, Any]:
    """The stored row after this change (JSON columns as text), as the upsert writes it."""
    old: dict[str, Any] = dict(cur) if cur is not None else {}

    def pick(new: Any, column: str) -> Any:
        return _js(new) if new is not None else old.get(column)

    return {
        "monitoring": pick(monitoring, "monitoring") or "{}",
        "references_": pick(refs, "references_"),
        "task": d.get("task") or old.get("task"),
        "features": pick(features, "features"),
        # the PCA reference belongs to the references it came with
        "multivariate": _js(d.get("multivariate")) if refs is not None else old.get("multivariate"),
        "classes": pick(d.get("classes"), "classes"),
    }


def _describe(e: BaseException) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in e.errors(include_url=False)[:5]
        )
    return f"{type(e).__name__}: {e}" if isinstance(e, KeyError | TypeError) else str(e)
