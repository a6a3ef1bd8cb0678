"""Nothing accepted is dropped, and every published metric is the declared one (issue 14,
defects 1, 2, 3, 5, 12 and the drift-state half of 11). Real Kafka, PostgreSQL, Redis and
InfluxDB; the pipeline in-process on its own topics and schema.

- performance of a model without a reference (labels never vanish);
- predictions and labels sent *before* their model's registry event (the shortest gap
  there is) are held and counted, not skipped; a model that never arrives is dead-lettered;
- the class contract decides the positive class and the probabilities' keys (the demo's
  `{"default", "repaid"}` probabilities with 0/1 predictions), metrics equal scikit-learn's;
- an invalid registry record is refused before it is stored, and a bad stored row does
  not stop the next start;
- a model whose windows cannot be evaluated does not stop another model or the checkpoints;
- a prediction whose version holds NUL is dead-lettered and the checkpoints go on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import numpy as np
import orjson
from sklearn import metrics as skm

from driftline_core.db import Database
from driftline_core.events import DeadLetter, DriftResult, PerformanceResult, RegistryChange, decode
from driftline_drift_detection.app import MIGRATIONS
from driftline_drift_detection.catalog import ModelCatalog

from .conftest import NUMERIC, Pipeline, features, references

SCHEMA = {
    "features": [{"name": n, "kind": "numeric"} for n in NUMERIC]
    + [{"name": "c", "kind": "categorical"}]
}
DEMO_CONTRACT = {"classes": [0, 1], "positive_class": 1, "mapping": {"default": 1, "repaid": 0}}


async def announce(p: Pipeline, model: str, change: str, **details: Any) -> None:
    ev = RegistryChange(
        tenant_id=p.tenant, model_id=model, change=change, actor="test", details=details
    )  # type: ignore[arg-type]
    await p.producer.send_many([ev], topic=p.registry)


def registration(classes: dict[str, Any] | None = None, window_s: int = 60) -> dict[str, Any]:
    d: dict[str, Any] = {
        "task": "classification",
        "feature_schema": SCHEMA,
        "monitoring": {"window": {"seconds": window_s, "grace_seconds": 5}},
    }
    if classes is not None:
        d["classes"] = classes
    return d


def predictions(
    p: Pipeline, model: str, start: float, n: int, seed: int, *, demo_keys: bool = False
) -> tuple[list[tuple[bytes, bytes]], dict[str, tuple[int, float]]]:
    """n binary predictions in [start, start + 60): records, and (prediction, P(1)) by id.
    `demo_keys`: probabilities keyed as the demo sent them ("default" is class 1)."""
    rng = np.random.default_rng(seed)
    ts = start + np.sort(rng.uniform(0, 59.9, n))
    rows = features(rng, n)
    scores = np.clip(rng.normal(0.5, 0.2, n), 0.001, 0.999)
    out, records = {}, []
    for t, f, s in zip(ts.tolist(), rows, scores.tolist(), strict=True):
        i = str(uuid.uuid4())
        pred = int(s >= 0.5)
        probs = {"default": s, "repaid": 1 - s} if demo_keys else {"1": s, "0": 1 - s}
        out[i] = (pred, s)
        records.append(
            (
                f"{p.tenant}:{model}".encode(),
                orjson.dumps(
                    {
                        "event_id": i,
                        "schema_version": 1,
                        "tenant_id": p.tenant,
                        "occurred_at": datetime.fromtimestamp(t, UTC).isoformat(),
                        "produced_at": datetime.now(UTC).isoformat(),
                        "model_id": model,
                        "model_version": "1",
                        "features": f,
                        "prediction": pred,
                        "probabilities": probs,
                    }
                ),
            )
        )
    return records, out


def labels(
    p: Pipeline, model: str, outputs: dict[str, tuple[int, float]], start: float, seed: int
) -> tuple[list[tuple[bytes, bytes]], list[tuple[int, int, float]]]:
    """A label per prediction (20% wrong), all in the label window [start, start + 60), plus
    one an hour later that moves the watermark past it. Records, and (actual, pred, P(1))."""
    rng = np.random.default_rng(seed)
    records, truth = [], []
    items = list(outputs.items())
    for k, (i, (pred, s)) in enumerate(items):
        actual = 1 - pred if rng.random() < 0.2 else pred
        truth.append((actual, pred, s))
        t = start + 59.0 * k / len(items)
        records.append(_label(p, model, i, actual, t))
    records.append(_label(p, model, items[0][0], truth[0][0], start + 3600))
    return records, truth


def _label(p: Pipeline, model: str, pred_id: str, actual: int, t: float) -> tuple[bytes, bytes]:
    return (
        f"{p.tenant}:{model}".encode(),
        orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "schema_version": 1,
                "tenant_id": p.tenant,
                "occurred_at": datetime.fromtimestamp(t, UTC).isoformat(),
                "produced_at": datetime.now(UTC).isoformat(),
                "model_id": model,
                "prediction_event_id": pred_id,
                "actual": actual,
            }
        ),
    )


def mine(records, model, tenant, model_id=None):
    out = []
    for r in records:
        ev = decode(model, r.value)
        if ev.tenant_id == tenant and (model_id is None or ev.model_id == model_id):
            out.append(ev)
    return out


def assert_sklearn(metrics: dict[str, float], truth: list[tuple[int, int, float]]) -> None:
    y = np.array([a for a, _, _ in truth])
    pred = np.array([p for _, p, _ in truth])
    score = np.array([s for _, _, s in truth])
    assert abs(metrics["accuracy"] - skm.accuracy_score(y, pred)) < 1e-9
    assert abs(metrics["precision"] - skm.precision_score(y, pred, pos_label=1)) < 1e-9
    assert abs(metrics["recall"] - skm.recall_score(y, pred, pos_label=1)) < 1e-9
    assert abs(metrics["f1"] - skm.f1_score(y, pred, pos_label=1)) < 1e-9
    ll = skm.log_loss(y, np.column_stack([1 - score, score]), labels=[0, 1])
    assert abs(metrics["log_loss"] - ll) < 1e-9
    assert abs(metrics["roc_auc"] - skm.roc_auc_score(y, score)) < 2e-3  # 1,000 bins


async def perf_windows(reader, p: Pipeline, model: str, n: int, timeout: float = 60):
    def windows(rs):
        return [
            r
            for r in mine(rs, PerformanceResult, p.tenant, model)
            if r.kind == "window_metrics" and not r.segment
        ]

    got = windows(await reader.read(until=lambda rs: len(windows(rs)) >= n, timeout=timeout))
    return sorted(got, key=lambda r: r.window.start)


async def test_a_model_without_a_reference_gets_performance_windows(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    """Defect 2: labels of a classifier registered without a reference."""
    perf = await topic_reader("driftline.performance.v1")
    drift_topic = await topic_reader("driftline.drift.v1")
    await announce(pipeline, "noref", "model_registered", **registration(DEMO_CONTRACT))
    async with run_pipeline(pipeline, labels=True) as (processors, _influx):
        records, outputs = predictions(pipeline, "noref", window_start, 2000, seed=1)
        await pipeline.producer.send_records(pipeline.predictions, records)

        async def stashed() -> bool:
            return processors[0].events_counted >= 2000  # type: ignore[attr-defined,no-any-return]

        await wait_until(stashed, timeout=60)
        actuals, truth = labels(pipeline, "noref", outputs, window_start + 600, seed=2)
        await pipeline.producer.send_records(pipeline.actuals, actuals)
        got = await perf_windows(perf, pipeline, "noref", 1)
        # more predictions move the watermark: the prediction window closes and is counted
        late, _ = predictions(pipeline, "noref", window_start + 300, 5, seed=3)
        await pipeline.producer.send_records(pipeline.predictions, late)

        def drift_windows(rs):
            return [r for r in mine(rs, DriftResult, pipeline.tenant, "noref") if not r.segment]

        drifts = drift_windows(
            await drift_topic.read(until=lambda rs: bool(drift_windows(rs)), timeout=60)
        )
    assert got[0].labelled == 2000
    assert_sklearn(got[0].metrics, truth)
    assert drifts[0].window.events == 2000
    assert drifts[0].features == []  # no reference: counted, not tested


async def test_events_before_their_registry_event_are_held_then_counted(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    """Defect 3, over Kafka, with the shortest gap there is: the events go first."""
    perf = await topic_reader("driftline.performance.v1")
    dlq = await topic_reader("driftline.dlq.v1")
    async with run_pipeline(pipeline, labels=True, models=0, hold_s=60) as (processors, _):
        drift = processors[0]
        records, outputs = predictions(pipeline, "early", window_start, 2000, seed=4)
        actuals, truth = labels(pipeline, "early", outputs, window_start + 600, seed=5)
        await pipeline.producer.send_records(pipeline.predictions, records)
        await pipeline.producer.send_records(pipeline.actuals, actuals)

        async def held() -> bool:
            return drift.holding.count == 2000  # type: ignore[attr-defined,no-any-return]

        await wait_until(held, timeout=60)
        assert drift.events_counted == 0  # type: ignore[attr-defined]
        await announce(pipeline, "early", "model_registered", **registration(DEMO_CONTRACT))
        await announce(
            pipeline,
            "early",
            "reference_profile_updated",
            references=references(),
            profile_version=1,
        )

        async def counted() -> bool:
            return drift.events_counted == 2000  # type: ignore[attr-defined,no-any-return]

        await wait_until(counted, timeout=60)
        got = await perf_windows(perf, pipeline, "early", 1)
        assert drift.holding.count == 0  # type: ignore[attr-defined]
        letters = [d for d in mine(await dlq.read(timeout=1), DeadLetter, pipeline.tenant)]
    assert got[0].labelled == 2000
    assert_sklearn(got[0].metrics, truth)
    assert letters == []


async def test_events_between_registration_and_reference_get_verdicts(
    pipeline, run_pipeline, window_start, topic_reader
):
    """The reference follows registration by a moment (two registry events): predictions
    in between wait for it, so their window is tested like the others."""
    drift_topic = await topic_reader("driftline.drift.v1")
    await announce(pipeline, "m", "model_registered", **registration(DEMO_CONTRACT))
    async with run_pipeline(pipeline, ref_wait_s=30):
        await pipeline.send(window_start, 500, seed=14)
        await announce(
            pipeline, "m", "reference_profile_updated", references=references(), profile_version=1
        )
        await pipeline.send(window_start + 120, 5, seed=15)

        def first(rs):
            return [
                r
                for r in mine(rs, DriftResult, pipeline.tenant, "m")
                if not r.segment and r.window.start.timestamp() == window_start
            ]

        got = first(await drift_topic.read(until=lambda rs: bool(first(rs)), timeout=60))
    assert got[0].window.events == 500
    assert {f.feature for f in got[0].features} == {*NUMERIC, "c"}


async def test_records_of_a_model_that_never_arrives_are_dead_lettered(
    pipeline, run_pipeline, window_start, topic_reader
):
    dlq = await topic_reader("driftline.dlq.v1")
    async with run_pipeline(pipeline, labels=True, models=0, hold_s=2) as _:
        records, outputs = predictions(pipeline, "ghost", window_start, 20, seed=6)
        actuals, _truth = labels(pipeline, "ghost", outputs, window_start + 600, seed=7)
        await pipeline.producer.send_records(pipeline.predictions, records)
        await pipeline.producer.send_records(pipeline.actuals, actuals)

        def ghosts(rs):
            return [
                d for d in mine(rs, DeadLetter, pipeline.tenant) if d.error_type == "unknown_model"
            ]

        got = ghosts(await dlq.read(until=lambda rs: len(ghosts(rs)) >= 41, timeout=60))
    assert len(got) == 41  # 20 predictions, 21 labels: each once
    assert {d.source_topic for d in got} == {pipeline.predictions, pipeline.actuals}
    assert all("'ghost'" in d.reason and "no registry state arrived" in d.reason for d in got)
    assert len({(d.source_topic, d.source_offset) for d in got}) == 41


async def test_the_contract_maps_the_demos_probabilities_and_names_the_positive_class(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    """Defect 1 behind Kafka-native producers: probabilities keyed "default"/"repaid" with
    0/1 predictions and labels. Before the contract, "repaid" was taken as the positive
    class (it sorts last) and log loss looked probabilities up under "0"/"1": precision =
    recall = F1 = 0 and log loss 34.54."""
    perf = await topic_reader("driftline.performance.v1")
    dlq = await topic_reader("driftline.dlq.v1")
    await announce(pipeline, "demo", "model_registered", **registration(DEMO_CONTRACT))
    async with run_pipeline(pipeline, labels=True) as (processors, _):
        records, outputs = predictions(pipeline, "demo", window_start, 1500, seed=8, demo_keys=True)
        await pipeline.producer.send_records(pipeline.predictions, records)

        async def stashed() -> bool:
            return processors[0].events_counted >= 1500  # type: ignore[attr-defined,no-any-return]

        await wait_until(stashed, timeout=60)
        actuals, truth = labels(pipeline, "demo", outputs, window_start + 600, seed=9)
        outside = _label(pipeline, "demo", next(iter(outputs)), 7, window_start + 601)
        await pipeline.producer.send_records(pipeline.actuals, [outside, *actuals])
        got = await perf_windows(perf, pipeline, "demo", 1)

        def bad(rs):
            return [d for d in mine(rs, DeadLetter, pipeline.tenant) if d.error_type == "bad_label"]

        letters = bad(await dlq.read(until=lambda rs: bool(bad(rs)), timeout=30))
    assert got[0].labelled == 1500
    assert got[0].metrics["precision"] > 0.5
    assert_sklearn(got[0].metrics, truth)
    assert "actual 7 is not one of the classes" in letters[0].reason


async def test_an_invalid_registry_record_is_refused_before_it_is_stored(
    pipeline, run_pipeline, topic_reader, stack
):
    """Defect 12: `{"window": {"seconds": 1}}` went to the DLQ but was stored first, and the
    next start failed. Now it is refused unstored; a bad row in the table (an older
    version's) is skipped at start and reported."""
    dlq = await topic_reader("driftline.dlq.v1")
    await pipeline.register(model="good")
    await announce(
        pipeline,
        "bad",
        "model_registered",
        task="classification",
        monitoring={"window": {"seconds": 1}},
    )
    await announce(
        pipeline,
        "worse",
        "monitoring_config_changed",
        monitoring={"features": {"c": {"test": "ks"}}},
        references=references(),
    )
    async with run_pipeline(pipeline, models=1):

        def refused(rs):
            return [
                d
                for d in mine(rs, DeadLetter, "unknown") + mine(rs, DeadLetter, pipeline.tenant)
                if d.source_topic == pipeline.registry
            ]

        got = refused(await dlq.read(until=lambda rs: len(refused(rs)) >= 2, timeout=30))
    reasons = sorted(d.reason for d in got)
    assert (
        "greater than or equal to 10" in reasons[0] or "greater than or equal to 10" in reasons[1]
    )
    assert any("ks does not apply to categorical feature 'c'" in r for r in reasons)
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        stored = await conn.fetch(
            f'SELECT model_id FROM "{pipeline.schema}".models WHERE tenant_id = $1', pipeline.tenant
        )
        assert sorted(r["model_id"] for r in stored) == ["good"]
        # a row no current version would store, as an older one did
        await conn.execute(
            f'INSERT INTO "{pipeline.schema}".models (tenant_id, model_id, monitoring) '
            "VALUES ($1, 'legacy', '{\"window\": {\"seconds\": 1}}')",
            pipeline.tenant,
        )
    finally:
        await conn.close()
    db = Database(stack.postgres, pipeline.schema, migrations_dir=MIGRATIONS)
    await db.start()
    try:
        catalog = ModelCatalog(db, 0.01)
        await catalog.load()  # the next start: not refused
    finally:
        await db.stop()
    assert (pipeline.tenant, "good") in catalog.models
    assert (pipeline.tenant, "legacy") not in catalog.models
    assert "greater than or equal to 10" in catalog.invalid[(pipeline.tenant, "legacy")]


async def test_a_model_whose_windows_fail_stops_neither_others_nor_checkpoints(
    pipeline, run_pipeline, window_start, topic_reader, wait_until, stack
):
    """Defect 5: a detector exception at window close. The failing model's window is
    dead-lettered with the reason; the other model's windows are published and the
    checkpoint moves on."""
    drift_topic = await topic_reader("driftline.drift.v1")
    dlq = await topic_reader("driftline.dlq.v1")
    await pipeline.register(model="sick")
    await pipeline.register(model="well")
    async with run_pipeline(pipeline, models=2) as (processors, _):
        drift = processors[0]
        sick = drift.catalog.models[(pipeline.tenant, "sick")]  # type: ignore[attr-defined]

        def broken(*_a: Any, **_k: Any) -> Any:
            raise AttributeError("'CategoricalWindow' object has no attribute 'quantiles'")

        sick.detector.evaluate = broken  # type: ignore[method-assign]
        for model in ("sick", "well"):
            await pipeline.send(window_start, 300, model=model, seed=11)
            await pipeline.send(window_start + 120, 5, model=model, seed=12)

        def well(rs):
            return [r for r in mine(rs, DriftResult, pipeline.tenant, "well") if not r.segment]

        published = well(await drift_topic.read(until=lambda rs: bool(well(rs)), timeout=60))

        def failed(rs):
            return [
                d for d in mine(rs, DeadLetter, pipeline.tenant) if d.error_type == "window_failed"
            ]

        letters = failed(await dlq.read(until=lambda rs: bool(failed(rs)), timeout=30))

        async def checkpointed() -> bool:
            conn = await asyncpg.connect(stack.postgres.dsn())
            try:
                n = await conn.fetchval(
                    f'SELECT coalesce(sum(next_offset), 0) FROM "{pipeline.schema}".offsets '
                    "WHERE group_id = $1",
                    drift.group_id,  # type: ignore[attr-defined]
                )
            finally:
                await conn.close()
            return bool(n == pipeline.records_sent)  # 610 per-event records

        await wait_until(checkpointed, timeout=30)
    assert published[0].window.events == 300
    assert "300 events" in letters[0].reason
    assert "'sick'" in letters[0].reason
    assert "AttributeError" in letters[0].reason


async def test_a_version_with_nul_is_dead_lettered_and_checkpoints_go_on(
    pipeline, run_pipeline, window_start, topic_reader, wait_until, stack
):
    """The drift-state half of defect 11, for Kafka-native producers (HTTP refuses it)."""
    dlq = await topic_reader("driftline.dlq.v1")
    await pipeline.register(model="m")
    async with run_pipeline(pipeline) as (processors, _):
        drift = processors[0]
        poison = {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "tenant_id": pipeline.tenant,
            "occurred_at": datetime.fromtimestamp(window_start + 1, UTC).isoformat(),
            "model_id": "m",
            "model_version": "1\u0000x",
            "features": {"x0": 1.0},
            "prediction": 0.5,
        }
        await pipeline.producer.send_records(
            pipeline.predictions, [(f"{pipeline.tenant}:m".encode(), orjson.dumps(poison))]
        )
        await pipeline.send(window_start, 100, seed=13)

        def nul(rs):
            return [d for d in mine(rs, DeadLetter, pipeline.tenant) if "NUL" in d.reason]

        letters = nul(await dlq.read(until=lambda rs: bool(nul(rs)), timeout=30))

        async def saved() -> bool:
            conn = await asyncpg.connect(stack.postgres.dsn())
            try:
                n = await conn.fetchval(
                    f'SELECT coalesce(sum(next_offset), 0) FROM "{pipeline.schema}".offsets '
                    "WHERE group_id = $1",
                    drift.group_id,  # type: ignore[attr-defined]
                )
                rows = await conn.fetch(  # binary window state (decision 44)
                    f'SELECT state_bin FROM "{pipeline.schema}".windows '
                    "WHERE group_id = $1 AND segment = ''",
                    drift.group_id,  # type: ignore[attr-defined]
                )
                w = sum(msgspec.msgpack.decode(r["state_bin"][4:])["events"] for r in rows)
            finally:
                await conn.close()
            return bool(n == 1 + pipeline.records_sent and w == 100)

        await wait_until(saved, timeout=30)
    assert len(letters) == 1
    assert letters[0].source_topic == pipeline.predictions
    await asyncio.sleep(0)
