"""Calibration on synthetic streams (20 numeric + 5 categorical features): drift-free windows
are flagged at most 1% of the time over 1,000 windows at the default thresholds, and each
injected drift (sudden, gradual, categorical, missing values) is found in the right feature
within two windows. The false-alarm rate measured here is written to .bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftline_stats.detector import Detector, FeatureReference

NUM, CAT = 20, 5
CATS = np.array(["a", "b", "c", "d"])
P_CAT = np.array([0.4, 0.3, 0.2, 0.1])
RESULTS = Path(__file__).resolve().parents[4] / ".bench" / "calibration.json"


def draw(
    rng: np.random.Generator,
    n: int,
    *,
    shift: dict[int, float] | None = None,
    new_category: int | None = None,
    missing: dict[int, float] | None = None,
) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for j in range(NUM):
        base = rng.gamma(2.0 + j % 3, 1.0 + j / 10, n) if j % 2 else rng.normal(j, 1 + j / 5, n)
        x = base + (shift or {}).get(j, 0.0) * (base.std() or 1)
        x = x.astype(object)
        if missing and j in missing:
            x[rng.random(n) < missing[j]] = None
        cols[f"n{j}"] = x
    for j in range(CAT):
        c = rng.choice(CATS, n, p=P_CAT).astype(object)
        if new_category == j:
            c[rng.random(n) < 0.15] = "zz-new"
        cols[f"c{j}"] = c
    return cols


def detector(reference_rows: int = 20_000, seed: int = 1) -> Detector:
    ref = draw(np.random.default_rng(seed), reference_rows)
    refs = [
        FeatureReference.from_values(k, v, categorical=k.startswith("c")) for k, v in ref.items()
    ]
    return Detector(refs, family_alpha=0.01)


def evaluate(det: Detector, cols: dict[str, np.ndarray]) -> dict[str, bool]:
    windows = {}
    for name, ref in det.refs.items():
        w = ref.new_window()
        values = cols[name]
        present = np.array([v is not None for v in values])
        w.update(
            values[present].astype(float if ref.kind == "numeric" else str),
            missing=int((~present).sum()),
        )
        windows[name] = w
    verdicts, _ = det.evaluate(windows)
    return {v.feature: v.drifted for v in verdicts}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reference_rows", "windows", "size"), [(20_000, 1000, 1000), (800, 300, 500)]
)
def test_drift_free_windows_are_flagged_at_most_one_percent_of_the_time(
    reference_rows, windows, size
):
    det = detector(reference_rows)
    rng = np.random.default_rng(99)
    flagged_windows, flagged_features = 0, 0
    for _ in range(windows):
        flags = evaluate(det, draw(rng, size))
        flagged_windows += any(flags.values())
        flagged_features += sum(flags.values())
    rate = flagged_windows / windows
    RESULTS.parent.mkdir(exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[f"ref{reference_rows}_window{size}"] = {
        "windows": windows,
        "false_alarm_window_rate": rate,
        "false_alarm_feature_rate": flagged_features / (windows * (NUM + CAT)),
        "tests": sorted({det.choose(r) for r in det.refs.values()}),
    }
    RESULTS.write_text(json.dumps(data, indent=2))
    assert rate <= 0.01


@pytest.mark.parametrize(
    ("kind", "feature", "make"),
    [
        ("sudden shift", "n3", lambda rng, k: draw(rng, 1000, shift={3: 0.5})),
        ("gradual shift", "n8", lambda rng, k: draw(rng, 1000, shift={8: 0.15 * (k + 1)})),
        ("new category", "c2", lambda rng, k: draw(rng, 1000, new_category=2)),
        (
            "rising missing values",
            "n11",
            lambda rng, k: draw(rng, 1000, missing={11: 0.05 * (k + 1)}),
        ),
    ],
)
def test_injected_drift_is_found_in_the_right_feature_within_two_windows(kind, feature, make):
    det = detector()
    rng = np.random.default_rng(5)
    found = []
    for k in range(2):
        flags = evaluate(det, make(rng, k))
        found.append(flags[feature])
        assert sum(flags.values()) - flags[feature] <= 1, f"{kind}: other features flagged"
    assert any(found), f"{kind} in {feature} was not detected within two windows"
