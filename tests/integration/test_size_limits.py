"""Issue 18 item 1, sizes: per-event and per-field byte limits in ingestion (JSON, NDJSON,
batches, CloudEvents), and big bodies on the other services' write routes, against the
in-process apps on the real stack. Every answer is a 4xx with the reason or an acceptance,
never a 5xx, and no request reached the last-resort handler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from driftline_ingestion.settings import IngestionOptions, IngestionSettings

ADMIN_TOKEN = {"X-Admin-Token": "driftline-dev-admin"}
SCHEMA = {"features": [{"name": "age", "kind": "numeric"}, {"name": "note", "kind": "text"}]}
NDJSON = {"content-type": "application/x-ndjson"}
OPTS = IngestionOptions()
BIG = "x" * 300_000  # over the per-event limit (128 KiB) on its own
FIELD = "y" * (OPTS.max_field_bytes + 1)  # over the per-field limit, under the per-event one


@pytest.fixture(scope="module")
async def tenant(apps: Any) -> dict[str, Any]:
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await apps.ingestion.post(
        "/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN_TOKEN
    )
    assert r.status_code == 201, r.text
    h = {"Authorization": f"Bearer {r.json()['api_key']}"}
    model = f"m{uuid.uuid4().hex[:8]}"
    r = await apps.ingestion.post(
        "/v1/models",
        json={"id": model, "name": "n", "task": "classification", "feature_schema": SCHEMA},
        headers=h,
    )
    assert r.status_code == 201, r.text
    return {"tenant": tid, "h": h, "model": model}


def event(model: str, note: str = "ok", **kw: Any) -> dict[str, Any]:
    return {
        "model_id": model,
        "model_version": "1",
        "features": {"age": 30, "note": note},
        "prediction": 1,
    } | kw


async def no_unhandled(apps: Any) -> None:
    for service in ("ingestion", "alerting", "audit", "reports"):
        text = (await getattr(apps, service).get("/metrics")).text
        hits = [
            ln
            for ln in text.splitlines()
            if ln.startswith("driftline_http_unhandled_errors_total{") and not ln.endswith(" 0.0")
        ]
        assert hits == [], (service, hits)


async def test_one_event_over_the_limit_is_a_413_with_the_reason_before_it_is_parsed(apps, tenant):
    r = await apps.ingestion.post(
        "/v1/events/predictions", json=event(tenant["model"], BIG), headers=tenant["h"]
    )
    assert r.status_code == 413, r.text
    assert "per event" in r.json()["detail"]
    assert "MAX_EVENT_BYTES" in r.json()["detail"]
    # not JSON at all: refused on its size, never parsed (a parse error would be a 400)
    r = await apps.ingestion.post(
        "/v1/events/predictions",
        content=b"{" + b"x" * 300_000,
        headers={**tenant["h"], "content-type": "application/json"},
    )
    assert r.status_code == 413, r.text


async def test_a_batch_refuses_only_its_oversized_events_and_says_which_and_why(apps, tenant):
    m = tenant["model"]
    body = [event(m), event(m, BIG), event(m, FIELD), event(m)]
    r = await apps.ingestion.post("/v1/events/predictions", json=body, headers=tenant["h"])
    assert r.status_code == 202, r.text
    got = r.json()
    assert got["accepted"] == 2
    assert [x["index"] for x in got["rejected"]] == [1, 2]
    per_event, per_field = (x["reason"] for x in got["rejected"])
    assert "per event" in per_event, per_event
    assert per_field.startswith(f"too large: event.features.note is {len(FIELD):,} bytes")
    assert "per field" in per_field, per_field

    # all of them too large: 413, each named
    r = await apps.ingestion.post(
        "/v1/events/predictions", json=[event(m, BIG), event(m, FIELD)], headers=tenant["h"]
    )
    assert r.status_code == 413, r.text
    assert [x["index"] for x in r.json()["rejected"]] == [0, 1]


async def test_ndjson_lines_over_the_limit_are_refused_unparsed_and_the_rest_accepted(apps, tenant):
    m = tenant["model"]
    lines = [
        orjson.dumps(event(m)),
        b"{" + b"z" * 300_000,  # not JSON, and too large: refused for its size
        orjson.dumps(event(m, BIG)),
        orjson.dumps(event(m)),
    ]
    r = await apps.ingestion.post(
        "/v1/events/predictions", content=b"\n".join(lines), headers={**tenant["h"], **NDJSON}
    )
    assert r.status_code == 202, r.text
    got = r.json()
    assert got["accepted"] == 2
    assert [x["index"] for x in got["rejected"]] == [1, 2]
    assert all(x["reason"].startswith("too large: line ") for x in got["rejected"]), got
    # a lone line that is too large and not JSON: 413, not a 5xx
    r = await apps.ingestion.post(
        "/v1/events/predictions", content=lines[1] + b"\n", headers={**tenant["h"], **NDJSON}
    )
    assert r.status_code == 413, r.text


async def test_labels_have_the_same_limits(apps, tenant):
    r = await apps.ingestion.post(
        "/v1/events/actuals",
        json=[
            {"model_id": tenant["model"], "prediction_event_id": str(uuid.uuid4()), "actual": 1},
            {
                "model_id": tenant["model"],
                "prediction_event_id": str(uuid.uuid4()),
                "actual": 1,
                "segment": {"s": FIELD},
            },
        ],
        headers=tenant["h"],
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    assert "event.segment.s" in r.json()["rejected"][0]["reason"]


async def test_a_cloudevent_over_the_limit_is_a_4xx(apps, tenant):
    """KServe's logger: the request half carries a 300 KB text feature."""
    ce_id = str(uuid.uuid4())
    h = {**tenant["h"], "content-type": "application/json", "ce-id": ce_id}
    base = f"/v1/events/cloudevents?model_id={tenant['model']}"
    request = {"instances": [[30, BIG]]}
    r = await apps.ingestion.post(
        base,
        content=orjson.dumps(request),
        headers={**h, "ce-type": "org.kubeflow.serving.inference.request"},
    )
    assert r.status_code in (202, 413), r.text
    r = await apps.ingestion.post(
        base,
        content=orjson.dumps({"predictions": [1]}),
        headers={**h, "ce-type": "org.kubeflow.serving.inference.response"},
    )
    assert r.status_code == 413, r.text
    assert "per event" in r.text or "per field" in r.text, r.text


