"""Properties of the Kafka decoders of the predictions topic: drift detection's per-record
decoders (driftline_drift_detection.decoding) and the columnar batch codec
(driftline_core.events.batch).

- Arbitrary bytes never raise anything but the documented error (`BadRecord`, `BadBatch`),
  whose `reason` becomes the DLQ record's reason; a decoded batch can always be expanded.
- A batch survives its encoding, and a batch's events decode as the per-event records of
  the same events do (the two record formats feed the same windows).
Bounded for CI (max_examples below)."""

from __future__ import annotations

import math
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline_core.events import PredictionEvent
from driftline_core.events.batch import MAGIC, BadBatch, PredictionBatch, decode_batch, encode_batch
from driftline_core.events.envelope import encode
from driftline_drift_detection.decoding import BadRecord, decode_actual, decode_prediction

BOUNDED = settings(max_examples=100, deadline=None, derandomize=True)

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
PREDICTION_FIELDS = [
    "event_id",
    "tenant_id",
    "model_id",
    "model_version",
    "occurred_at",
    "features",
    "prediction",
    "probabilities",
    "segment",
]
ACTUAL_FIELDS = ["tenant_id", "model_id", "prediction_event_id", "occurred_at", "actual", "segment"]
BATCH_FIELDS = list(PredictionBatch.__struct_fields__)


def _outcome(decoder: Any, error: type[Exception], raw: bytes | None) -> Any:
    try:
        return decoder(raw)
    except error as e:
        reason = getattr(e, "reason", "")
        assert isinstance(reason, str)
        assert reason, "a dead letter needs a reason"
        return e


