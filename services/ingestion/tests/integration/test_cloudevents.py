"""A KServe inference-logger pair (request and response CloudEvents with one id) becomes
one prediction event per instance, whichever half arrives first."""

from __future__ import annotations

import uuid

import orjson

from driftline_core.events import PredictionEvent, decode


def headers(ce_id: str, kind: str, key: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "http://localhost:9081/",
        "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-inferenceservicename": "credit",
        "ce-namespace": "default",
        "ce-endpoint": "v7",
        "ce-time": "2026-11-23T06:00:00Z",
        "content-type": "application/json",
        "Authorization": f"Bearer {key}",
    }


async def test_a_v1_request_and_response_pair_becomes_one_event_per_instance(
    client, tenant, topic_reader
):
    predictions = await topic_reader("driftline.predictions.v1")
    ce_id, key = str(uuid.uuid4()), tenant.keys["ingest"]
    request = {"instances": [[41, 52000.0, "north"], [23, 18000.0, "south"]]}
    r = await client.post(
        "/v1/events/cloudevents",
        content=orjson.dumps(request),
        headers=headers(ce_id, "request", key),
    )
    assert (r.status_code, r.json()["status"]) == (202, "waiting for the matching response")
    r = await client.post(
        "/v1/events/cloudevents",
        content=orjson.dumps({"predictions": [1, 0]}),
        headers=headers(ce_id, "response", key),
    )
    assert r.status_code == 202, r.text
    assert (r.json()["status"], r.json()["accepted"]) == ("joined", 2)
    ids = r.json()["event_ids"]

    recs = await predictions.read(
        until=lambda rs: sum(any(i.encode() in x.value for i in ids) for x in rs) >= 2
    )
    events = sorted(
        (decode(PredictionEvent, x.value) for x in recs if any(i.encode() in x.value for i in ids)),
        key=lambda e: e.prediction,
    )
    assert [(e.features, e.prediction, e.model_version) for e in events] == [
        ({"age": 23, "income": 18000.0, "region": "south"}, 0, "v7"),
        ({"age": 41, "income": 52000.0, "region": "north"}, 1, "v7"),
    ]
    assert events[0].occurred_at.isoformat() == "2026-11-23T06:00:00+00:00"

    # the logger retrying the same pair changes nothing: event ids derive from the ce-id
    await client.post(
        "/v1/events/cloudevents",
        content=orjson.dumps(request),
        headers=headers(ce_id, "request", key),
    )
    r = await client.post(
        "/v1/events/cloudevents",
        content=orjson.dumps({"predictions": [1, 0]}),
        headers=headers(ce_id, "response", key),
    )
    assert r.status_code == 409


async def test_a_v2_pair_response_first_with_named_tensors_and_probabilities(client, tenant):
    ce_id, key = str(uuid.uuid4()), tenant.keys["ingest"]
    response = {
        "outputs": [
            {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]},
            {
                "name": "predict_proba",
                "shape": [2, 2],
                "datatype": "FP32",
                "data": [0.2, 0.8, 0.9, 0.1],
            },
        ]
    }
    request = {
        "inputs": [
            {"name": "age", "shape": [2], "datatype": "FP32", "data": [30, 60]},
            {"name": "income", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]},
            {"name": "region", "shape": [2], "datatype": "BYTES", "data": ["north", "south"]},
        ]
    }
    r = await client.post(
        "/v1/events/cloudevents?model_version=9",
        content=orjson.dumps(response),
        headers=headers(ce_id, "response", key),
    )
    assert r.status_code == 202
    r = await client.post(
        "/v1/events/cloudevents?model_version=9",
        content=orjson.dumps(request),
        headers=headers(ce_id, "request", key),
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 2), r.text


async def test_cloudevents_with_bad_attributes_are_refused(client, tenant):
    key = tenant.keys["ingest"]
    h = headers(str(uuid.uuid4()), "request", key)
    h["ce-type"] = "com.example.other"
    r = await client.post("/v1/events/cloudevents", content=b"{}", headers=h)
    assert r.status_code == 422
    h = headers(str(uuid.uuid4()), "request", key)
    del h["ce-id"]
    assert (
        await client.post("/v1/events/cloudevents", content=b"{}", headers=h)
    ).status_code == 400
    h = headers(str(uuid.uuid4()), "request", key)
    h["ce-inferenceservicename"] = "unregistered"
    assert (
        await client.post("/v1/events/cloudevents", content=b'{"instances": []}', headers=h)
    ).status_code == 404
