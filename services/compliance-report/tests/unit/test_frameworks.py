"""The report builders on hand-made evidence: segregation-of-duties rules, gates, alerts and
their time to resolution, the monitoring summary; and the rendered files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from driftline_compliance_report.frameworks import Inputs, build_report
from driftline_compliance_report.history import ModelHistory
from driftline_compliance_report.model import Integrity, Report
from driftline_compliance_report.render import render
from driftline_compliance_report.store import next_period

T0 = datetime(2026, 11, 1, tzinfo=UTC)
START, END = T0, T0 + timedelta(days=7)


def fact(
    kind: str,
    at: datetime,
    actor: str,
    *,
    topic: str = "driftline.registry.v1",
    model: str | None = "m",
    version: str | None = None,
    resource: str = "",
    outcome: str = "success",
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": "t",
        "source_id": uuid.uuid4(),
        "topic": topic,
        "occurred_at": at,
        "kind": kind,
        "actor": actor,
        "resource_type": "model",
        "resource_id": resource or (model or ""),
        "outcome": outcome,
        "model_id": model,
        "model_version": version,
        "body": body if body is not None else {"details": {}},
    }


def reg(
    change: str, at: datetime, actor: str, version: str | None = None, **details: Any
) -> dict[str, Any]:
    return fact(f"registry.{change}", at, actor, version=version, body={"details": details})


SCHEMA = {
    "features": [
        {"name": "a", "kind": "numeric"},
        {"name": "ssn", "kind": "text", "sensitive": True},
    ]
}
VALIDATION = {
    "validation": {"dataset": "d", "metrics": {"auc": 0.9}, "gates": {"auc": {"min": 0.8}}}
}


def registry() -> list[dict[str, Any]]:
    before = T0 - timedelta(days=3)
    return [
        reg(
            "model_registered",
            before,
            "user:ann",
            name="M",
            task="classification",
            feature_schema=SCHEMA,
            monitoring={"label_ttl_seconds": 86400},
        ),
        reg(
            "version_registered",
            before,
            "user:ann",
            "1",
            artifact_sha256="a" * 64,
            artifact_uri="s3://m/1",
            metadata=VALIDATION,
        ),
        reg(
            "version_approved",
            T0 + timedelta(hours=1),
            "user:ben",
            "1",
            approved_by="user:ben",
            submitted_by="user:ann",
            meaning="approved",
        ),
        reg(
            "version_stage_changed",
            T0 + timedelta(hours=2),
            "user:ben",
            "1",
            **{"from": "none", "to": "production"},
        ),
        reg(
            "version_registered",
            T0 + timedelta(hours=3),
            "user:ann",
            "2",
            artifact_sha256="b" * 64,
            artifact_uri="s3://m/2",
            metadata={
                "validation": {
                    "dataset": "d",
                    "metrics": {"auc": 0.7},
                    "gates": {"auc": {"min": 0.8}},
                }
            },
        ),
        reg(
            "version_approved",
            T0 + timedelta(hours=4),
            "user:ann",
            "2",
            approved_by="user:ann",
            submitted_by="user:ann",
        ),
        reg(
            "version_stage_changed",
            T0 + timedelta(hours=5),
            "user:ann",
            "2",
            **{"from": "none", "to": "production"},
        ),
        reg(
            "version_stage_changed",
            END + timedelta(hours=1),
            "user:ann",
            "2",
            **{"from": "production", "to": "archived"},
        ),  # after the period
    ]


def inputs(framework: str, **kw: Any) -> Inputs:
    base: dict[str, Any] = {
        "report_id": "r",
        "tenant_id": "t",
        "framework": framework,
        "start": START,
        "end": END,
        "generated_at": END,
        "generated_by": "user:aud",
        "registry": [f for f in registry() if f["occurred_at"] < END],
        "integrity": Integrity(status="verified", records=10),
    }
    return Inputs(**(base | kw))


def test_sox_flags_both_registry_rules_and_a_self_role_change() -> None:
    audit = [
        fact(
            "user.create",
            T0 - timedelta(days=9),
            "key:admin",
            topic="driftline.audit.v1",
            model=None,
            resource="u-1",
            body={"details": {"username": "ann", "role": "viewer"}},
        ),
        fact(
            "user.update",
            T0 + timedelta(hours=6),
            "user:ann",
            topic="driftline.audit.v1",
            model=None,
            resource="u-1",
            body={"details": {"role": "admin"}},
        ),
        fact(
            "user.update",
            T0 + timedelta(hours=7),
            "user:ben",
            topic="driftline.audit.v1",
            model=None,
            resource="u-1",
            body={"details": {"role": "viewer"}},
        ),
    ]
    r = build_report(inputs("sox", audit=audit[1:], retention_facts=audit[:1]))
    rules = [(v.rule, v.actor, v.version) for v in r.violations]
    assert rules == [
        ("approver-is-submitter", "user:ann", "2"),
        ("submitter-promoted-to-production", "user:ann", "2"),
        ("self-role-change", "user:ann", None),
    ]
    assert r.summary["versions_registered"] == 1  # version 1 was registered before the period
    assert r.summary["versions_approved"] == 2
    assert r.summary["stage_changes"] == 2
    assert [a.action for a in r.access_changes] == ["user.update", "user.update"]


def test_fda_gates_signatures_alerts_and_monitoring() -> None:
    fire = T0 + timedelta(hours=10)
    alerts = [
        fact(
            "alert.firing",
            T0 - timedelta(days=1),
            "service:alerting",
            topic="driftline.alerts.v1",
            resource="old",
            body={"starts_at": (T0 - timedelta(days=1)).isoformat()},
        ),
        fact(
            "alert.resolved",
            T0 - timedelta(hours=20),
            "service:alerting",
            topic="driftline.alerts.v1",
            resource="old",
            body={},
        ),  # closed before the period
        fact(
            "alert.firing",
            fire,
            "service:alerting",
            topic="driftline.alerts.v1",
            resource="a",
            body={"severity": "critical", "starts_at": fire.isoformat()},
        ),
        fact(
            "alert.resolved",
            fire + timedelta(minutes=45),
            "service:alerting",
            topic="driftline.alerts.v1",
            resource="a",
            body={"ends_at": (fire + timedelta(minutes=45)).isoformat()},
        ),
        fact(
            "alert.firing",
            T0 - timedelta(hours=1),
            "service:alerting",
            topic="driftline.alerts.v1",
            resource="b",
            body={},
        ),  # open across the start
    ]
    windows = [
        {
            "time": (T0 + timedelta(hours=h)).isoformat(),
            "version": "1",
            "events": 10,
            "drifted_share": s,
            "dataset_drift": s >= 0.5,
            "quality_score": q,
            "drifted_features": drifted,
            "prediction_drift": pred,
        }
        for h, s, q, drifted, pred in (
            (1, 0.0, 100.0, [], True),
            (2, 0.5, 90.0, ["a"], False),
            (3, 1.0, 80.0, ["a", "b"], False),
        )
    ]
    perf = [
        {
            "time": (T0 + timedelta(hours=h)).isoformat(),
            "version": "1",
            "labelled": 5,
            "metrics": {"accuracy": a},
        }
        for h, a in ((1, 0.9), (2, 0.7))
    ]
    history = {
        "m": ModelHistory(
            windows=windows, features={"a": {"windows": 3, "drifted": 2}}, performance=perf
        )
    }
    r = build_report(inputs("fda", alerts=alerts, history=history))
    v = {x.version: x for x in r.versions}
    assert v["1"].gates_met is True
    assert v["2"].gates_met is False
    assert [s.signer for s in r.signatures] == ["user:ben", "user:ann"]
    assert [(a.fingerprint, a.minutes_to_resolve) for a in r.alerts] == [("b", None), ("a", 45.0)]
    (m,) = r.monitoring
    assert (m.windows, m.events, m.windows_with_dataset_drift) == (3, 30, 2)
    assert m.windows_with_feature_drift == 2
    assert m.windows_with_prediction_drift == 1
    assert m.features_with_drift == ["a", "b"]
    assert m.versions_monitored == ["1"]
    assert m.mean_drifted_share == pytest.approx(0.5)
    assert m.min_quality_score == 80.0
    assert m.performance["accuracy"] == {"mean": 0.8, "min": 0.7, "max": 0.9, "last": 0.7}
    assert r.summary["alerts_unresolved"] == 1
    assert r.summary["median_minutes_to_resolve"] == 45.0


def test_gdpr_sensitive_fields_and_unreadable_facts() -> None:
    shredded = reg("model_registered", T0, "user:x")
    shredded.update(model_id="gone", body=None)
    r = build_report(
        inputs(
            "gdpr",
            registry=[*registry(), shredded],
            counts={"shredded": 1},
            key_versions=[{"version": 1, "kek_id": "k", "destroyed": False}],
        )
    )
    (p,) = r.processing  # the unreadable model is not described
    assert p.sensitive_fields == ["ssn"]
    assert p.categories == {"numeric": 1, "text": 1}
    assert p.label_retention_days == 1.0
    assert r.keys is not None
    assert r.keys.unreadable_records_in_period == 1


def test_rendered_files_agree_and_validate(tmp_path) -> None:
    windows = [
        {
            "time": (T0 + timedelta(hours=h)).isoformat(),
            "version": "1",
            "events": 10,
            "drifted_share": h / 10,
            "dataset_drift": False,
            "quality_score": 99.0,
        }
        for h in range(1, 8)
    ]
    report = build_report(
        inputs("model_card", model_id="m", history={"m": ModelHistory(windows=windows)})
    )
    files = render(report, ["json", "html", "pdf"])
    doc = orjson.loads(files["report.json"])
    assert Report.model_validate(doc).model_dump(mode="json") == doc
    html = files["report.html"].decode()
    assert html.count('<g id="series-m-drifted_share">') == 1
    assert 'id="c' in html  # other ids are scoped per chart
    assert files["report.pdf"].startswith(b"%PDF")
    (tmp_path / "card.pdf").write_bytes(files["report.pdf"])


@pytest.mark.parametrize(
    ("cadence", "after", "start", "end"),
    [
        (
            "daily",
            datetime(2026, 11, 23, 10, tzinfo=UTC),
            datetime(2026, 11, 24, tzinfo=UTC),
            datetime(2026, 11, 25, tzinfo=UTC),
        ),
        (
            "weekly",
            datetime(2026, 11, 23, 10, tzinfo=UTC),
            datetime(2026, 11, 30, tzinfo=UTC),
            datetime(2026, 12, 7, tzinfo=UTC),
        ),
        (
            "weekly",
            datetime(2026, 11, 30, tzinfo=UTC),
            datetime(2026, 11, 30, tzinfo=UTC),
            datetime(2026, 12, 7, tzinfo=UTC),
        ),
        (
            "monthly",
            datetime(2026, 12, 5, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
            datetime(2027, 2, 1, tzinfo=UTC),
        ),
    ],
)
def test_next_period(cadence: str, after: datetime, start: datetime, end: datetime) -> None:
    assert next_period(cadence, after) == (start, end)


def test_published_report_schema_is_up_to_date() -> None:
    """Regenerate with `make schemas` when the report model changes."""
    from pathlib import Path

    from driftline_compliance_report.model import schema_json

    path = Path(__file__).resolve().parents[4] / "docs" / "schemas" / "report.schema.json"
    assert path.exists(), f"{path} is missing: run `make schemas`"
    assert orjson.loads(path.read_text()) == orjson.loads(schema_json()), "stale: make schemas"


async def test_a_report_whose_workers_keep_dying_is_failed_not_retried_forever() -> None:
    from driftline_compliance_report.jobs import Generator

    class Store:
        failed: list[tuple[str, str]] = []

        async def claim(self, stale_after_s: float) -> dict[str, Any]:
            return {"id": "r1", "attempts": 4, "tenant_id": "t"}

        async def fail(self, report_id: str, error: str) -> None:
            self.failed.append((report_id, error))

    announced: list[str] = []

    async def announce(job: dict[str, Any], kind: str, manifest: Any) -> None:
        announced.append(kind)

    g = Generator(Store(), None, None, None, None, "k", None, announce)  # type: ignore[arg-type]
    assert await g.run_once() is True
    assert Store.failed == [("r1", "gave up after 3 attempts")]
    assert announced == ["failed"]
