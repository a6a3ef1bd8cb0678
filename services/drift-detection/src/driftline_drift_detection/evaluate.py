"""A closed window becomes a DriftResult, a QualityResult and InfluxDB points. Event ids
derive from the window, so a window re-closed after a crash produces the same events
(consumers drop the repeat) and the same points (InfluxDB overwrites them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from driftline_core.events import DriftResult, FeatureDrift, FeatureQuality, QualityResult
from driftline_core.events.drift import MultivariateDrift
from driftline_core.events.windows import WindowSpan
from driftline_core.influx.line import line
from driftline_stats.detector import Detector, Verdict
from driftline_stats.multivariate import PCAReference
from driftline_stats.profile import PREDICTION
from driftline_stats.window import CategoricalWindow, NumericWindow

from .windows import WindowState

__all__ = ["evaluate"]

_NS = uuid.UUID("3b0f7c3e-9d3a-4f64-9a57-3f0b7ad2a1c1")


def _quality(w: WindowState, detector: Detector) -> tuple[list[FeatureQuality], float]:
    rows, problems, cells = [], 0, 0
    for name, p in w.profiles.items():
        if name == PREDICTION:
            continue
        ref = detector.refs[name]

        te = w.type_errors.get(name, 0)
        if isinstance(p, NumericWindow):
            outliers = 0
            if ref.grid_quantiles.size:
                q1, q3 = np.interp(
                    [0.25, 0.75],
                    (np.arange(ref.grid_quantiles.size) + 0.5) / ref.grid_quantiles.size,
                    ref.grid_quantiles,
                )
                iqr = q3 - q1
                lo, hi = q1 - 3 * iqr, q3 + 3 * iqr  # far-out (Tukey) relative to reference
                if p.n:
                    cdf = np.asarray(p.sketch.get_cdf([float(lo), float(hi)]))[:2]
                    outliers = int(np.rint(cdf[0] * p.n + (1 - cdf[1]) * p.n))
            row = FeatureQuality(
                feature=name,
                count=p.n + p.missing + te,
                missing=p.missing,
                out_of_range=p.out_of_range,
                type_errors=te,
                outliers=outliers,
            )
        else:
            assert isinstance(p, CategoricalWindow)
            row = FeatureQuality(
                feature=name,
                count=p.n + p.missing + te,
                missing=p.missing,
                unseen_categories=p.unseen_total,
                type_errors=te,
            )
        rows.append(row)
        problems += row.missing + row.out_of_range + row.unseen_categories + row.type_errors
        cells += row.count
    score = 100.0 * (1 - problems / cells) if cells else 100.0
    return rows, round(max(0.0, score), 3)


def _feature(v: Verdict) -> FeatureDrift:
    return FeatureDrift(
        feature="prediction" if v.feature == PREDICTION else v.feature,
        test=v.test,
        statistic=v.statistic,
        p_value=v.p_value,
        threshold=v.threshold,
        drifted=v.drifted,
    )


def evaluate(
    w: WindowState,
    detector: Detector,
    dataset_share: float,
    pca: PCAReference | None = None,
) -> tuple[DriftResult, QualityResult, list[str]]:
    tenant, model, version, segment, start = w.key
    span = WindowSpan(
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(w.end, UTC),
        events=w.events,
        late_events=w.late,
    )
    # within a segment the segment's own key is constant by construction: not tested there
    keys = set(w.segment)
    profiles = {n: p for n, p in w.profiles.items() if n not in keys} if keys else w.profiles
    verdicts, share = detector.evaluate(profiles)
    features = [v for v in verdicts if v.feature != PREDICTION]
    prediction = next((_feature(v) for v in verdicts if v.feature == PREDICTION), None)
    multivariate = None
    if pca is not None and w.pca is not None and w.pca.n:
        score, thr, drifted = pca.verdict(w.pca, detector.alpha)
        multivariate = MultivariateDrift(score=score, threshold=thr, drifted=drifted)
    ident = f"{tenant}:{model}:{version}:{start}" + (f":{segment}" if segment else "")
    drift = DriftResult(
        event_id=uuid.uuid5(_NS, "drift:" + ident),
        tenant_id=tenant,
        model_id=model,
        model_version=version,
        segment=w.segment,
        window=span,
        occurred_at=span.end,
        features=[_feature(v) for v in features],
        prediction=prediction,
        drifted_share=share,
        dataset_drift=bool(features) and share >= dataset_share,
        multivariate=multivariate,
    )
    rows, score = _quality(w, detector)
    quality = QualityResult(
        event_id=uuid.uuid5(_NS, "quality:" + ident),
        tenant_id=tenant,
        model_id=model,
        model_version=version,
        segment=w.segment,
        window=span,
        occurred_at=span.end,
        features=rows,
        quality_score=score,
    )
    ts = int(w.end * 1e9)

    base = {"tenant": tenant, "model": model, "version": version, "segment": segment or None}

    def point(measurement: str, tags: dict[str, str], fields: dict[str, object]) -> str:
        return line(measurement, {**base, **tags}, fields, ts)

    points = [
        point(
            "drift_feature",
            {"feature": "prediction" if v.feature == PREDICTION else v.feature, "test": v.test},
            {
                "statistic": float(v.statistic),
                "threshold": float(v.threshold),
                "p_value": float(v.p_value if v.p_value is not None else -1),
                "drifted": int(v.drifted),
            },
        )
        for v in verdicts
    ]
    window: dict[str, object] = {
        "events": w.events,
        "late": w.late,
        "drifted_share": float(share),
        "dataset_drift": int(drift.dataset_drift),
        "quality_score": float(score),
    }
    if w.value_n:
        window["business_value_sum"] = w.value_sum
        window["business_value_mean"] = w.value_sum / w.value_n
        window["business_value_count"] = w.value_n
    if multivariate is not None:
        window["pca_error"] = multivariate.score
        window["pca_threshold"] = multivariate.threshold
        window["pca_drifted"] = int(multivariate.drifted)
    points.append(point("drift_window", {}, window))
    points += [
        point(
            "quality_feature",
            {"feature": r.feature},
            {
                "count": r.count,
                "missing": r.missing,
                "out_of_range": r.out_of_range,
                "unseen_categories": r.unseen_categories,
                "type_errors": r.type_errors,
                "outliers": r.outliers,
            },
        )
        for r in rows
    ]
    points += _bins(w, detector, point)
    return drift, quality, [p for p in points if p]


def _bins(
    w: WindowState,
    detector: Detector,
    point: Callable[[str, dict[str, str], dict[str, object]], str],
) -> list[str]:
    """Reference versus current window, per feature: each bin's (numeric: the reference's
    quantile bins) or category's share of the reference and of the window (measurement
    feature_bins; a category the reference never had is `__unseen__`, current only)."""
    out: list[str] = []
    for name, prof in w.profiles.items():
        ref = detector.refs.get(name)
        if ref is None:
            continue
        feature = "prediction" if name == PREDICTION else name
        if isinstance(prof, NumericWindow):
            if ref.bin_counts.size != prof.counts.size or not prof.counts.sum():
                continue
            labels = [f"b{i:02d}" for i in range(prof.counts.size)]
            refs, cur = ref.bin_counts, prof.counts.astype(float)
            uppers: list[float | None] = [*map(float, ref.edges), None]
        else:
            labels = list(prof.categories)
            refs, cur = ref.category_counts, prof.counts.astype(float)
            if refs.size != cur.size:
                continue
            uppers = [None] * len(labels)
            if prof.unseen_total:
                labels.append("__unseen__")
                refs, cur = np.append(refs, 0.0), np.append(cur, float(prof.unseen_total))
                uppers.append(None)
        rtotal, ctotal = float(refs.sum()) or 1.0, float(cur.sum()) or 1.0
        for label, r, c, upper in zip(labels, refs, cur, uppers, strict=True):
            fields: dict[str, object] = {
                "reference_share": float(r) / rtotal,
                "current_share": float(c) / ctotal,
                "current_count": int(c),
                "upper": upper,
            }
            out.append(point("feature_bins", {"feature": feature, "bin": label}, fields))
    return out
