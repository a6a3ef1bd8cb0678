"""Event contracts: round trips, envelope rules, keys, the catalogue and the exported schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from driftline_core.events import TOPICS, DeadLetter, PredictionEvent, by_name, decode, encode
from driftline_core.events.schemas import render_all

ROOT = Path(__file__).resolve().parents[4]


def prediction(**kw: object) -> PredictionEvent:
    base = {
        "tenant_id": "acme",
        "model_id": "credit-risk",
        "model_version": "3",
        "features": {
            "age": 41,
            "income": 52000.5,
            "region": "north",
            "vip": True,
            "embedding": [0.1, 0.2],
            "missing": None,
        },
        "prediction": "approve",
        "probabilities": {"approve": 0.8, "deny": 0.2},
    }
    return PredictionEvent.model_validate(base | kw)


def test_prediction_round_trips_through_json_unchanged():
    event = prediction(segment={"channel": "web"}, latency_ms=12.5)
    assert decode(PredictionEvent, encode(event)) == event


def test_encoded_times_are_utc_iso8601():
    event = prediction(occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert orjson.loads(encode(event))["occurred_at"] == "2026-01-02T03:04:05Z"


def test_predictions_are_keyed_by_tenant_and_model():
    assert prediction().key() == b"acme:credit-risk"


@pytest.mark.parametrize("tenant", ["ACME", "", "a" * 64, "ac me", "-acme"])
def test_tenant_ids_are_validated(tenant):
    with pytest.raises(ValidationError, match="tenant_id"):
        prediction(tenant_id=tenant)


def test_naive_timestamps_are_refused():
    with pytest.raises(ValidationError, match="occurred_at"):
        prediction(occurred_at=datetime(2026, 1, 1))


def test_missing_required_fields_name_the_field():
    with pytest.raises(ValidationError) as info:
        PredictionEvent.model_validate({"tenant_id": "acme", "model_id": "m"})
    missing = {e["loc"][0] for e in info.value.errors()}
    assert {"model_version", "features", "prediction"} <= missing


def test_dead_letter_keeps_binary_payloads_intact():
    raw = b"\xff\xfe\x00binary"
    payload, encoding = DeadLetter.wrap_payload(raw)
    letter = DeadLetter(
        reason="r",
        error_type="invalid_json",
        source="g",
        payload=payload,
        payload_encoding=encoding,
    )
    assert encoding == "base64"
    assert decode(DeadLetter, encode(letter)).raw_payload() == raw


def test_catalogue_names_are_unique_versioned_and_match_their_models():
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names)) == 12
    for spec in TOPICS:
        assert spec.name.startswith("driftline.")
        assert spec.name.endswith(".v1")
        assert getattr(spec.model, "TOPIC", None) == spec.name
        assert spec.partitions >= 1
        assert spec.configs()["cleanup.policy"] == spec.cleanup_policy
    assert by_name("driftline.predictions.v1").key == "tenant_id:model_id"


def test_exported_json_schemas_in_docs_are_up_to_date():
    """Regenerate with `make schemas` when an event model changes."""
    committed = ROOT / "docs" / "schemas"
    for name, text in render_all().items():
        path = committed / name
        assert path.exists(), f"{path} is missing: run `make schemas`"
        assert json.loads(path.read_text()) == json.loads(text), f"{name} is stale: make schemas"


def test_exported_prediction_schema_lists_required_fields():
    schema = json.loads(render_all()["driftline.predictions.v1.json"])
    assert {"tenant_id", "model_id", "model_version", "features", "prediction"} <= set(
        schema["required"]
    )
    assert schema["x-topic"]["key"] == "tenant_id:model_id"
