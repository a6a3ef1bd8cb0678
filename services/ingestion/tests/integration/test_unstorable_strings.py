"""Strings PostgreSQL, InfluxDB tags or the audit chain cannot hold are refused at the edge
with a 422 that names the field, never accepted (the NUL model_version that stopped drift
detection's checkpoints and alerting's state, issue 14 defect 11) and never a 500."""

from __future__ import annotations

import json
import uuid

import orjson
import pytest

from driftline_core.events import DeadLetter, decode

MODEL = {
    "id": "m1",
    "task": "regression",
    "feature_schema": {"features": [{"name": "x", "kind": "numeric"}]},
}


async def test_a_nul_in_model_version_is_refused_with_422_and_dead_lettered(tenant, topic_reader):
    predictions = await topic_reader("driftline.predictions.v1")
    dlq = await topic_reader("driftline.dlq.v1")
    event_id = str(uuid.uuid4())
    body = (
        b'[{"event_id": "%s", "model_id": "credit", "model_version": "1\\u0000x", '
        % (event_id.encode())
        + b'"features": {"age": 40, "income": 50000.0, "region": "north"}, "prediction": 0.3}]'
    )
    r = await tenant.ingest.post(
        "/v1/events/predictions", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    [rejected] = r.json()["rejected"]
    assert rejected["reason"] == (
        "event.model_version: NUL character U+0000 at position 1 is not allowed"
    )
    letters = await dlq.read(
        until=lambda rs: any(event_id.encode() in x.value for x in rs), timeout=10
    )
    [letter] = [decode(DeadLetter, x.value) for x in letters if event_id.encode() in x.value]
    assert letter.reason == rejected["reason"]
    assert letter.tenant_id == tenant.id
    sent = await predictions.read(timeout=3)
    assert not [x for x in sent if event_id.encode() in x.value]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model_id": "cre\x00dit"}, "event.model_id: NUL character U+0000"),
        ({"model_version": "1\nINJECTED"}, "model_version: control character U+000A"),
        ({"model_version": "1\x1b[31m"}, "model_version: control character U+001B"),
        ({"model_version": "1\x85"}, "model_version: control character U+0085"),
        ({"segment": {"country": "de\x00"}}, "event.segment.country: NUL character"),
        ({"segment": {"coun\ttry": "de"}}, "segment key: control character U+0009"),
        ({"segment": {"country": "de\r"}}, "segment.country: control character U+000D"),
        ({"prediction": "yes\x00"}, "event.prediction: NUL character"),
        ({"prediction": "yes\x07"}, "prediction: control character U+0007"),
        ({"probabilities": {"a\x01": 0.4, "b": 0.6}}, "probabilities key: control character"),
        (
            {"features": {"age": 40, "income": 5e4, "region": "north", "ssn": "1\x00"}},
            "event.features.ssn: NUL character",
        ),
        (
            {"features": {"age": 40, "income": 5e4, "region": "north\x00"}},
            "event.features.region: NUL character",
        ),
    ],
)
async def test_each_field_that_cannot_hold_the_character_names_it(tenant, change, reason):
    good = tenant.event(event_id=str(uuid.uuid4()))
    bad = tenant.event(**change)
    r = await tenant.ingest.post("/v1/events/predictions", json=[good, bad])
    assert r.status_code == 202, r.text  # the valid neighbour is kept
    assert r.json()["accepted"] == 1
    assert r.json()["event_ids"] == [good["event_id"]]
    [rejected] = r.json()["rejected"]
    assert rejected["index"] == 1
    assert reason in rejected["reason"], rejected["reason"]


async def test_free_text_may_hold_newlines_and_tabs(tenant):
    ev = tenant.event(features={"age": 40, "income": 5e4, "region": "north", "ssn": "a\nb\tc"})
    r = await tenant.ingest.post("/v1/events/predictions", json=[ev])
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text


