"""Driftline's verdicts against Evidently's DataDriftPreset on the same windows.

Synthetic data: 20 numeric features (normal and gamma) and 5 categorical ones. Each window
is drift-free or has one to three features drifted by a known amount, so both tools can be
scored against the truth as well as against each other:

- numeric shift of 0.05 sd: real but below practical significance (Evidently's Wasserstein
  threshold is 0.1 sd, our effect floor too): reported, not scored;
- numeric shift of 0.2 or 0.4 sd, or a new category on 15% of rows: must be flagged;
- every other feature: must not be flagged.

Two regimes, as Evidently chooses its tests by reference size: a large reference (20,000
rows: Wasserstein / Jensen-Shannon, windows of 1,000) and a small one (800 rows: KS /
chi-squared, windows of 500). Throughput is events per second through each tool from
in-memory columns to verdicts, on the same windows."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline_stats.detector import Detector, FeatureReference

NUM, CAT = 20, 5
CATS = np.array(["a", "b", "c", "d"])
P_CAT = np.array([0.4, 0.3, 0.2, 0.1])
NUMERIC = [f"n{j}" for j in range(NUM)]
CATEGORICAL = [f"c{j}" for j in range(CAT)]


def draw(rng: np.random.Generator, n: int, drift: dict[str, float] | None = None) -> pd.DataFrame:
    drift = drift or {}
    cols: dict[str, Any] = {}
    for j, name in enumerate(NUMERIC):
        base = rng.gamma(2.0 + j % 3, 1.0 + j / 10, n) if j % 2 else rng.normal(j, 1 + j / 5, n)
        sd = np.sqrt(2.0 + j % 3) * (1.0 + j / 10) if j % 2 else 1 + j / 5
        cols[name] = base + drift.get(name, 0.0) * sd
    for name in CATEGORICAL:
        c = rng.choice(CATS, n, p=P_CAT).astype(object)
        if name in drift:
            c[rng.random(n) < drift[name]] = "zz-new"
        cols[name] = c
    return pd.DataFrame(cols)


@dataclass
class Window:
    data: pd.DataFrame
    drift: dict[str, float]  # feature -> injected amount


def windows(rng: np.random.Generator, count: int, size: int) -> list[Window]:
    out = []
    for i in range(count):
        drift: dict[str, float] = {}
        if i % 2:  # every other window drifts
            for name in rng.choice(NUMERIC + CATEGORICAL, int(rng.integers(1, 4)), replace=False):
                drift[str(name)] = (
                    0.15 if str(name).startswith("c") else float(rng.choice([0.05, 0.2, 0.4]))
                )
        out.append(Window(draw(rng, size, drift), drift))
    return out


def ours(det: Detector, data: pd.DataFrame) -> dict[str, bool]:
    profiles = {}
    for name, ref in det.refs.items():
        w = ref.new_window()
        col = data[name].to_numpy()
        w.update(col.astype(str) if ref.kind == "categorical" else col.astype(np.float64))
        profiles[name] = w
    verdicts, _ = det.evaluate(profiles)
    return {v.feature: v.drifted for v in verdicts}


def theirs(reference: Any, data: pd.DataFrame) -> dict[str, bool]:
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    current = Dataset.from_pandas(data, data_definition=_definition())
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    out = {}
    for m in snapshot.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            method, value, thr = cfg["method"], float(m["value"]), float(cfg["threshold"])
            out[cfg["column"]] = value < thr if "p_value" in method else value >= thr
    return out


def _definition() -> Any:
    from evidently import DataDefinition

    return DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)


@dataclass
class Score:
    flagged_clean: int = 0
    clean: int = 0
    found: dict[str, list[int]] = field(default_factory=dict)  # amount -> [found, total]
    windows_flagged_clean: int = 0
    windows_clean: int = 0

    def add(self, w: Window, verdict: dict[str, bool]) -> None:
        for name in NUMERIC + CATEGORICAL:
            amount = w.drift.get(name)
            if amount is None:
                self.clean += 1
                self.flagged_clean += verdict[name]
            else:
                key = f"{'new category' if name.startswith('c') else 'shift'} {amount:g}"
                hit = self.found.setdefault(key, [0, 0])
                hit[0] += verdict[name]
                hit[1] += 1
        if not w.drift:
            self.windows_clean += 1
            self.windows_flagged_clean += any(verdict.values())

    def summary(self) -> dict[str, Any]:
        must = [v for k, v in self.found.items() if not k.endswith(" 0.05")]
        found, total = sum(v[0] for v in must), sum(v[1] for v in must)
        tpr, fpr = found / max(1, total), self.flagged_clean / max(1, self.clean)
        return {
            "wrong_verdicts": self.flagged_clean + total - found,
            "balanced_accuracy": (tpr + 1 - fpr) / 2,
            "false_positive_rate_features": self.flagged_clean / max(1, self.clean),
            "drift_free_windows_flagged": self.windows_flagged_clean / max(1, self.windows_clean),
            "detection_rate_must_flag": found / max(1, total),
            "detection_by_amount": {k: v[0] / v[1] for k, v in sorted(self.found.items())},
        }


def compare(reference_rows: int, window_rows: int, count: int, seed: int = 1) -> dict[str, Any]:
    from evidently import Dataset

    rng = np.random.default_rng(seed)
    ref = draw(rng, reference_rows)
    det = Detector(
        [
            FeatureReference.from_values(n, ref[n].to_numpy(), categorical=n in CATEGORICAL)
            for n in NUMERIC + CATEGORICAL
        ]
    )
    reference = Dataset.from_pandas(ref, data_definition=_definition())
    wins = windows(rng, count, window_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours(det, wins[0].data)  # calibrate thresholds for this window size once
        theirs(reference, wins[0].data)
        t0 = time.perf_counter()
        a = [ours(det, w.data) for w in wins]
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        b = [theirs(reference, w.data) for w in wins]
        t_theirs = time.perf_counter() - t0
    s_ours, s_theirs = Score(), Score()
    agree = total = 0
    disagreements: dict[str, int] = {}
    for w, va, vb in zip(wins, a, b, strict=True):
        s_ours.add(w, va)
        s_theirs.add(w, vb)
        for name in NUMERIC + CATEGORICAL:
            total += 1
            if va[name] == vb[name]:
                agree += 1
                continue
            truth = w.drift.get(name)
            kind = "clean" if truth is None else f"drift {truth:g}"
            who = "only driftline" if va[name] else "only evidently"
            disagreements[f"{who} flags ({kind})"] = (
                disagreements.get(f"{who} flags ({kind})", 0) + 1
            )
    events = count * window_rows
    return {
        "reference_rows": reference_rows,
        "window_rows": window_rows,
        "windows": count,
        "tests": sorted({det.choose(r) for r in det.refs.values()}),
        "agreement_feature_verdicts": agree / total,
        "disagreements": dict(sorted(disagreements.items())),
        "driftline": s_ours.summary(),
        "evidently": s_theirs.summary(),
        "driftline_events_per_s": events / t_ours,
        "evidently_events_per_s": events / t_theirs,
        "throughput_ratio": t_theirs / t_ours,
    }
