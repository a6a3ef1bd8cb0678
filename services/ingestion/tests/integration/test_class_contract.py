"""A classifier's class contract over HTTP: declared at registration (or learnt once from
the reference's label column), enforced on every prediction, its probabilities and every
label (rejected with a reason and dead-lettered, or mapped when the model declares a
mapping), and announced on driftline.registry.v1. Monitoring configs the detector cannot
run are refused at registration with 422 naming the field."""

from __future__ import annotations

import uuid

import orjson
import pytest

from driftline_core.events import DeadLetter, PredictionEvent, RegistryChange, decode

from .conftest import SCHEMA

CONTRACT = {"classes": [0, 1], "positive_class": 1, "mapping": {"default": 1, "repaid": 0}}


def model(model_id: str, **kw: object) -> dict[str, object]:
    return {
        "id": model_id,
        "name": model_id,
        "task": "classification",
        "feature_schema": SCHEMA,
        **kw,
    }


def event(model_id: str, **kw: object) -> dict[str, object]:
    return {
        "model_id": model_id,
        "model_version": "1",
        "features": {"age": 40, "income": 5e4, "region": "north"},
        "prediction": 1,
        **kw,
    }


async def test_the_demos_probabilities_are_mapped_onto_the_declared_classes(tenant, topic_reader):
    preds = await topic_reader("driftline.predictions.v1")
    registry = await topic_reader("driftline.registry.v1")
    r = await tenant.admin.post("/v1/models", json=model("mapped", classes=CONTRACT))
    assert r.status_code == 201, r.text
    assert r.json()["classes"]["classes"] == ["0", "1"]
    sent = event("mapped", probabilities={"default": 0.81, "repaid": 0.19})
    r = await tenant.ingest.post("/v1/events/predictions", json=[sent])
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
    event_id = r.json()["event_ids"][0]

    def ours(rs):
        return [
            e for e in (decode(PredictionEvent, x.value) for x in rs) if str(e.event_id) == event_id
        ]

    got = ours(await preds.read(until=lambda rs: bool(ours(rs)), timeout=20))[0]
    assert got.prediction == 1  # already a class: as sent
    assert got.probabilities == {"1": 0.81, "0": 0.19}

    def announced(rs):
        return [
            c
            for c in (decode(RegistryChange, x.value) for x in rs)
            if c.tenant_id == tenant.id and c.model_id == "mapped"
        ]

    change = announced(await registry.read(until=lambda rs: bool(announced(rs)), timeout=20))[0]
    assert change.details["classes"]["positive_class"] == "1"
    assert change.details["classes"]["mapping"] == {"default": "1", "repaid": "0"}


