"""Every kind of bad input gets a clear 4xx or a DLQ record with the reason, and nothing
valid in the same batch is lost: accepted events are in Kafka, keyed tenant:model."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from driftline_core.crypto import FieldCipher
from driftline_core.crypto.setup import build_keyring
from driftline_core.events import DeadLetter, PredictionEvent, decode
from driftline_core.kafka.batching import INGESTION_ORIGIN, ORIGIN_HEADER


def ids_in(records, tenant_id: str) -> list[str]:
    return [
        orjson.loads(r.value)["event_id"]
        for r in records
        if r.key and r.key.decode().startswith(f"{tenant_id}:")
    ]


async def test_a_mixed_batch_keeps_the_valid_events_and_names_each_rejected_one(
    tenant, topic_reader
):
    predictions = await topic_reader("driftline.predictions.v1")
    dlq = await topic_reader("driftline.dlq.v1")
    good = [tenant.event(event_id=str(uuid.uuid4())) for _ in range(3)]
    batch = [
        good[0],
        tenant.event(features={"age": "forty", "income": 1.0, "region": "north"}),  # type
        tenant.event(model_id="no-such-model"),
        good[1],
        tenant.event(features={"age": 40, "income": 1.0, "region": "north", "zip": "x"}),
        tenant.event(features={"age": 40, "region": "north"}),  # missing income
        tenant.event(features={"age": 40, "income": -5.0, "region": "north"}),  # range: reject
        tenant.event(features={"age": 40, "income": 1.0, "region": "mars"}),  # category
        "not an object",
        tenant.event(prediction=None),
        good[2],
    ]
    r = await tenant.ingest.post("/v1/events/predictions", json=batch)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 3
    assert body["event_ids"] == [g["event_id"] for g in good]
    reasons = {x["index"]: x["reason"] for x in body["rejected"]}
    assert reasons.keys() == {1, 2, 4, 5, 6, 7, 8, 9}
    assert "feature 'age': expected a number, got str" in reasons[1]
    assert reasons[2] == "unknown model 'no-such-model'"
    assert reasons[4] == "unknown feature(s): zip"
    assert reasons[5] == "missing feature(s): income"
    assert "outside" in reasons[6]
    assert "'mars' is not one of the allowed categories" in reasons[7]
    assert reasons[8] == "an event must be a JSON object"
    assert "prediction" in reasons[9]

    stored = await predictions.read(until=lambda rs: len(ids_in(rs, tenant.id)) >= 3)
    assert sorted(ids_in(stored, tenant.id)) == sorted(g["event_id"] for g in good)
    assert all(
        r.key == f"{tenant.id}:credit".encode()
        for r in stored
        if r.key.decode().startswith(tenant.id)
    )
    for r in stored:
        if r.key.decode().startswith(tenant.id):
            ev = decode(PredictionEvent, r.value)  # what consumers will parse
            assert ev.tenant_id == tenant.id
            # marked as ingestion's, so drift detection leaves their live series to ingestion
            assert (ORIGIN_HEADER, INGESTION_ORIGIN) in list(r.headers)

    def mine(rs):
        return [
            decode(DeadLetter, r.value)
            for r in rs
            if decode(DeadLetter, r.value).tenant_id == tenant.id
        ]

    letters = mine(await dlq.read(until=lambda rs: len(mine(rs)) >= 8))
    assert sorted(d.reason for d in letters) == sorted(reasons.values())
    assert all(
        d.source == "ingestion" and d.source_topic == "driftline.predictions.v1" for d in letters
    )


async def test_a_batch_with_nothing_valid_is_refused_with_422(tenant):
    r = await tenant.ingest.post("/v1/events/predictions", json=[tenant.event(model_id="nope")])
    assert r.status_code == 422
    assert r.json()["rejected"] == [{"index": 0, "reason": "unknown model 'nope'"}]


async def test_malformed_json_is_a_400_with_the_position(tenant):
    r = await tenant.ingest.post(
        "/v1/events/predictions",
        content=b'[{"model_id": "cre',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["detail"]
    assert "line 1 column" in r.json()["detail"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_nan_and_infinity_are_refused_with_a_clear_reason(tenant, literal):
    ok = orjson.dumps(tenant.event())
    bad = ok.replace(b'"age":40', b'"age":' + literal)
    r = await tenant.ingest.post(
        "/v1/events/predictions",
        content=ok + b"\n" + bad + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    [rej] = r.json()["rejected"]
    assert rej["index"] == 1
    assert rej["reason"].startswith("line 2: malformed JSON")
    if literal != b"1e999":
        assert "NaN and Infinity are not JSON numbers" in rej["reason"]
    else:
        assert "infinity" in rej["reason"]


async def test_an_oversize_body_is_a_413(client, tenant, ingestion_settings):
    limit = ingestion_settings().ingestion.max_body_bytes
    r = await tenant.ingest.post(
        "/v1/events/predictions",
        content=b" " * (limit + 1),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert "exceeds the limit" in r.json()["detail"]


async def test_unsupported_content_type_is_a_415(tenant):
    r = await tenant.ingest.post(
        "/v1/events/predictions", content=b"a,b\n1,2", headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 415


async def test_missing_wrong_and_revoked_keys_are_401_and_a_missing_scope_is_403(
    client, tenant, wait_until
):
    url, body = "/v1/events/predictions", [tenant.event()]
    assert (await client.post(url, json=body)).status_code == 401
    r = await client.post(url, json=body, headers={"Authorization": "Bearer dlk_abc_def"})
    assert r.status_code == 401
    r = await tenant.admin.post("/v1/auth/keys", json={"name": "dash", "scopes": ["read"]})
    reader = r.json()["api_key"]
    r = await client.post(url, json=body, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403
    assert "ingest" in r.json()["detail"]

    keys = (await tenant.admin.get("/v1/auth/keys")).json()
    producer = next(k for k in keys if k["name"] == "producer")
    assert (await tenant.admin.delete(f"/v1/auth/keys/{producer['id']}")).status_code == 204

    async def refused() -> bool:
        return (await tenant.ingest.post(url, json=[tenant.event()])).status_code == 401

    await wait_until(refused, timeout=5)  # within the key cache's TTL (1 s)


async def test_another_tenants_model_is_unknown_without_leaking_that_it_exists(
    client, tenant, new_tenant
):
    other = await new_tenant(client, model=False)
    r = await other.ingest.post("/v1/events/predictions", json=[tenant.event()])
    assert r.status_code == 422
    assert r.json()["rejected"][0]["reason"] == "unknown model 'credit'"
    r = await other.admin.get("/v1/models/credit")
    assert r.status_code == 404
    assert (await other.admin.get("/v1/models")).json() == []


async def test_replayed_event_ids_are_refused_and_a_batch_cannot_repeat_one(tenant):
    first = [tenant.event(event_id=str(uuid.uuid4())) for _ in range(2)]
    assert (await tenant.ingest.post("/v1/events/predictions", json=first)).json()["accepted"] == 2
    r = await tenant.ingest.post("/v1/events/predictions", json=first)
    assert r.status_code == 409
    assert {x["reason"] for x in r.json()["rejected"]} == {"duplicate event_id: already accepted"}
    twice = tenant.event(event_id=str(uuid.uuid4()))
    r = await tenant.ingest.post("/v1/events/predictions", json=[twice, twice])
    assert (r.status_code, r.json()["accepted"]) == (202, 1)
    assert r.json()["rejected"][0]["index"] == 1


async def test_rate_limit_answers_429_with_retry_after(serve, ingestion_settings, new_tenant):
    async with serve(ingestion_settings(rate_per_s=5, burst=10)) as c:
        t = await new_tenant(c)
        r = await t.ingest.post("/v1/events/predictions", json=[t.event()] * 11)
        assert r.status_code == 413  # more than the burst can ever allow
        assert (
            await t.ingest.post("/v1/events/predictions", json=[t.event() for _ in range(8)])
        ).status_code == 202
        r = await t.ingest.post("/v1/events/predictions", json=[t.event() for _ in range(8)])
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        await asyncio.sleep(float(r.headers["Retry-After"]))
        r = await t.ingest.post("/v1/events/predictions", json=[t.event() for _ in range(8)])
        assert r.status_code == 202


async def test_sensitive_features_are_encrypted_before_kafka_and_bound_to_the_event(
    stack, tenant, topic_reader, ingestion_settings
):
    predictions = await topic_reader("driftline.predictions.v1")
    ev = tenant.event(
        event_id=str(uuid.uuid4()),
        features={"age": 40, "income": 1.0, "region": "north", "ssn": "123-45-6789"},
    )
    assert (await tenant.ingest.post("/v1/events/predictions", json=[ev])).status_code == 202
    [rec] = [
        r
        for r in await predictions.read(
            until=lambda rs: any(ev["event_id"].encode() in r.value for r in rs)
        )
        if ev["event_id"].encode() in r.value
    ]
    assert b"123-45-6789" not in rec.value
    stored = decode(PredictionEvent, rec.value)
    assert "ssn" not in stored.features
    ring = build_keyring(stack.postgres, ingestion_settings().kek, "test")
    await ring.database.start()
    try:
        cipher: FieldCipher = ring.cipher
        token = stored.encrypted_features["ssn"]
        assert (
            orjson.loads(await cipher.decrypt(tenant.id, "feature:ssn", ev["event_id"], token))
            == "123-45-6789"
        )
        from driftline_core.crypto.cipher import DecryptionError

        with pytest.raises(DecryptionError):  # bound to this event: cannot be moved
            await cipher.decrypt(tenant.id, "feature:ssn", str(uuid.uuid4()), token)
    finally:
        await ring.database.stop()


async def test_actuals_are_accepted_for_known_models_only(tenant, topic_reader):
    actuals = await topic_reader("driftline.actuals.v1")
    pid = str(uuid.uuid4())
    r = await tenant.ingest.post(
        "/v1/events/actuals",
        json=[
            {"model_id": "credit", "prediction_event_id": pid, "actual": 1},
            {"model_id": "ghost", "prediction_event_id": pid, "actual": 1},
            {"model_id": "credit", "actual": 1},
        ],
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 1)
    assert [x["index"] for x in r.json()["rejected"]] == [1, 2]
    assert "prediction_event_id" in r.json()["rejected"][1]["reason"]
    recs = await actuals.read(until=lambda rs: any(pid.encode() in r.value for r in rs))
    assert any(orjson.loads(r.value)["prediction_event_id"] == pid for r in recs)
