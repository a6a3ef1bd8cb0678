"""The demo's "planted vs found" table (deploy/local/demo_story.py), on results made by hand:
the planted window, the window it was flagged in, false alarms before, and the alert that
reached the webhook or why none did (not fired; hidden by an inhibition, named)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy" / "local"))

from demo_story import inhibited_by, planted_vs_found

from driftline_core.events import AlertEvent, DriftResult, PerformanceResult
from driftline_core.events.drift import FeatureDrift
from driftline_core.events.windows import WindowSpan

T0 = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
INHIBIT = [
    {
        "source_matchers": ['alertname="DatasetDrift"'],
        "target_matchers": ['alertname="FeatureDrift"'],
        "equal": ["model", "segment"],
    }
]


@dataclass(frozen=True)
class Plant:
    name: str
    feature: str
    start: float


def window(k: int, drifted: set[str], segment: dict[str, str] | None = None) -> DriftResult:
    return DriftResult(
        tenant_id="t",
        model_id="m",
        model_version="1",
        segment=segment or {},
        window=WindowSpan(
            start=T0 + timedelta(seconds=10 * k), end=T0 + timedelta(seconds=10 * (k + 1)), events=5
        ),
        features=[
            FeatureDrift(feature=f, test="ks", statistic=0.5, threshold=0.1, drifted=f in drifted)
            for f in ("income", "region", "age")
        ],
        drifted_share=len(drifted) / 3,
        dataset_drift=False,
    )


def alert(name: str, feature: str = "", kind: str = "firing") -> AlertEvent:
    labels = {"alertname": name, "model": "m"}
    if feature:
        labels["feature"] = feature
    return AlertEvent(tenant_id="t", kind=kind, fingerprint=f"{name}:{feature}", labels=labels)


def notification(webhook_id: str, *alerts: AlertEvent) -> dict[str, object]:
    return {
        "id": webhook_id,
        "payload": {"alerts": [{"status": "firing", "labels": a.labels} for a in alerts]},
    }


def test_each_planted_drift_gets_its_window_its_flag_and_the_alert_that_reached_the_webhook():
    plants = [Plant("income drop", "income", 0.25), Plant("label shift", "label", 0.5)]
    results = [window(0, set()), window(1, set()), window(2, {"income"}), window(3, {"income"})]
    # a segment's verdict does not count as the whole population's
    results.append(window(1, {"income"}, {"region": "north"}))
    concept = PerformanceResult(
        tenant_id="t",
        model_id="m",
        model_version="*",
        window=WindowSpan(start=T0, end=T0 + timedelta(seconds=31), events=0),
        occurred_at=T0 + timedelta(seconds=31),
        kind="concept_drift",
        task="classification",
        labelled=0,
        metrics={},
    )
    fd, cd = alert("FeatureDrift", "income"), alert("ConceptDrift")
    [income, label] = planted_vs_found(
        plants,
        stream_start=(T0 + timedelta(seconds=3)).timestamp(),
        seconds=40,
        results=results,
        concept=[concept],
        alerts=[fd, cd],
        received=[notification("msg_1", fd), notification("msg_2", cd)],
        inhibit_rules=INHIBIT,
    )
    # planted at 3 + 0.25 * 40 = 13 s: window 1 (10-20 s); first flagged in window 2
    assert income.planted == T0 + timedelta(seconds=10)
    assert income.flagged == T0 + timedelta(seconds=20)
    assert income.early == 0
    assert income.delivered
    assert income.alert == "FeatureDrift msg_1"
    # planted at 23 s: window 2; the concept-drift signal at 31 s is in window 3
    assert label.planted == T0 + timedelta(seconds=20)
    assert label.flagged == T0 + timedelta(seconds=30)
    assert label.delivered
    assert "ConceptDrift" in label.alert


def test_a_flag_before_the_plant_is_a_false_alarm_and_a_missing_one_says_not_flagged():
    plants = [Plant("region shift", "region", 0.5), Plant("age shift", "age", 0.5)]
    results = [window(0, {"region"}), window(1, set()), window(2, {"region"}), window(3, set())]
    [region, age] = planted_vs_found(
        plants,
        stream_start=T0.timestamp(),
        seconds=40,
        results=results,
        concept=[],
        alerts=[],
        received=[],
        inhibit_rules=INHIBIT,
    )
    assert region.flagged == T0 + timedelta(seconds=20)
    assert region.early == 1
    # flagged in single windows only: the default rule needs two running
    assert region.alert == "no FeatureDrift: flagged 1 window(s) running, the rule needs 2"
    assert not region.delivered
    assert age.flagged is None
    assert age.alert == "no FeatureDrift alert fired"


def test_an_alert_hidden_by_an_inhibition_names_the_alert_that_hid_it():
    fd, dd = alert("FeatureDrift", "income"), alert("DatasetDrift")
    [income] = planted_vs_found(
        [Plant("income drop", "income", 0.0)],
        stream_start=T0.timestamp(),
        seconds=40,
        results=[window(0, {"income"})],
        concept=[],
        alerts=[fd, dd],
        received=[notification("msg_1", dd)],
        inhibit_rules=INHIBIT,
    )
    assert income.alert == "FeatureDrift fired, hidden by inhibition: DatasetDrift was firing"
    assert not income.delivered


def test_inhibition_needs_the_equal_labels_and_the_matchers():
    target = {"alertname": "FeatureDrift", "model": "m", "feature": "income"}
    assert inhibited_by(target, [{"alertname": "DatasetDrift", "model": "m"}], INHIBIT)
    assert not inhibited_by(target, [{"alertname": "DatasetDrift", "model": "other"}], INHIBIT)
    segment = {"alertname": "DatasetDrift", "model": "m", "segment": "region=north"}
    assert not inhibited_by(target, [segment], INHIBIT)
    assert not inhibited_by(target, [{"alertname": "ConceptDrift", "model": "m"}], INHIBIT)
    regex = [{**INHIBIT[0], "source_matchers": ['alertname=~"Dataset.*"']}]
    assert inhibited_by(target, [{"alertname": "DatasetDrift", "model": "m"}], regex)


def test_an_alert_still_firing_from_an_earlier_run_is_said_so_not_reported_missing():
    plants = [Plant("label shift", "label", 0.5)]
    concept = PerformanceResult(
        tenant_id="t",
        model_id="m",
        model_version="*",
        window=WindowSpan(start=T0, end=T0 + timedelta(seconds=25), events=0),
        occurred_at=T0 + timedelta(seconds=25),
        kind="concept_drift",
        task="classification",
        labelled=0,
        metrics={},
    )
    earlier = {
        "status": "firing",
        "labels": {"alertname": "ConceptDrift", "model": "m"},
        "starts_at": (T0 - timedelta(hours=1)).isoformat(),
    }
    [label] = planted_vs_found(
        plants,
        stream_start=T0.timestamp(),
        seconds=40,
        results=[window(k, set()) for k in range(4)],
        concept=[concept],
        alerts=[],
        received=[],
        inhibit_rules=INHIBIT,
        active=[earlier],
    )
    assert label.alert == "ConceptDrift firing since 07:00:00 (an earlier run): not sent again"