def _objects(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the record's own field names (a decoder gets past its first check) and
    arbitrary values, sometimes well-typed ones."""
    good: dict[str, st.SearchStrategy[Any]] = {
        "event_id": st.uuids().map(str),
        "prediction_event_id": st.uuids().map(str),
        "tenant_id": st.sampled_from(["acme", "", "a\x00b"]),
        "model_id": st.sampled_from(["m", ""]),
        "model_version": st.sampled_from(["1", ""]),
        "occurred_at": st.one_of(
            st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "0001-01-01"]),
            finite,
            st.sampled_from([1e300, -1e300, math.nan]),
        ),
        "features": st.dictionaries(st.text(max_size=5), scalars, max_size=4),
    }

    def value(name: str) -> st.SearchStrategy[Any]:
        return good[name] | json_values if name in good else json_values

    return st.fixed_dictionaries({}, optional={f: value(f) for f in fields})


@BOUNDED
@given(raw=st.none() | st.binary(max_size=300))
def test_arbitrary_bytes_decode_as_a_record_or_a_bad_record(raw: bytes | None) -> None:
    for decoder in (decode_prediction, decode_actual):
        out = _outcome(decoder, BadRecord, raw)
        assert isinstance(out, dict | BadRecord)


@BOUNDED
@given(obj=_objects(PREDICTION_FIELDS))
def test_json_objects_decode_as_a_prediction_or_a_bad_record(obj: dict[str, Any]) -> None:
    out = _outcome(decode_prediction, BadRecord, orjson.dumps(obj))
    assert isinstance(out, dict | BadRecord)
    if isinstance(out, dict):  # what the processor then reads has the types it expects
        assert isinstance(out["features"], dict)
        assert all(isinstance(out[k], str) and out[k] for k in PREDICTION_FIELDS[:4])


@BOUNDED
@given(obj=_objects(ACTUAL_FIELDS))
def test_json_objects_decode_as_an_actual_or_a_bad_record(obj: dict[str, Any]) -> None:
    out = _outcome(decode_actual, BadRecord, orjson.dumps(obj))
    assert isinstance(out, dict | BadRecord)


@BOUNDED
@given(raw=st.none() | st.binary(max_size=300) | st.binary(max_size=300).map(MAGIC.__add__))
def test_arbitrary_bytes_are_a_batch_or_a_bad_batch(raw: bytes | None) -> None:
    out = _outcome(decode_batch, BadBatch, raw)
    assert isinstance(out, PredictionBatch | BadBatch)
    if isinstance(out, PredictionBatch):
        assert len(out.events()) == out.n


@BOUNDED
@given(data=st.data())
def test_messagepack_maps_with_the_batch_fields_are_a_batch_or_a_bad_batch(
    data: st.DataObject,
) -> None:
    fields = data.draw(st.lists(st.sampled_from(BATCH_FIELDS), unique=True))
    obj = {f: data.draw(json_values | st.binary(max_size=40)) for f in fields}
    raw = MAGIC + msgspec.msgpack.encode(obj)
    out = _outcome(decode_batch, BadBatch, raw)
    assert isinstance(out, PredictionBatch | BadBatch)
    if isinstance(out, PredictionBatch):
        assert len(out.events()) == out.n


# --- batch and per-event records of the same events -------------------------------------

names = st.text(string.ascii_lowercase, min_size=1, max_size=6)
times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]),
)


@st.composite
def event_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One model's events in the SDK's shape: numeric features (ints or floats, some
    missing), categorical ones (strings, some missing), a class or a score."""
    numeric = draw(st.lists(names, unique=True, max_size=3))
    categorical = draw(st.lists(names.filter(lambda n: n not in numeric), unique=True, max_size=2))
    ints = draw(st.sets(st.sampled_from(numeric))) if numeric else set()
    n = draw(st.integers(1, 8))
    prediction = draw(
        st.sampled_from(
            [
                st.integers(0, 3),
                st.floats(-1e6, 1e6, allow_nan=False),
                st.sampled_from(["a", "b"]),
            ]
        )
    )
    events = []
    for _ in range(n):
        feats: dict[str, Any] = {}
        for f in numeric:
            v = st.integers(-(2**52), 2**52) if f in ints else finite
            feats[f] = draw(st.none() | v)
        for f in categorical:
            feats[f] = draw(st.none() | st.text(max_size=8))
        events.append(
            {
                "event_id": str(draw(st.uuids())),
                "timestamp": draw(times),
                "features": feats,
                "prediction": draw(prediction),
                "business_value": draw(st.none() | st.floats(-1e9, 1e9, allow_nan=False)),
            }
        )
    return events


def _epoch(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else datetime.fromisoformat(v).timestamp()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    return bool(a == b)


@BOUNDED
@given(events=event_batches())
def test_a_batch_decodes_as_the_per_event_records_of_its_events(
    events: list[dict[str, Any]],
) -> None:
    raw = encode_batch("acme", "m", "1", events)
    batch = decode_batch(raw)
    expanded = batch.events()
    assert [e["event_id"] for e in expanded] == [e["event_id"] for e in events]
    for sent, from_batch in zip(events, expanded, strict=True):
        record = PredictionEvent(
            event_id=uuid.UUID(sent["event_id"]),
            tenant_id="acme",
            model_id="m",
            model_version="1",
            occurred_at=sent["timestamp"],
            features=sent["features"],
            prediction=sent["prediction"],
            business_value=sent["business_value"],
        )
        if any("\x00" in v for v in sent["features"].values() if isinstance(v, str)):
            # refused alone on both paths: here at decoding, in a batch by the per-event check
            # after expansion (test_columnar: a batch names its bad events, keeps the others)
            with pytest.raises(BadRecord, match="NUL"):
                decode_prediction(encode(record))
            continue
        per_event = decode_prediction(encode(record))
        for k in ("event_id", "tenant_id", "model_id", "model_version", "prediction"):
            assert _same(per_event[k], from_batch[k]), k
        assert per_event["business_value"] == from_batch["business_value"]
        assert abs(_epoch(per_event["occurred_at"]) - from_batch["occurred_at"]) < 1e-6
        assert per_event["features"].keys() == from_batch["features"].keys()
        for f, v in per_event["features"].items():
            w = from_batch["features"][f]
            assert (v is None and w is None) or _same(v, w), (f, v, w)
            assert type(v) is type(w) or isinstance(v, float), (f, v, w)  # ints stay ints
