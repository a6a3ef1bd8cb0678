"""The model registry over HTTP: versions with digests, approval with segregation of duties,
stages, and every change announced on driftline.registry.v1 and driftline.audit.v1."""

from __future__ import annotations

import hashlib

from driftline_core.events import AuditRecord, RegistryChange, decode

DIGEST = hashlib.sha256(b"model.pkl").hexdigest()


async def test_versions_are_approved_by_someone_else_before_production(
    client, tenant, topic_reader
):
    registry = await topic_reader("driftline.registry.v1")
    audit = await topic_reader("driftline.audit.v1")
    r = await tenant.admin.post(
        "/v1/models/credit/versions",
        json={
            "version": "2",
            "artifact_uri": "s3://models/credit/2",
            "artifact_sha256": DIGEST,
            "metadata": {"auc": 0.81},
        },
    )
    assert r.status_code == 201, r.text
    assert (r.json()["stage"], r.json()["submitted_by"]) == ("staging", "key:admin")

    r = await tenant.admin.post("/v1/models/credit/versions/2/stage", json={"stage": "production"})
    assert r.status_code == 409
    assert "approved before production" in r.json()["detail"]

    r = await tenant.admin.post("/v1/models/credit/versions/2/approve", json={"comment": "ok"})
    assert r.status_code == 403
    assert "may not approve" in r.json()["detail"]

    r = await tenant.admin.post("/v1/auth/keys", json={"name": "reviewer", "scopes": ["admin"]})
    reviewer = {"Authorization": f"Bearer {r.json()['api_key']}"}
    r = await client.post(
        "/v1/models/credit/versions/2/approve",
        headers=reviewer,
        json={"comment": "validated on holdout"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["approved_by"], r.json()["approval_comment"]) == (
        "key:reviewer",
        "validated on holdout",
    )
    again = await client.post("/v1/models/credit/versions/2/approve", headers=reviewer, json={})
    assert again.status_code == 409

    r = await tenant.admin.post("/v1/models/credit/versions/2/stage", json={"stage": "production"})
    assert (r.status_code, r.json()["stage"]) == (200, "production")

    def mine(rs, model):
        return [decode(model, r.value) for r in rs if decode(model, r.value).tenant_id == tenant.id]

    def v2(rs):
        return [c for c in mine(rs, RegistryChange) if c.model_version == "2"]

    changes = v2(await registry.read(until=lambda rs: len(v2(rs)) >= 3))

    assert [c.change for c in changes] == [
        "version_registered",
        "version_approved",
        "version_stage_changed",
    ]
    assert changes[1].details["approved_by"] == "key:reviewer"
    assert changes[1].details["submitted_by"] == "key:admin"

    def v2_audit(rs):
        return [a for a in mine(rs, AuditRecord) if a.resource.id == "credit@2"]

    records = v2_audit(await audit.read(until=lambda rs: len(v2_audit(rs)) >= 3))
    assert [a.action for a in records] == [
        "registry.version_registered",
        "registry.version_approved",
        "registry.version_stage_changed",
    ]


async def test_registry_refuses_bad_input_clearly(tenant):
    r = await tenant.admin.post(
        "/v1/models/credit/versions",
        json={"version": "3", "artifact_uri": "s3://x", "artifact_sha256": "not-a-digest"},
    )
    assert r.status_code == 422
    r = await tenant.admin.post(
        "/v1/models",
        json={
            "id": "credit",
            "name": "again",
            "task": "classification",
            "feature_schema": {"features": [{"name": "a", "kind": "numeric"}]},
        },
    )
    assert r.status_code == 409
    r = await tenant.admin.post(
        "/v1/models",
        json={
            "id": "m2",
            "name": "bad",
            "task": "classification",
            "feature_schema": {"features": [{"name": "a", "kind": "text", "min": 1}]},
        },
    )
    assert r.status_code == 422
    assert "min/max apply to numeric features only" in r.text
    assert (await tenant.admin.get("/v1/models/ghost/versions")).status_code == 404
    r = await tenant.ingest.post("/v1/models", json={})
    assert r.status_code == 403  # an ingest key cannot change the registry


async def test_a_schema_change_applies_to_the_next_events(tenant, wait_until):
    schema = {"features": [{"name": "age", "kind": "numeric"}], "unknown_features": "drop"}
    r = await tenant.admin.put("/v1/models/credit/schema", json=schema)
    assert r.status_code == 200, r.text

    async def applied() -> bool:
        r = await tenant.ingest.post(
            "/v1/events/predictions", json=[tenant.event(features={"age": 1, "anything": "else"})]
        )
        return r.status_code == 202

    await wait_until(applied, timeout=10)  # the schema cache lives 2 s