async def test_ndjson_lines_and_actuals_are_guarded_too(tenant):
    lines = [orjson.dumps(tenant.event()), orjson.dumps(tenant.event(model_version="\x00"))]
    r = await tenant.ingest.post(
        "/v1/events/predictions",
        content=b"\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
    assert "model_version" in r.json()["rejected"][0]["reason"]
    pid = str(uuid.uuid4())
    r = await tenant.ingest.post(
        "/v1/events/actuals",
        json=[
            {"model_id": "cre\x00dit", "prediction_event_id": pid, "actual": 1},
            {"model_id": "credit", "prediction_event_id": pid, "actual": 1, "segment": {"a": "\n"}},
            {"model_id": "credit", "prediction_event_id": pid, "actual": "no\x00"},
        ],
    )
    assert r.status_code == 422, r.text
    reasons = [x["reason"] for x in r.json()["rejected"]]
    assert "event.model_id: NUL character" in reasons[0]
    assert "segment.a: control character U+000A" in reasons[1]
    assert "event.actual: NUL character" in reasons[2]


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("POST", "/v1/models", {**MODEL, "name": "a\x00b"}, "body"),
        ("POST", "/v1/models", {**MODEL, "name": "a\ud800b"}, "body"),
        (
            "POST",
            "/v1/models/credit/versions",
            {"version": "1\x00", "artifact_uri": "s3://x", "artifact_sha256": "0" * 64},
            "body",
        ),
        ("GET", "/v1/models/cre%00dit", None, "path"),
        ("GET", "/v1/models/cre%0Adit/versions", None, "path"),
        ("GET", "/v1/models/credit/reference?version=1%00", None, "query"),
        ("POST", "/v1/models/credit/reference?filename=a%00.csv", None, "query"),
        ("DELETE", "/v1/auth/keys/a%00b", None, "path"),
        ("POST", "/v1/auth/users", {"username": "bob", "password": "x\x00" * 8}, "body"),
    ],
)
async def test_other_routes_answer_422_naming_where_never_500(tenant, method, path, body, where):
    content = None if body is None else json.dumps(body).encode()
    r = await tenant.admin.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]  # a problem's errors (driftline_core.problems)
    assert err["loc"][0] == where
    assert "is not allowed" in err["msg"]


async def test_tenant_names_and_logins_with_nul_are_422(client):
    admin = {"X-Admin-Token": "driftline-dev-admin"}
    r = await client.post("/v1/auth/tenants", json={"id": "tnul", "name": "a\x00"}, headers=admin)
    assert r.status_code == 422, r.text
    assert "NUL character" in r.json()["errors"][0]["msg"]
    r = await client.post(
        "/v1/auth/login", json={"tenant": "acme", "username": "b\x00b", "password": "x"}
    )
    assert r.status_code == 422, r.text


async def test_cloudevents_with_control_characters_in_ids_are_422(client, tenant):
    key = tenant.keys["ingest"]
    base = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    ce = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": "x",
        "ce-type": "org.kubeflow.serving.inference.request",
    }
    data = orjson.dumps({"instances": [[41, 52000.0, "north"]]})
    r = await client.post(
        "/v1/events/cloudevents?model_id=cre%00dit", content=data, headers={**base, **ce}
    )
    assert r.status_code == 422, r.text
    envelope = {
        "specversion": "1.0",
        "id": "a\x00b",
        "source": "x",
        "type": "org.kubeflow.serving.inference.request",
        "data": {"instances": [[41, 52000.0, "north"]]},
    }
    r = await client.post(
        "/v1/events/cloudevents?model_id=credit",
        content=orjson.dumps(envelope),
        headers={**base, "content-type": "application/cloudevents+json"},
    )
    assert r.status_code == 422, r.text
    assert "ce-id: NUL character U+0000" in r.json()["detail"]


async def test_a_cloudevent_whose_payload_holds_a_nul_is_refused_per_instance(client, tenant):
    key = tenant.keys["ingest"]
    ce_id = str(uuid.uuid4())

    def headers(kind: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {key}",
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": ce_id,
            "ce-source": "x",
            "ce-type": f"org.kubeflow.serving.inference.{kind}",
        }

    request = {"instances": [[41, 52000.0, "north"], [23, 18000.0, "sou\x00th"]]}
    r = await client.post(
        "/v1/events/cloudevents?model_id=credit",
        content=orjson.dumps(request),
        headers=headers("request"),
    )
    assert r.status_code == 202, r.text
    r = await client.post(
        "/v1/events/cloudevents?model_id=credit",
        content=orjson.dumps({"predictions": [0.1, 0.9]}),
        headers=headers("response"),
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    assert "event.features.region: NUL character" in r.json()["rejected"][0]["reason"]
