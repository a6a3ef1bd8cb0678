"""Per-record decoding of the processors' input: each record the processors could not use
is refused with a reason that names the field, so it alone goes to the DLQ."""

from __future__ import annotations

import orjson
import pytest

from driftline_drift_detection.decoding import BadRecord, decode_actual, decode_prediction

PREDICTION = {
    "event_id": "6f1c1f9e-8f0e-4e43-9d1c-3f5e5d0f6a11",
    "tenant_id": "acme",
    "model_id": "m",
    "model_version": "1",
    "occurred_at": "2026-01-01T12:00:00+00:00",
    "features": {"x": 1.0, "c": "a"},
    "prediction": 1,
    "probabilities": {"0": 0.3, "1": 0.7},
}
ACTUAL = {
    "tenant_id": "acme",
    "model_id": "m",
    "prediction_event_id": PREDICTION["event_id"],
    "occurred_at": "2026-01-02T12:00:00Z",
    "actual": 1,
}


def test_valid_events_decode_to_their_fields():
    assert decode_prediction(orjson.dumps(PREDICTION)) == PREDICTION
    assert decode_prediction(orjson.dumps(PREDICTION | {"occurred_at": 1.7e9}))["prediction"] == 1
    assert decode_actual(orjson.dumps(ACTUAL)) == ACTUAL


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        ({"occurred_at": "yesterday at noon"}, "occurred_at", "schema_mismatch"),
        ({"occurred_at": "2026-01-01T12:00:00"}, "occurred_at", "schema_mismatch"),  # no zone
        ({"occurred_at": None}, "occurred_at", "schema_mismatch"),
        ({"occurred_at": 1e300}, "occurred_at", "schema_mismatch"),  # no datetime for it
        ({"features": [1, 2, 3]}, "features", "schema_mismatch"),
        ({"features": None}, "features", "schema_mismatch"),
        ({"model_version": 1}, "model_version", "schema_mismatch"),
        ({"model_version": "1\u0000x"}, "NUL", "unstorable_text"),
        ({"features": {"c": "a\u0000"}}, "NUL", "unstorable_text"),
        ({"tenant_id": ""}, "tenant_id", "schema_mismatch"),
        ({"probabilities": {"0": "high"}}, "probabilities", "schema_mismatch"),
        ({"prediction": {"a": 1}}, "prediction", "schema_mismatch"),
        ({"segment": {"region": 3}}, "segment", "schema_mismatch"),
    ],
)
def test_a_prediction_with_a_wrong_type_is_refused_naming_the_field(change, field, error_type):
    with pytest.raises(BadRecord) as info:
        decode_prediction(orjson.dumps(PREDICTION | change))
    assert field in info.value.reason
    assert info.value.error_type == error_type


def test_missing_fields_and_non_objects_are_refused():
    for name in ("event_id", "model_id", "features", "prediction", "occurred_at"):
        with pytest.raises(BadRecord, match=name):
            decode_prediction(orjson.dumps({k: v for k, v in PREDICTION.items() if k != name}))
    with pytest.raises(BadRecord) as info:
        decode_prediction(b"[1, 2, 3]")
    assert "JSON object" in info.value.reason
    with pytest.raises(BadRecord) as info:
        decode_prediction(b"\xff\xfe binary")
    assert info.value.error_type == "invalid_json"
    with pytest.raises(BadRecord) as info:
        decode_prediction(None)
    assert info.value.error_type == "empty_value"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "yesterday at noon"}, "occurred_at"),
        ({"prediction_event_id": 7}, "prediction_event_id"),
        ({"actual": {"label": 1}}, "actual"),
        ({"segment": "EU"}, "segment"),
        ({"model_id": "m\u0000"}, "NUL"),
    ],
)
def test_an_actual_with_a_wrong_type_is_refused_naming_the_field(change, field):
    with pytest.raises(BadRecord, match=field):
        decode_actual(orjson.dumps(ACTUAL | change))
