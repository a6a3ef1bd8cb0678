"""Inference-logger CloudEvents as KServe's agent and Seldon Core 1 and 2 send them (binary
and structured mode; V1, Open Inference Protocol and SeldonMessage payloads): a request and
response pair becomes one prediction event per instance, whichever half arrives first;
a half whose mate never comes is dead-lettered once, whichever replica sweeps it."""

from __future__ import annotations

import asyncio
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


# --- real-shaped CloudEvents of each logger (issue 20) ------------------------------------


async def ours(predictions, ids: list[str]) -> list[PredictionEvent]:
    recs = await predictions.read(
        until=lambda rs: sum(any(i.encode() in x.value for i in ids) for x in rs) >= len(ids)
    )
    events = [
        decode(PredictionEvent, x.value) for x in recs if any(i.encode() in x.value for i in ids)
    ]
    assert len(events) == len(ids)
    return sorted(events, key=lambda e: ids.index(str(e.event_id)))


async def register_numeric(tenant) -> None:
    r = await tenant.admin.post(
        "/v1/models",
        json={
            "id": "num",
            "name": "Two numbers",
            "task": "regression",
            "feature_schema": {
                "features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"}]
            },
        },
    )
    assert r.status_code == 201, r.text


def seldon1(ce_id: str, puid: str, kind: str, key: str, node: str = "credit") -> dict[str, str]:
    """What Seldon Core 1's executor sends (executor/logger/worker.go): each half its own
    ce-id, the pair in ce-requestid, the graph node in ce-modelid."""
    return {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "http://0.0.0.0:8000/",
        "ce-type": f"io.seldon.serving.inference.{kind}",
        "ce-requestid": puid,
        "ce-modelid": node,
        "ce-inferenceservicename": "seldon-model",
        "ce-namespace": "default",
        "ce-endpoint": "example",
        "ce-protocol": "seldon",
        "ce-time": "2026-11-23T07:00:00Z",
        "content-type": "application/json",
        "Authorization": f"Bearer {key}",
    }


async def post(client, body: dict, headers: dict[str, str], path: str = "/v1/events/cloudevents"):
    return await client.post(path, content=orjson.dumps(body), headers=headers)


async def test_seldon_core_1_seldonmessages_pair_by_request_id_and_name_the_graph_node(
    client, tenant, topic_reader
):
    predictions = await topic_reader("driftline.predictions.v1")
    puid, key = str(uuid.uuid4()), tenant.keys["ingest"]
    request = {
        "data": {
            "names": ["age", "income", "region"],
            "ndarray": [[41, 52000.0, "north"], [23, 18000.0, "south"], [67, 1000.0, "north"]],
        },
        "meta": {},
    }
    # sklearn's predict_proba through the Seldon wrapper: names t:0, t:1
    response = {
        "data": {"names": ["t:0", "t:1"], "ndarray": [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]},
        "meta": {"requestPath": {"classifier": "seldonio/sklearn:1.0"}},
    }
    r = await post(client, response, seldon1(str(uuid.uuid4()), puid, "response", key))
    assert (r.status_code, r.json()["pair_id"]) == (202, puid), r.text
    r = await post(client, request, seldon1(str(uuid.uuid4()), puid, "request", key))
    assert (r.status_code, r.json()["accepted"]) == (202, 3), r.text
    events = await ours(predictions, r.json()["event_ids"])
    assert [(e.model_id, e.model_version) for e in events] == [("credit", "example")] * 3
    assert [e.features for e in events] == [
        {"age": 41, "income": 52000.0, "region": "north"},
        {"age": 23, "income": 18000.0, "region": "south"},
        {"age": 67, "income": 1000.0, "region": "north"},
    ]
    assert [str(e.prediction) for e in events] == ["1", "0", "1"]  # the argmax of each row
    assert [e.probabilities for e in events] == [
        {"0": 0.2, "1": 0.8},
        {"0": 0.9, "1": 0.1},
        {"0": 0.4, "1": 0.6},
    ]
    assert events[0].occurred_at.isoformat() == "2026-11-23T07:00:00+00:00"