async def test_outputs_and_labels_outside_the_contract_are_rejected_with_reasons(
    tenant, topic_reader
):
    dlq = await topic_reader("driftline.dlq.v1")
    contract = {"classes": ["approve", "deny"], "positive_class": "deny"}
    r = await tenant.admin.post("/v1/models", json=model("strict", classes=contract))
    assert r.status_code == 201, r.text
    good = event("strict", prediction="deny", probabilities={"deny": 0.7, "approve": 0.3})
    batch = [
        good,
        event("strict", prediction=1),
        event("strict", prediction="deny", probabilities={"yes": 0.7, "no": 0.3}),
        event("strict", prediction="deny", probabilities={"deny": 0.7, "approve": 0.4}),
    ]
    r = await tenant.ingest.post("/v1/events/predictions", json=batch)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 1
    reasons = {x["index"]: x["reason"] for x in body["rejected"]}
    assert "prediction 1 is not one of the classes" in reasons[1]
    assert "'yes' is not one of the classes" in reasons[2]
    assert "sum to 1.1" in reasons[3]

    r = await tenant.ingest.post(
        "/v1/events/actuals",
        json=[
            {"model_id": "strict", "prediction_event_id": body["event_ids"][0], "actual": "deny"},
            {"model_id": "strict", "prediction_event_id": str(uuid.uuid4()), "actual": "maybe"},
        ],
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
    assert "actual 'maybe' is not one of the classes" in r.json()["rejected"][0]["reason"]

    def letters(rs):
        return [
            d
            for d in (decode(DeadLetter, x.value) for x in rs)
            if d.tenant_id == tenant.id and "not one of the classes" in d.reason
        ]

    got = letters(await dlq.read(until=lambda rs: len(letters(rs)) >= 3, timeout=20))
    assert len(got) == 3


async def test_probabilities_must_sum_to_one_even_without_a_contract(tenant):
    r = await tenant.ingest.post(
        "/v1/events/predictions",
        json=[event("credit", probabilities={"a": 0.5, "b": 0.6}), event("credit")],
    )
    assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
    assert "sum to 1.1" in r.json()["rejected"][0]["reason"]


@pytest.mark.parametrize(
    ("monitoring", "field"),
    [
        ({"features": {"region": {"test": "ks"}}}, "monitoring.features.region.test"),
        ({"features": {"age": {"test": "chi_squared"}}}, "monitoring.features.age.test"),
        ({"features": {"nope": {"test": "psi"}}}, "monitoring.features.nope"),
        ({"prediction": {"test": "wasserstein"}}, "monitoring.prediction.test"),
        ({"window": {"kind": "count", "size": 1000}}, "count windows are not supported"),
        ({"window": {"seconds": 1}}, "greater than or equal to 10"),
    ],
)
async def test_monitoring_configs_the_detector_cannot_run_are_refused(tenant, monitoring, field):
    r = await tenant.admin.post("/v1/models", json=model("m1", monitoring=monitoring))
    assert r.status_code == 422, r.text
    assert field in r.text
    if "window" not in monitoring:  # the same check on an existing model's config
        r = await tenant.admin.put("/v1/models/credit/monitoring", json=monitoring)
        assert r.status_code == 422, r.text
        assert field in r.json()["detail"]


async def test_a_binary_contract_must_name_its_positive_class(tenant):
    r = await tenant.admin.post(
        "/v1/models", json=model("nopos", classes={"classes": ["default", "repaid"]})
    )
    assert r.status_code == 422
    assert "positive_class" in r.text
    r = await tenant.admin.post(
        "/v1/models",
        json=model(
            "frommon",
            classes={"classes": ["default", "repaid"]},
            monitoring={"positive_class": "default"},
        ),
    )
    assert r.status_code == 201, r.text
    assert r.json()["classes"]["positive_class"] == "default"


def labelled_csv(labels: list[str]) -> bytes:
    rows = ["age,income,region,label"] + [
        f"{30 + k % 40},{40000 + k},{'north' if k % 2 else 'south'},{y}"
        for k, y in enumerate(labels)
    ]
    return ("\n".join(rows) + "\n").encode()


async def test_classes_are_learnt_once_from_the_references_label_column(tenant, topic_reader):
    registry = await topic_reader("driftline.registry.v1")
    r = await tenant.admin.post("/v1/models", json=model("learnt"))
    assert r.status_code == 201, r.text
    assert r.json()["classes"] is None
    r = await tenant.admin.post(
        "/v1/models/learnt/reference",
        content=labelled_csv(["0", "1", "1", "0"] * 50),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["classes_learnt"] == {
        "classes": ["0", "1"],
        "positive_class": "1",
        "mapping": {},
        "probability_tolerance": 1e-6,
        "source": "reference",
    }
    assert (await tenant.admin.get("/v1/models/learnt")).json()["classes"]["classes"] == ["0", "1"]
    r = await tenant.ingest.post("/v1/events/predictions", json=[event("learnt", prediction=2)])
    assert r.json()["accepted"] == 0
    assert "not one of the classes" in r.json()["rejected"][0]["reason"]

    # a second reference with other labels does not change what was learnt
    r = await tenant.admin.post(
        "/v1/models/learnt/reference",
        content=labelled_csv(["0", "1", "2"] * 50),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    assert "classes_learnt" not in r.json()
    assert (await tenant.admin.get("/v1/models/learnt")).json()["classes"]["classes"] == ["0", "1"]

    def changes(rs):
        return [
            c
            for c in (decode(RegistryChange, x.value) for x in rs)
            if c.tenant_id == tenant.id
            and c.model_id == "learnt"
            and c.change == "reference_profile_updated"
        ]

    got = changes(await registry.read(until=lambda rs: len(changes(rs)) >= 2, timeout=20))
    assert [("classes" in c.details) for c in got] == [True, False]


async def test_learnt_binary_labels_other_than_0_1_need_the_positive_class_named(tenant):
    r = await tenant.admin.post("/v1/models", json=model("named"))
    assert r.status_code == 201, r.text
    labels = labelled_csv(["default", "repaid"] * 50)
    r = await tenant.admin.post(
        "/v1/models/named/reference", content=labels, headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 422, r.text
    assert "positive_class" in r.json()["detail"]
    r = await tenant.admin.post(
        "/v1/models/named/reference?positive_class=default",
        content=labels,
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["classes_learnt"]["positive_class"] == "default"


async def test_classes_can_be_declared_later(tenant):
    r = await tenant.admin.put("/v1/models/credit/classes", json=CONTRACT)
    assert r.status_code == 200, r.text
    r = await tenant.ingest.post(
        "/v1/events/predictions",
        json=[event("credit", prediction="repaid", probabilities={"repaid": 0.6, "default": 0.4})],
    )
    assert r.json()["accepted"] == 1, r.text
    r = await tenant.admin.put(
        "/v1/models/credit/classes", json={"classes": ["a", "b"], "positive_class": "a"}
    )
    assert r.status_code == 200
    assert orjson.loads(r.content)["classes"]["classes"] == ["a", "b"]