def test_an_event_limit_the_producer_batch_cannot_hold_is_refused_at_start():
    with pytest.raises(ValueError, match="MAX_EVENT_BYTES"):
        IngestionSettings(
            environment="test",
            ingestion=IngestionOptions(max_event_bytes=512 * 1024, max_field_bytes=1024),
        )


async def test_big_bodies_on_the_other_services_write_routes_get_no_5xx(apps, tenant):
    """Rules, silences, holds, reports and audit queries with a 300 KB string: a 4xx or an
    acceptance, never a 5xx (the audit record of the change must still fit Kafka)."""
    h = tenant["h"]
    now = datetime.now(UTC)
    rule = {
        "id": f"r{uuid.uuid4().hex[:8]}",
        "name": "R",
        "condition": {"metric": "drift.feature.ratio", "op": ">", "value": 1.5, "feature": "a"},
        "severity": "warning",
    }
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("alerting", "POST", "/v1/alert-rules", {"json": rule | {"labels": {"team": BIG}}}),
        ("alerting", "POST", "/v1/alert-rules", {"json": rule | {"name": BIG}}),
        ("alerting", "POST", "/v1/alert-rules", {"json": rule | {"annotations": {"a": BIG}}}),
        (
            "alerting",
            "POST",
            "/v1/silences",
            {
                "json": {
                    "matchers": [{"name": "team", "value": BIG}],
                    "starts_at": now.isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "comment": "c",
                }
            },
        ),
        ("audit", "POST", "/v1/audit/holds", {"json": {"reason": BIG}}),
        ("audit", "GET", "/v1/audit/records", {"params": {"action": "a" * 60_000}}),
        (
            "reports",
            "POST",
            "/v1/reports",
            {
                "json": {
                    "framework": "sox",
                    "period_start": (now - timedelta(days=1)).isoformat(),
                    "period_end": now.isoformat(),
                    "formats": ["json"],
                    "model_id": BIG,
                }
            },
        ),
        ("ingestion", "POST", "/v1/models", {"json": {"id": "m2", "name": BIG, "task": "x"}}),
    ]
    bad = []
    for service, method, path, kw in cases:
        r = await getattr(apps, service).request(method, path, headers=h, **kw)
        # a 300 KB string has no place in these fields: refused, naming the field
        if path.startswith("/v1/audit/records"):
            ok = r.status_code in (200, 400, 422)
        else:
            ok = r.status_code == 422 and "at most" in r.text
        if not ok:
            bad.append((service, path, r.status_code, r.text[:300]))
    assert bad == [], "\n".join(map(str, bad))
    await no_unhandled(apps)


def test_rules_and_silences_stored_before_the_bounds_still_load():
    """A rule or silence an older version accepted is read back, not refused (it would
    stop alerting's leader from starting); only what comes in is bounded."""
    from pydantic import ValidationError

    from driftline_alerting.routing import Silence
    from driftline_alerting.rules import STORED, Rule

    rule = {
        "id": "r1",
        "name": "R",
        "condition": {"metric": "drift.feature.ratio", "op": ">", "value": 1.5, "feature": "a"},
        "labels": {"team": BIG},
    }
    with pytest.raises(ValidationError, match="at most 1024 characters"):
        Rule.model_validate(rule)
    assert Rule.model_validate_json(orjson.dumps(rule), context=STORED).labels["team"] == BIG
    now = datetime.now(UTC)
    silence = {
        "id": str(uuid.uuid4()),
        "matchers": [{"name": "team", "value": BIG}],
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "created_by": "t",
        "comment": "c",
    }
    with pytest.raises(ValidationError, match="at most 4096 characters"):
        Silence.model_validate(silence)
    assert Silence.model_validate_json(orjson.dumps(silence), context=STORED).matchers