async def test_seldon_core_1_tensor_json_and_str_data(client, tenant, topic_reader):
    predictions = await topic_reader("driftline.predictions.v1")
    await register_numeric(tenant)
    key = tenant.keys["ingest"]
    # tensor {shape, values} of two instances, the response a 1-d ndarray of two values
    puid = str(uuid.uuid4())
    req = {"data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}
    resp = {"data": {"names": ["y"], "ndarray": [2.5, 6.5]}}
    await post(client, req, seldon1(str(uuid.uuid4()), puid, "request", key, node="num"))
    r = await post(client, resp, seldon1(str(uuid.uuid4()), puid, "response", key, node="num"))
    assert (r.status_code, r.json()["accepted"]) == (202, 2), r.text
    events = await ours(predictions, r.json()["event_ids"])
    assert [(e.features, e.prediction) for e in events] == [
        ({"a": 1, "b": 2}, 2.5),
        ({"a": 3, "b": 4}, 6.5),
    ]
    # jsonData in, jsonData out (one instance)
    puid = str(uuid.uuid4())
    await post(
        client,
        {"jsonData": {"a": 0.5, "b": -1.0}},
        seldon1(str(uuid.uuid4()), puid, "request", key, node="num"),
    )
    r = await post(
        client,
        {"jsonData": {"predictions": [7.25]}},
        seldon1(str(uuid.uuid4()), puid, "response", key, node="num"),
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
    (event,) = await ours(predictions, r.json()["event_ids"])
    assert (event.features, event.prediction) == ({"a": 0.5, "b": -1.0}, 7.25)
    # a flat ndarray with one name per value is one instance
    puid = str(uuid.uuid4())
    await post(
        client,
        {"data": {"names": ["a", "b"], "ndarray": [0.77, 0.63]}},
        seldon1(str(uuid.uuid4()), puid, "request", key, node="num"),
    )
    r = await post(
        client,
        {"data": {"ndarray": [[1.4]]}},
        seldon1(str(uuid.uuid4()), puid, "response", key, node="num"),
    )
    (event,) = await ours(predictions, r.json()["event_ids"])
    assert (event.features, event.prediction) == ({"a": 0.77, "b": 0.63}, 1.4)


async def test_seldon_core_2_oip_in_structured_mode_names_the_model_not_the_server(
    client, tenant, topic_reader
):
    """MLServer under Seldon Core 2: ce-modelid `credit_3` (model credit, version 3), the
    server `mlserver` in ce-inferenceservicename; the OIP response's model_version wins."""
    predictions = await topic_reader("driftline.predictions.v1")
    rid, key = str(uuid.uuid4()), tenant.keys["ingest"]

    def envelope(kind: str, data: dict) -> bytes:
        return orjson.dumps(
            {
                "specversion": "1.0",
                "id": rid,
                "type": f"io.seldon.serving.inference.{kind}",
                "source": "io.seldon.serving.deployment.mlserver.default",
                "requestid": rid,
                "modelid": "credit_3",
                "inferenceservicename": "mlserver",
                "endpoint": "credit_3",
                "datacontenttype": "application/json",
                "data": data,
            }
        )

    request = {
        "id": rid,
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [[30], [60]]},
            {"name": "income", "shape": [2, 1], "datatype": "FP64", "data": [[1.5], [2.5]]},
            {
                "name": "region",
                "shape": [2, 1],
                "datatype": "BYTES",
                "data": [["north"], ["south"]],
            },
        ],
    }
    response = {
        "model_name": "credit_3",
        "model_version": "3",
        "id": rid,
        "parameters": {},
        "outputs": [{"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [1, 0]}],
    }
    h = {"content-type": "application/cloudevents+json", "Authorization": f"Bearer {key}"}
    r = await client.post("/v1/events/cloudevents", content=envelope("request", request), headers=h)
    assert r.status_code == 202, r.text
    r = await client.post(
        "/v1/events/cloudevents", content=envelope("response", response), headers=h
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 2), r.text
    events = await ours(predictions, r.json()["event_ids"])
    assert [(e.model_id, e.model_version, e.prediction) for e in events] == [
        ("credit", "3", 1),
        ("credit", "3", 0),
    ]
    assert events[1].features == {"age": 60, "income": 2.5, "region": "south"}


async def test_kserve_v2_batch_tensor_binary_mode_gives_one_event_per_row(
    client, tenant, topic_reader
):
    """KServe's agent (pkg/logger/worker.go): binary mode, one ce-id for both halves, the
    InferenceService in ce-inferenceservicename; an [N, F] FP32 tensor of N rows."""
    predictions = await topic_reader("driftline.predictions.v1")
    await register_numeric(tenant)
    ce_id, key = str(uuid.uuid4()), tenant.keys["ingest"]
    h = headers(ce_id, "request", key) | {"ce-inferenceservicename": "num"}
    request = {
        "inputs": [
            {"name": "input-0", "shape": [3, 2], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}
        ]
    }
    response = {
        "model_name": "num",
        "outputs": [
            {"name": "output-0", "shape": [3], "datatype": "FP32", "data": [0.1, 0.2, 0.3]}
        ],
    }
    assert (await post(client, request, h)).status_code == 202
    h = headers(ce_id, "response", key) | {"ce-inferenceservicename": "num"}
    r = await post(client, response, h)
    assert (r.status_code, r.json()["accepted"]) == (202, 3), r.text
    events = await ours(predictions, r.json()["event_ids"])
    assert [(e.features, e.prediction, e.model_version) for e in events] == [
        ({"a": 1, "b": 2}, 0.1, "v7"),  # ce-endpoint
        ({"a": 3, "b": 4}, 0.2, "v7"),
        ({"a": 5, "b": 6}, 0.3, "v7"),
    ]


async def test_payloads_that_do_not_add_up_are_refused_with_the_reason(client, tenant):
    key = tenant.keys["ingest"]
    cases = [
        ({"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}, "holds 4 values"),
        ({"data": {"names": ["a"]}}, "needs ndarray or tensor"),
        ({"something": 1}, "has none of instances"),
    ]
    for body, why in cases:
        ce_id = str(uuid.uuid4())
        await post(client, {"predictions": [1]}, headers(ce_id, "response", key))
        r = await post(client, body, headers(ce_id, "request", key))
        assert r.status_code == 422, r.text
        assert why in r.text, r.text
    r = await post(
        client,
        {"instances": [[1]]},
        {
            **headers(str(uuid.uuid4()), "request", key),
            "ce-inferenceservicename": "nope",
            "ce-modelid": "nope_2",
        },
    )
    assert r.status_code == 404
    assert "'nope', 'nope_2'" in r.text or "'nope_2', 'nope'" in r.text


# --- halves whose mate never arrives -----------------------------------------------------


async def test_every_half_that_expires_unmatched_is_dead_lettered_once_by_two_replicas(
    client, tenant, topic_reader, serve, ingestion_settings
):
    """Two ingestion processes (in-process apps) on a Redis database of their own, a join
    TTL of 5 s: KServe requests and a Seldon response whose mates never come are each in
    driftline.dlq.v1 exactly once (unmatched_cloudevent, the reason naming the pair), and
    counted once in driftline_cloudevents_unmatched_total over both processes; a pair that
    completes in time is not."""
    from urllib.parse import urlsplit, urlunsplit

    import redis.asyncio as aioredis

    from driftline_core.events import DeadLetter

    s = ingestion_settings(cloudevent_join_ttl_s=5)
    url = urlunsplit(urlsplit(s.redis.url)._replace(path="/11"))  # swept by these two only
    s = s.model_copy(update={"redis": s.redis.model_copy(update={"url": url})})
    db = aioredis.Redis.from_url(url)
    dlq = await topic_reader("driftline.dlq.v1")
    key = tenant.keys["ingest"]

    def mine(rs):
        out = []
        for r in rs:
            d = decode(DeadLetter, r.value)
            if d.tenant_id == tenant.id and d.error_type == "unmatched_cloudevent":
                out.append(d)
        return out

    async def unmatched(c) -> float:
        text = (await c.get("/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("driftline_cloudevents_unmatched_total{")
        )

    async def swept() -> bool:  # nothing of any earlier run left to sweep
        return await db.zcard("dl:ce:pending") == 0 and await db.zcard("dl:ce:claimed") == 0

    try:
        async with serve(s) as a, serve(s) as b:
            for _ in range(100):
                if await swept():
                    break
                await asyncio.sleep(0.2)
            assert await swept()
            before = await unmatched(a) + await unmatched(b)
            lonely = [str(uuid.uuid4()) for _ in range(3)]
            for i, ce_id in enumerate(lonely):  # alternate replicas
                r = await post(
                    a if i % 2 else b,
                    {"instances": [[30, 1.0, "north"]]},
                    headers(ce_id, "request", key),
                )
                assert r.status_code == 202, r.text
            puid = str(uuid.uuid4())
            r = await post(
                a,
                {"data": {"ndarray": [[0.3, 0.7]]}},
                seldon1(str(uuid.uuid4()), puid, "response", key),
            )
            assert r.status_code == 202, r.text
            done = str(uuid.uuid4())  # completes within the TTL: joined, never dead-lettered
            await post(a, {"instances": [[30, 1.0, "north"]]}, headers(done, "request", key))
            r = await post(b, {"predictions": [1]}, headers(done, "response", key))
            assert r.json()["status"] == "joined", r.text

            letters = mine(await dlq.read(until=lambda rs: len(mine(rs)) >= 4, timeout=40))
            for _ in range(100):  # both processes settled (the claims deleted)
                if await swept():
                    break
                await asyncio.sleep(0.2)
            assert await swept()
            letters = mine(await dlq.read(timeout=5))  # from the mark: nothing twice
            assert len(letters) == 4, [d.reason for d in letters]
            pairs = sorted(orjson.loads(d.payload)["pair"] for d in letters)
            assert pairs == sorted([*lonely, puid])
            for d in letters:
                half = orjson.loads(d.payload)
                assert f"{half['pair']!r} of model 'credit' got no matching" in d.reason
                assert "within 5 s" in d.reason
                assert d.source == "ingestion"
            kinds = sorted(orjson.loads(d.payload)["kind"] for d in letters)
            assert kinds == ["request", "request", "request", "response"]
            assert await unmatched(a) + await unmatched(b) - before == 4
    finally:
        await db.aclose()


async def test_structured_mode_with_data_base64_and_seldon_core_2_in_binary_mode(
    client, tenant, topic_reader
):
    """A KServe pair in structured mode whose data is `data_base64` (as a CloudEvents SDK
    writes non-JSON content), and a Seldon Core 2 pair in binary mode whose response names
    no version: ce-modelid `num_2` is model num, version 2."""
    import base64

    predictions = await topic_reader("driftline.predictions.v1")
    await register_numeric(tenant)
    key = tenant.keys["ingest"]
    ce_id = str(uuid.uuid4())
    h = {"content-type": "application/cloudevents+json", "Authorization": f"Bearer {key}"}
    for kind, data in (
        ("request", {"instances": [[1.5, 2.5]]}),
        ("response", {"predictions": [4.0]}),
    ):
        envelope = {
            "specversion": "1.0",
            "id": ce_id,
            "type": f"org.kubeflow.serving.inference.{kind}",
            "source": "http://localhost:9081/",
            "inferenceservicename": "num",
            "endpoint": "canary",
            "datacontenttype": "application/json",
            "data_base64": base64.b64encode(orjson.dumps(data)).decode(),
        }
        r = await client.post("/v1/events/cloudevents", content=orjson.dumps(envelope), headers=h)
        assert r.status_code == 202, r.text
    (event,) = await ours(predictions, r.json()["event_ids"])
    assert (event.features, event.prediction, event.model_version) == (
        {"a": 1.5, "b": 2.5},
        4.0,
        "canary",
    )

    rid = str(uuid.uuid4())

    def core2(kind: str) -> dict[str, str]:
        return {
            "ce-specversion": "0.3",
            "ce-id": rid,
            "ce-requestid": rid,
            "ce-type": f"io.seldon.serving.inference.{kind}",
            "ce-source": "io.seldon.serving.deployment.mlserver.default",
            "ce-modelid": "num_2",
            "ce-inferenceservicename": "mlserver",
            "ce-endpoint": "num_2",
            "content-type": "application/json",
            "Authorization": f"Bearer {key}",
        }

    request = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [[3, 4]]}]}
    response = {
        "model_name": "num_2",
        "outputs": [{"name": "predict", "shape": [1, 1], "data": [[9.5]]}],
    }
    assert (await post(client, request, core2("request"))).status_code == 202
    r = await post(client, response, core2("response"))
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
    (event,) = await ours(predictions, r.json()["event_ids"])
    assert (event.model_id, event.model_version, event.features, event.prediction) == (
        "num",
        "2",
        {"a": 3, "b": 4},
        9.5,
    )
