"""The columnar batch record: what goes in comes out, and a malformed layout is refused
with the column it concerns."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline_core.events.batch import (
    FORMAT,
    FORMAT_HEADER,
    MAGIC,
    BadBatch,
    decode_batch,
    encode_batch,
    is_batch,
)

EVENTS = [
    {
        "event_id": "e1",
        "timestamp": "2026-01-02T03:04:05Z",
        "features": {"age": 35, "income": 1.5, "city": "Oslo", "flag": True},
        "prediction": 0.25,
        "business_value": 3.0,
        "segment": {"region": "EU"},
        "probabilities": {"yes": 0.25, "no": 0.75},
    },
    {
        "event_id": "e2",
        "timestamp": 1_767_323_045.5,
        "features": {"age": None, "income": 2, "city": None},
        "prediction": "no",
        "latency_ms": 12.5,
    },
]


def test_a_batch_reads_back_as_the_events_it_was_written_from() -> None:
    value = encode_batch("t", "m", "3", EVENTS)
    assert value.startswith(MAGIC)
    assert is_batch(value)
    assert is_batch(b"{}", [(FORMAT_HEADER, FORMAT)])
    assert not is_batch(b'{"event_id": "x"}')
    b = decode_batch(value)
    assert (b.tenant_id, b.model_id, b.model_version, b.n) == ("t", "m", "3", 2)
    assert b.integer == ["age"]
    first, second = b.events()
    assert first["event_id"] == "e1"
    assert first["occurred_at"] == 1_767_323_045.0
    assert first["features"] == {"age": 35, "income": 1.5, "city": "Oslo", "flag": True}
    assert first["segment"] == {"region": "EU"}
    assert first["probabilities"] == {"yes": 0.25, "no": 0.75}
    assert first["business_value"] == 3.0
    assert first["latency_ms"] is None
    assert second["features"] == {"age": None, "income": 2.0, "city": None, "flag": None}
    assert second["prediction"] == "no"
    assert second["occurred_at"] == 1_767_323_045.5
    assert second["business_value"] is None
    assert second["latency_ms"] == 12.5
    assert second["segment"] == {}


def test_missing_event_ids_and_times_are_filled_in() -> None:
    b = decode_batch(encode_batch("t", "m", "1", [{"features": {"x": 1.0}, "prediction": 1}]))
    assert len(b.event_id[0]) == 36
    assert math.isfinite(b.events()[0]["occurred_at"])


def _raw(**fields: object) -> bytes:
    base: dict[str, object] = {
        "tenant_id": "t",
        "model_id": "m",
        "model_version": "1",
        "produced_at": "now",
        "event_id": ["a", "b"],
        "occurred_at": b"\x00" * 16,
        "prediction": [1.0, 2.0],
    }
    return MAGIC + msgspec.msgpack.encode({**base, **fields})


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (_raw(prediction=[1.0]), "prediction"),
        (_raw(occurred_at=b"\x00" * 12), "occurred_at"),
        (_raw(numeric={"x": b"\x00" * 8}), "numeric.x"),
        (_raw(categorical={"c": ["a", "b", "c"]}), "categorical.c"),
        (_raw(business_value=b"\x00" * 24), "business_value"),
        (_raw(segment=[None]), "segment"),
    ],
)
def test_a_column_of_another_length_is_refused_by_name(value: bytes, names: str) -> None:
    with pytest.raises(BadBatch, match=names):
        decode_batch(value)


@pytest.mark.parametrize(
    "value",
    [
        b'{"event_id": "x"}',
        MAGIC + b"\xc1",
        MAGIC + msgspec.msgpack.encode({"tenant_id": "t"}),
        _raw(model_id=""),
        _raw(tenant_id="a\x00"),
        None,
    ],
)
def test_what_is_not_a_batch_is_refused_with_a_reason(value: bytes | None) -> None:
    with pytest.raises(BadBatch, match="prediction batch"):
        decode_batch(value)


def test_a_feature_value_that_is_not_a_scalar_is_refused_when_encoding() -> None:
    with pytest.raises(BadBatch, match=r"features\.x\[0\]"):
        encode_batch("t", "m", "1", [{"features": {"x": [1, 2]}, "prediction": 0}])


_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    columns=st.lists(
        st.tuples(st.sampled_from(["int", "float", "mixed", "none", "any"]), st.integers(0, 99)),
        min_size=1,
        max_size=6,
    ),
    n=st.integers(1, 12),
    data=st.data(),
)
def test_columns_are_the_same_whatever_the_order_of_each_event_s_features(
    columns: list[tuple[str, int]], n: int, data: st.DataObject
) -> None:
    """The transpose taken when every event names its features in the same order and the
    per-name path taken otherwise give the columns an independent computation expects."""
    kinds = {
        "int": st.one_of(st.none(), st.integers(-(2**53), 2**53)),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "mixed": st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6), st.none()),
        "none": st.none(),
        "any": _VALUES,
    }
    names = {f"f{i}": kind for kind, i in columns}
    rows = [{k: data.draw(kinds[kind]) for k, kind in names.items()} for _ in range(n)]
    same_order = [{"features": r, "prediction": 0} for r in rows]
    shuffled = [
        {"features": dict(reversed(r.items())) if i % 2 else r, "prediction": 0}
        for i, r in enumerate(rows)
    ]
    for events in (same_order, shuffled):
        b = decode_batch(encode_batch("t", "m", "1", events))
        for name in names:
            col = [r[name] for r in rows]
            if all(v is None or type(v) in (int, float) for v in col):
                got = [None if math.isnan(g) else g for g in b.floats(b.numeric[name])]
                assert got == [None if v is None else float(v) for v in col]
                ints = any(v is not None for v in col) and all(
                    v is None or type(v) is int for v in col
                )
                assert (name in b.integer) == ints
                assert name not in b.categorical
            else:
                assert b.categorical[name] == col
                assert name not in b.numeric
