"""Issue 18 item 1, against the in-process apps on the real stack: the targeted inputs that
answered 500 (NUL characters in every service, dates the stores cannot hold, integers past
int64, 300 KB events and lines) each get a 4xx with a reason, or are accepted where they are
valid; and no request reached the last-resort handler (driftline_http_unhandled_errors)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

ADMIN_TOKEN = {"X-Admin-Token": "driftline-dev-admin"}
NUL = "a\u0000b"
BIG = 2**63  # one past int64
LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()
SCHEMA = {"features": [{"name": "age", "kind": "numeric"}, {"name": "note", "kind": "text"}]}


@pytest.fixture(scope="module")
async def tenant(apps: Any) -> dict[str, str]:
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await apps.ingestion.post(
        "/v1/auth/tenants", json={"id": tid, "name": tid}, headers=ADMIN_TOKEN
    )
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    model = f"m{uuid.uuid4().hex[:8]}"
    h = {"Authorization": f"Bearer {key}"}
    r = await apps.ingestion.post(
        "/v1/models",
        json={"id": model, "name": "n", "task": "classification", "feature_schema": SCHEMA},
        headers=h,
    )
    assert r.status_code == 201, r.text
    return {"tenant": tid, "key": key, "model": model}


def prediction(model: str, **kw: Any) -> dict[str, Any]:
    return {
        "model_id": model,
        "model_version": "1",
        "features": {"age": 30, "note": "x"},
        "prediction": 1,
    } | kw


def cases(t: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any], set[int]]]:
    m = t["model"]
    ndjson = {"headers": {"content-type": "application/x-ndjson"}}
    return [
        # strings
        (
            "ingestion",
            "POST",
            "/v1/models",
            {"json": {"id": "m2", "name": NUL, "task": "classification", "feature_schema": SCHEMA}},
            {422},
        ),
        (
            "ingestion",
            "POST",
            "/v1/events/predictions",
            {"json": prediction(m, model_version=NUL)},
            {400, 422},
        ),
        (
            "ingestion",
            "POST",
            f"/v1/models/{m}/versions",
            {"json": {"version": NUL, "artifact_uri": "s3://b/m", "artifact_sha256": "1" * 64}},
            {422},
        ),
        ("ingestion", "GET", "/v1/models", {"params": {"q": NUL}}, {422}),
        (
            "alerting",
            "POST",
            "/v1/alert-rules",
            {
                "json": {
                    "name": "R",
                    "condition": {
                        "metric": "drift.feature.ratio",
                        "op": ">",
                        "value": 1.5,
                        "feature": "age",
                    },
                    "severity": "warning",
                    "labels": {"team": NUL},
                }
            },
            {422},
        ),
        ("audit", "POST", "/v1/audit/holds", {"json": {"reason": NUL}}, {422}),
        ("audit", "GET", "/v1/audit/records", {"params": {"action": NUL}}, {422}),
        (
            "reports",
            "POST",
            "/v1/reports",
            {
                "json": {
                    "framework": "sox",
                    "period_start": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                    "period_end": LATER,
                    "formats": ["json"],
                    "model_id": NUL,
                }
            },
            {422},
        ),
        # dates
        (
            "ingestion",
            "POST",
            "/v1/events/predictions",
            {"json": prediction(m, occurred_at="0001-01-01T00:00:00+05:00")},
            {400, 422},
        ),
        (
            "ingestion",
            "POST",
            "/v1/events/predictions",
            {"json": prediction(m, occurred_at="9999-12-31T23:59:59-05:00")},
            {400, 422},
        ),
        (
            "audit",
            "GET",
            "/v1/audit/records",
            {"params": {"since": "0001-01-01T00:00:00+05:00"}},
            {200, 400, 422},
        ),
        (
            "reports",
            "POST",
            "/v1/reports",
            {
                "json": {
                    "framework": "sox",
                    "period_start": "0001-01-01T00:00:00+05:00",
                    "period_end": "9999-12-31T23:59:59-05:00",
                    "formats": ["json"],
                }
            },
            {400, 422},
        ),
        # integers
        ("audit", "GET", "/v1/audit/verify", {"params": {"from_seq": BIG}}, {400, 422}),
        (
            "audit",
            "GET",
            "/v1/audit/export",
            {"params": {"from_seq": 1, "to_seq": BIG}},
            {400, 422},
        ),
        ("audit", "GET", "/v1/audit/records", {"params": {"limit": BIG}}, {200, 400, 422}),
        ("reports", "GET", "/v1/reports", {"params": {"limit": BIG}}, {200, 400, 422}),
        # sizes
        (
            "ingestion",
            "POST",
            "/v1/events/predictions",
            {"json": prediction("nosuchmodel", features={"note": "x" * 300_000})},
            {400, 404, 413, 422},
        ),
        (
            "ingestion",
            "POST",
            "/v1/events/predictions",
            {"content": b"{" + b"x" * 300_000 + b"\n", **ndjson},
            {400, 413, 422},
        ),
    ]


async def test_bad_input_gets_a_4xx_with_a_reason_never_a_5xx(apps, tenant):
    h = {"Authorization": f"Bearer {tenant['key']}"}
    got: list[tuple[str, str, int, str]] = []  # the answers not allowed
    for service, method, path, kw, allowed in cases(tenant):
        client: httpx.AsyncClient = getattr(apps, service)
        headers = {**h, **kw.pop("headers", {})}
        r = await client.request(method, path, headers=headers, **kw)
        if r.status_code not in allowed or (r.status_code >= 400 and not r.text.strip()):
            got.append((service, path, r.status_code, r.text[:200]))
    assert got == [], "\n".join(map(str, got))
    for service in ("ingestion", "alerting", "audit", "reports"):
        text = (await getattr(apps, service).get("/metrics")).text
        unhandled = [
            ln
            for ln in text.splitlines()
            if ln.startswith("driftline_http_unhandled_errors_total{") and not ln.endswith(" 0.0")
        ]
        assert unhandled == [], (service, unhandled)


async def test_a_300_kb_text_feature_of_a_known_model_gets_a_4xx_not_a_503(apps, tenant):
    """It answered 503 (Kafka refused the record); the per-event limit refuses it first."""
    h = {"Authorization": f"Bearer {tenant['key']}"}
    big = prediction(tenant["model"], features={"age": 1, "note": "x" * 300_000})
    r = await apps.ingestion.post("/v1/events/predictions", json=big, headers=h)
    assert r.status_code == 413, r.text
    assert "too large" in r.json()["detail"], r.text
    r = await apps.ingestion.post("/v1/events/predictions", json=[big], headers=h)
    assert r.status_code == 413, r.text
    assert r.json()["rejected"][0]["reason"].startswith("too large: event is 300,"), r.text
