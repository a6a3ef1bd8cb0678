"""The compliance report's drift figures count what their labels say (issue 14 defect 8:
the demo's FDA report said "drifted windows 0" and "versions 0" while four features had
drifted in 2 to 4 of 5 windows of a version the stream carried).

A fake InfluxDB reader answers history's queries from planted points; each figure is checked
against a count made here directly from those points."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from driftline_compliance_report.frameworks import Inputs, build_report
from driftline_compliance_report.history import load_history
from driftline_compliance_report.model import Integrity

T0 = datetime(2026, 11, 1, tzinfo=UTC)
FEATURES = ["age", "income", "credit_score", "region", "employment_years"]
# the demo's story: 5 windows of version "1"; four features drift from a window on; the
# share of drifted features never reaches the dataset threshold (0.9 here)
PLANTED = {
    "income": {2, 3, 4},
    "credit_score": {1, 2, 3, 4},
    "region": {3, 4},
    "employment_years": {2, 3, 4},
}
PREDICTION_DRIFT = {4}
WINDOWS = 5
THRESHOLD = 0.9


def ms(k: int) -> int:
    return int((T0 + timedelta(minutes=5 * (k + 1))).timestamp() * 1000)


def points() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    windows, verdicts = [], []
    for k in range(WINDOWS):
        drifted = [f for f in FEATURES if k in PLANTED.get(f, set())]
        share = len(drifted) / len(FEATURES)
        windows.append(
            {
                "time": ms(k),
                "model": "credit",
                "version": "1",
                "events": 1000 + k,
                "drifted_share": share,
                "dataset_drift": int(share >= THRESHOLD),
                "quality_score": 100.0,
            }
        )
        for f in [*FEATURES, "prediction"]:
            hit = k in (PREDICTION_DRIFT if f == "prediction" else PLANTED.get(f, set()))
            verdicts.append(
                {"time": ms(k), "model": "credit", "version": "1", "feature": f, "drifted": hit}
            )
    return windows, verdicts


class FakeInflux:
    """Answers the four statements load_history sends, from the planted points."""

    def __init__(self) -> None:
        self.windows, self.verdicts = points()
        self.statements: list[str] = []

    async def query(self, influxql: str, *, epoch: str = "ms") -> list[dict[str, Any]]:
        self.statements.append(influxql)
        if "FROM drift_window" in influxql:
            return self.windows
        if "count(drifted)" in influxql:
            out: dict[str, dict[str, Any]] = {}
            for v in self.verdicts:
                row = out.setdefault(
                    v["feature"], {"model": "credit", "feature": v["feature"], "windows": 0}
                )
                row["windows"] += 1
                row["drifted"] = row.get("drifted", 0) + int(v["drifted"])
            return list(out.values())
        if "FROM drift_feature" in influxql:
            assert re.search(r"AND drifted = 1\b", influxql)
            return [{**v, "drifted": 1} for v in self.verdicts if v["drifted"]]
        return []


def inputs(history: Any, registry: list[dict[str, Any]] | None = None) -> Inputs:
    return Inputs(
        report_id="r",
        tenant_id="t",
        framework="fda",
        start=T0,
        end=T0 + timedelta(days=1),
        generated_at=T0 + timedelta(days=1),
        generated_by="test",
        registry=registry
        or [
            {
                "tenant_id": "t",
                "topic": "driftline.registry.v1",
                "occurred_at": T0 - timedelta(days=1),
                "kind": "registry.model_registered",
                "actor": "user:ann",
                "model_id": "credit",
                "model_version": None,
                "body": {"details": {"name": "Credit", "task": "classification"}},
            }
        ],
        history=history,
        integrity=Integrity(status="verified"),
    )


async def test_each_window_says_which_input_features_and_whether_the_prediction_drifted():
    history = await load_history(FakeInflux(), "t", T0, T0 + timedelta(days=1))
    windows = history["credit"].windows
    assert len(windows) == WINDOWS
    for k, w in enumerate(windows):
        assert w["drifted_features"] == sorted(f for f in PLANTED if k in PLANTED[f])
        assert w["prediction_drift"] is (k in PREDICTION_DRIFT)
    features = history["credit"].features
    assert features["credit_score"] == {"windows": WINDOWS, "drifted": 4}
    assert features["prediction"] == {"windows": WINDOWS, "drifted": 1}


async def test_the_summary_separates_dataset_drift_feature_drift_and_prediction_drift():
    history = await load_history(FakeInflux(), "t", T0, T0 + timedelta(days=1))
    r = build_report(inputs(history))
    windows, _ = points()
    any_feature = {k for ks in PLANTED.values() for k in ks}
    assert r.summary["windows"] == WINDOWS
    assert r.summary["windows_with_dataset_drift"] == sum(w["dataset_drift"] for w in windows)
    assert r.summary["windows_with_dataset_drift"] == 0  # the demo's case...
    assert r.summary["windows_with_feature_drift"] == len(any_feature) == 4  # ...yet drifted
    assert r.summary["windows_with_prediction_drift"] == len(PREDICTION_DRIFT)
    assert r.summary["features_with_drift"] == len(PLANTED)
    (m,) = r.monitoring
    assert m.features_with_drift == sorted(PLANTED)
    assert {f.feature: f.drifted for f in m.features} == {
        **{f: len(PLANTED.get(f, ())) for f in FEATURES},
        "prediction": len(PREDICTION_DRIFT),
    }
    assert "drifted_windows" not in r.summary


async def test_versions_registered_and_versions_seen_in_the_stream_are_counted_apart():
    history = await load_history(FakeInflux(), "t", T0, T0 + timedelta(days=1))
    r = build_report(inputs(history))
    assert r.summary["versions_registered"] == 0  # the demo registers no version...
    assert r.summary["versions_monitored"] == 1  # ...but streams version "1"
    assert r.monitoring[0].versions_monitored == ["1"]
    assert "versions" not in r.summary
