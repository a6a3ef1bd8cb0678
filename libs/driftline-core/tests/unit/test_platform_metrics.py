"""The platform's own Prometheus metrics: the HTTP middleware of the shared app factory,
DLQ counting at the producer, rejection reason classes, build info (no network)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from driftline_core.events import DeadLetter, encode
from driftline_core.observability import CoreMetrics
from driftline_core.observability.metrics import IngestionMetrics, rejection_reason
from driftline_core.service import create_service_app


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client import generate_latest

    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_http_requests_are_counted_and_timed_by_route_template_and_status():
    metrics = CoreMetrics(CollectorRegistry(), "svc")
    router = APIRouter()

    @router.get("/v1/models/{model_id}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id == "missing":
            raise HTTPException(404, "no such model")
        return {"id": model_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    app = create_service_app(title="t", metrics=metrics, checks=[], components=[], routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for name in ("a", "b", "c", "missing"):
            await c.get(f"/v1/models/{name}")
        for i in range(3):
            await c.get(f"/random/{i}")
        assert (await c.get("/boom")).status_code == 500
    counts = samples(metrics.registry, "driftline_http_requests_total")
    route = "/v1/models/{model_id}"
    assert counts[(("method", "GET"), ("route", route), ("status", "200"))] == 3
    assert counts[(("method", "GET"), ("route", route), ("status", "404"))] == 1
    assert counts[(("method", "GET"), ("route", "__unmatched__"), ("status", "404"))] == 3
    assert counts[(("method", "GET"), ("route", "/boom"), ("status", "500"))] == 1
    assert len(counts) == 4  # three random paths did not make three label sets
    timed = samples(metrics.registry, "driftline_http_request_duration_seconds_count")
    assert timed[(("method", "GET"), ("route", route), ("status", "200"))] == 3


def test_dead_letters_are_counted_by_source_topic_and_reason_class():
    metrics = CoreMetrics(CollectorRegistry(), "svc")
    letters = [
        DeadLetter(
            reason="x", error_type="schema_mismatch", source="g", source_topic="t1", payload="e30="
        ),
        DeadLetter(
            reason="y", error_type="schema_mismatch", source="g", source_topic="t1", payload="e30="
        ),
        DeadLetter(
            reason="z", error_type="rejected_at_ingestion", source="ingestion", payload="e30="
        ),
    ]
    metrics.dead_letters_sent([encode(d) for d in letters] + [b"not json"])
    got = samples(metrics.registry, "driftline_dlq_records_total")
    assert got[(("error_type", "schema_mismatch"), ("source_topic", "t1"))] == 2
    assert got[(("error_type", "rejected_at_ingestion"), ("source_topic", ""))] == 1
    assert got[(("error_type", "unparsable"), ("source_topic", ""))] == 1


def test_rejections_are_counted_by_a_bounded_reason_class():
    assert rejection_reason("duplicate event_id: already accepted") == "duplicate"
    assert rejection_reason("unknown model 'm'") == "unknown_model"
    assert rejection_reason("missing feature(s): age") == "missing_feature"
    assert rejection_reason("feature 'age': 200 is outside [0, 120]") == "out_of_range"
    assert rejection_reason("feature 'age': expected a number, got str") == "wrong_type"
    assert rejection_reason("feature 'c': category 'q' is not one of the allowed categories") == (
        "unknown_category"
    )
    assert rejection_reason("something new") == "invalid"
    reg = CollectorRegistry()
    m = IngestionMetrics(reg)
    m.intake("prediction", 5, [{"reason": "unknown model 'x'"}, {"reason": "unknown model 'y'"}])
    assert samples(reg, "driftline_events_accepted_total") == {(("kind", "prediction"),): 5}
    assert samples(reg, "driftline_events_rejected_total") == {
        (("kind", "prediction"), ("reason", "unknown_model")): 2
    }


def test_build_info_names_the_service_and_its_version():
    metrics = CoreMetrics(CollectorRegistry(), "svc")
    (labels,) = samples(metrics.registry, "driftline_build_info")
    d = dict(labels)
    assert d["service"] == "svc"
    assert d["version"] == metadata.version("driftline-core")


def test_drift_and_audit_metrics_read_their_components_tallies_at_scrape_time():
    from types import SimpleNamespace

    from driftline_core.observability.metrics import AuditMetrics, DriftMetrics, integration_type

    reg = CollectorRegistry()
    proc = SimpleNamespace(events_counted=0, windows_closed=0, manager=SimpleNamespace(too_late=0))
    perf = SimpleNamespace(windows_closed=0, labels_joined=0, labels_unmatched=0, concept_drifts=0)
    trail = SimpleNamespace(heads={}, verifications={})
    DriftMetrics(reg, proc, perf)
    AuditMetrics(reg, trail)
    proc.events_counted, proc.windows_closed, perf.windows_closed = 120, 3, 2
    trail.heads["t1"] = 41
    trail.verifications["t1"] = (False, 1700000000.0)
    assert reg.get_sample_value("driftline_predictions_processed_total") == 120
    assert reg.get_sample_value("driftline_windows_closed_total", {"kind": "drift"}) == 3
    assert reg.get_sample_value("driftline_windows_closed_total", {"kind": "performance"}) == 2
    assert reg.get_sample_value("driftline_audit_chain_head_sequence", {"tenant": "t1"}) == 41
    assert reg.get_sample_value("driftline_audit_verification_ok", {"tenant": "t1"}) == 0
    assert (
        reg.get_sample_value(
            "driftline_audit_last_verification_timestamp_seconds", {"tenant": "t1"}
        )
        == 1700000000.0
    )

    class WebhookConfig: ...

    class MsTeamsConfig: ...

    assert integration_type(WebhookConfig()) == "webhook"
    assert integration_type(MsTeamsConfig()) == "msteams"
