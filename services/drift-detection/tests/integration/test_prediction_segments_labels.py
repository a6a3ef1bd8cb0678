"""Prediction drift, segments and PCA multivariate drift at window close; late labels joined
to their predictions with performance per window, concept drift by Page-Hinkley, and
unmatched labels in the DLQ. Real Kafka, PostgreSQL, Redis and InfluxDB."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
from sklearn import metrics as skm

from driftline_core.events import DeadLetter, DriftResult, PerformanceResult, decode
from driftline_stats.detector import FeatureReference
from driftline_stats.multivariate import PCAReference
from driftline_stats.performance import AUC_BINS
from driftline_stats.profile import PREDICTION

from .conftest import NUMERIC, features


def linked_references() -> tuple[list[dict[str, object]], dict[str, object]]:
    rng = np.random.default_rng(11)
    rows = features(rng, 20_000, link=0.9)
    refs = [FeatureReference.from_values(f, [r[f] for r in rows]) for f in NUMERIC]
    refs.append(FeatureReference.from_values("c", [r["c"] for r in rows], categorical=True))
    scores = np.clip(rng.normal(0.3, 0.2, 20_000), 0.001, 0.999)
    refs.append(
        FeatureReference.from_values(
            PREDICTION, (scores >= 0.5).astype(int).astype(str).tolist(), categorical=True
        )
    )
    matrix = np.array([[r[f] for f in NUMERIC] for r in rows[:4000]])
    pca = PCAReference.fit(NUMERIC, matrix)
    assert pca is not None
    return [r.to_dict() for r in refs], pca.to_dict()


def assert_matches_sklearn(metrics, rows) -> None:
    """The window's metrics equal scikit-learn's on the same labels: to 1e-9, and ROC-AUC
    within the binning bound (the share of positive/negative pairs that share a bin)."""
    y = np.array([a for a, _, _ in rows])
    pred = np.array([p for _, p, _ in rows])
    score = np.array([s for _, _, s in rows])
    assert abs(metrics["accuracy"] - skm.accuracy_score(y, pred)) < 1e-9
    assert abs(metrics["precision"] - skm.precision_score(y, pred, pos_label=1)) < 1e-9
    assert abs(metrics["recall"] - skm.recall_score(y, pred, pos_label=1)) < 1e-9
    assert abs(metrics["f1"] - skm.f1_score(y, pred, pos_label=1)) < 1e-9
    proba = np.column_stack([1 - score, score])
    assert abs(metrics["log_loss"] - skm.log_loss(y, proba, labels=[0, 1])) < 1e-9
    bins = np.minimum((score * AUC_BINS).astype(int), AUC_BINS - 1)
    pos, neg = bins[y == 1], bins[y == 0]
    shared = sum(int(np.sum(neg == b)) for b in pos) / (len(pos) * len(neg))
    assert abs(metrics["roc_auc"] - skm.roc_auc_score(y, score)) <= shared / 2 + 1e-12


def mine(records, model, tenant):
    out = []
    for r in records:
        ev = decode(model, r.value)
        if ev.tenant_id == tenant:
            out.append(ev)
    return out


async def test_prediction_segment_and_multivariate_drift(
    pipeline, run_pipeline, window_start, topic_reader
):
    drift_topic = await topic_reader("driftline.drift.v1")
    refs, pca = linked_references()
    await pipeline.register(
        refs=refs, multivariate=pca, task="classification", monitoring={"segments": ["c"]}
    )
    async with run_pipeline(pipeline):
        await pipeline.send(window_start, 1500, seed=3, link=0.9, positive_share=0.3)
        await pipeline.send(window_start + 60, 1500, seed=4, link=-0.9, positive_share=0.7)
        await pipeline.send(window_start + 120, 10, seed=5, link=0.9, positive_share=0.3)

        def complete(rs):  # two windows, each overall + three segments
            got = mine(rs, DriftResult, pipeline.tenant)
            return len([r for r in got if r.window.start.timestamp() < window_start + 120]) >= 8

        results = [
            r
            for r in mine(
                await drift_topic.read(until=complete, timeout=60), DriftResult, pipeline.tenant
            )
            if r.window.start.timestamp() < window_start + 120
        ]
    overall = sorted((r for r in results if not r.segment), key=lambda r: r.window.start)
    assert len(overall) == 2
    calm, shifted = overall
    assert calm.prediction is not None
    assert not calm.prediction.drifted
    assert calm.multivariate is not None
    assert not calm.multivariate.drifted
    assert not [f.feature for f in calm.features if f.drifted]

    assert shifted.prediction is not None
    assert shifted.prediction.drifted
    assert shifted.prediction.feature == "prediction"
    assert shifted.multivariate is not None
    assert shifted.multivariate.drifted
    # the relation broke, not the marginals: no single feature moved
    assert not [f.feature for f in shifted.features if f.drifted]
    assert "prediction" not in {f.feature for f in shifted.features}

    for whole in overall:
        parts = [r for r in results if r.segment and r.window.start == whole.window.start]
        assert sorted(r.segment["c"] for r in parts) == ["a", "b", "c"]
        assert sum(r.window.events for r in parts) == whole.window.events == 1500
        assert len({r.event_id for r in parts}) == 3


async def test_late_labels_give_window_metrics_and_concept_drift(
    pipeline, run_pipeline, window_start, topic_reader, wait_until
):
    perf_topic = await topic_reader("driftline.performance.v1")
    dlq_topic = await topic_reader("driftline.dlq.v1")
    await pipeline.register(task="classification", classes={"classes": [0, 1], "positive_class": 1})
    async with run_pipeline(pipeline, labels=True) as (processors, influx):
        ids = await pipeline.send(window_start, 3000, seed=6, positive_share=0.5)
        outputs = dict(pipeline.last_outputs)
        drift = processors[0]

        async def counted() -> bool:
            return drift.events_counted >= 3000  # type: ignore[attr-defined,no-any-return]

        await wait_until(counted, timeout=60)

        rng = np.random.default_rng(9)
        label_start = window_start + 3600
        # first 1,500 labels: 10% wrong; next 1,500: 45% wrong (the concept moved)
        wrong = np.r_[rng.random(1500) < 0.10, rng.random(1500) < 0.45]
        actuals, expected = [], {0: [0, 0], 1: [0, 0]}
        truth: dict[int, list[tuple[int, int, float]]] = {0: [], 1: []}  # actual, pred, P(1)
        for k, (i, bad) in enumerate(zip(ids, wrong, strict=True)):
            pred = int(outputs[i]["prediction"])  # type: ignore[call-overload]
            actual = 1 - pred if bad else pred
            half = k // 1500
            truth[half].append((actual, pred, outputs[i]["probabilities"]["1"]))  # type: ignore[index]
            expected[half][0] += 1
            expected[half][1] += int(not bad)
            t = label_start + 60 * half + 59.0 * (k % 1500) / 1500
            actuals.append(
                (
                    f"{pipeline.tenant}:m".encode(),
                    orjson.dumps(
                        {
                            "event_id": f"00000000-0000-4000-8000-{k:012d}",
                            "schema_version": 1,
                            "tenant_id": pipeline.tenant,
                            "occurred_at": datetime.fromtimestamp(t, UTC).isoformat(),
                            "produced_at": datetime.now(UTC).isoformat(),
                            "model_id": "m",
                            "prediction_event_id": i,
                            "actual": actual,
                        }
                    ),
                )
            )
        stray = {
            "event_id": "00000000-0000-4000-8000-999999999999",
            "schema_version": 1,
            "tenant_id": pipeline.tenant,
            "occurred_at": datetime.fromtimestamp(label_start + 130, UTC).isoformat(),
            "produced_at": datetime.now(UTC).isoformat(),
            "model_id": "m",
            "prediction_event_id": "11111111-1111-4111-8111-111111111111",
            "actual": 1,
        }
        actuals.append((f"{pipeline.tenant}:m".encode(), orjson.dumps(stray)))
        # one labelled event later moves the label watermark past both windows
        late = dict(orjson.loads(actuals[0][1]))
        late["occurred_at"] = datetime.fromtimestamp(label_start + 190, UTC).isoformat()
        late["event_id"] = "00000000-0000-4000-8000-888888888888"
        actuals.append((f"{pipeline.tenant}:m".encode(), orjson.dumps(late)))
        await pipeline.producer.send_records(pipeline.actuals, actuals)

        def windows(rs):
            return [
                r
                for r in mine(rs, PerformanceResult, pipeline.tenant)
                if r.kind == "window_metrics" and not r.segment
            ]

        got = windows(await perf_topic.read(until=lambda rs: len(windows(rs)) >= 2, timeout=60))
        concept = [
            r
            for r in mine(await perf_topic.read(timeout=1), PerformanceResult, pipeline.tenant)
            if r.kind == "concept_drift"
        ]

        def stray_letters(rs):
            letters = [decode(DeadLetter, r.value) for r in rs]
            return [d for d in letters if d.source_topic == pipeline.actuals]

        dead = stray_letters(
            await dlq_topic.read(until=lambda rs: bool(stray_letters(rs)), timeout=30)
        )

        async def in_influx() -> bool:
            rows = await influx.query('SELECT sum("labelled") AS n FROM "performance"')
            return bool(rows) and rows[0]["n"] == 3000

        await wait_until(in_influx, timeout=20)
        await influx.close()

    first, second = sorted(got, key=lambda r: r.window.start)[:2]
    for result, half in ((first, 0), (second, 1)):
        n, right = expected[half]
        assert result.labelled == n == 1500
        assert abs(result.metrics["accuracy"] - right / n) < 1e-12
        assert {"precision", "recall", "f1", "roc_auc", "log_loss"} <= set(result.metrics)
        assert_matches_sklearn(result.metrics, truth[half])
    assert second.metrics["accuracy"] < first.metrics["accuracy"] - 0.25
    assert concept
    assert concept[0].detector == "page_hinkley"
    fired_at = concept[0].occurred_at.timestamp()
    assert label_start + 60 <= fired_at < label_start + 120  # after the change, in its window
    assert [d.error_type for d in dead] == ["unmatched_label"]
    assert "11111111-1111-4111-8111-111111111111" in dead[0].reason
