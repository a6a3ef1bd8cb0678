"""Driftline's verdicts against Evidently's DataDriftPreset on the same windows (Evidently is a
test-only dependency). A few windows per regime here; `make bench` runs many and records the
agreement, the disagreements by kind and the throughput ratio."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pytest.importorskip("evidently")

from evidently_compare import compare


@pytest.mark.timeout(600)
def test_large_reference_verdicts_agree_with_evidently_and_are_as_accurate():
    r = compare(20_000, 1000, count=6, seed=5)
    assert r["tests"] == ["jensen_shannon", "wasserstein"]  # the tests Evidently picks too
    assert r["agreement_feature_verdicts"] >= 0.95, r["disagreements"]
    ours, theirs = r["driftline"], r["evidently"]
    assert ours["detection_rate_must_flag"] >= theirs["detection_rate_must_flag"]
    assert ours["false_positive_rate_features"] <= theirs["false_positive_rate_features"]
    # any disagreement is near the shared 0.1 effect threshold, never a missed big drift
    assert not [k for k in r["disagreements"] if "only evidently" in k and "0.4" in k]
    assert r["throughput_ratio"] >= 20


@pytest.mark.timeout(600)
def test_small_reference_evidently_alarms_on_drift_free_windows_we_do_not():
    r = compare(800, 500, count=6, seed=6)
    assert r["tests"] == ["chi_squared", "ks"]
    ours, theirs = r["driftline"], r["evidently"]
    # Evidently tests each feature at p < 0.05 with no correction over 25 features
    assert theirs["drift_free_windows_flagged"] > 0.5
    assert ours["drift_free_windows_flagged"] == 0.0
    assert ours["wrong_verdicts"] < theirs["wrong_verdicts"]
