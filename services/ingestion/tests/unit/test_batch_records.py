"""HTTP batches as columnar batch records: one per model and version, the same events."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from driftline_core.events.batch import decode_batch, is_batch
from driftline_ingestion.intake import _batch_records


def _event(i: int, model: str, version: str, encrypted: bool = False) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "schema_version": 1,
        "tenant_id": "t",
        "occurred_at": datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
        "produced_at": datetime.now(UTC),
        "model_id": model,
        "model_version": version,
        "features": {"x": float(i), "city": "Oslo"},
        "prediction": 0.5,
        "probabilities": None,
        "segment": {"region": "EU"},
        "business_value": None,
        "latency_ms": 3.0,
        "encrypted_features": {"ssn": "v1:..."} if encrypted else {},
    }


def test_one_batch_record_per_model_and_version_and_encrypted_events_stay_json() -> None:
    events = [
        _event(0, "a", "1"),
        _event(1, "b", "1"),
        _event(2, "a", "1"),
        _event(3, "a", "2"),
        _event(4, "a", "1", encrypted=True),
    ]
    records = _batch_records("t", events)
    json_records = [v for _, v in records if not is_batch(v)]
    batches = {
        (b.model_id, b.model_version): b
        for b in (decode_batch(v) for _, v in records if is_batch(v))
    }
    assert [orjson.loads(v)["event_id"] for v in json_records] == ["e4"]
    assert sorted(batches) == [("a", "1"), ("a", "2"), ("b", "1")]
    assert batches[("a", "1")].event_id == ["e0", "e2"]
    assert {k for k, _ in records} == {b"t:a", b"t:b"}
    ev = batches[("a", "1")].events()[1]
    assert ev["occurred_at"] == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC).timestamp()
    assert ev["features"] == {"x": 2.0, "city": "Oslo"}
    assert ev["segment"] == {"region": "EU"}
    assert ev["latency_ms"] == 3.0


def test_a_batch_record_over_the_producer_limit_is_split_until_each_fits() -> None:
    events = [_event(i % 60, "a", "1") | {"event_id": f"e{i}"} for i in range(1000)]
    whole = _batch_records("t", events)
    assert len(whole) == 1
    limit = len(whole[0][1]) // 5
    records = _batch_records("t", events, limit)
    assert len(records) > 5
    assert all(len(v) <= limit for _, v in records)
    ids = [e for _, v in records for e in decode_batch(v).event_id]
    assert ids == [f"e{i}" for i in range(1000)]  # each event once, in order
