"""The batch-at-once conversion of predictions (PredictionWire, msgspec) gives exactly what
PredictionIn (pydantic, per event) gives, or declines the batch, which then takes the
per-event path with its reasons."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from driftline_ingestion.intake import PredictionWire, _typed_predictions
from driftline_ingestion.validation import PredictionIn

BASE: dict[str, Any] = {
    "model_id": "m",
    "model_version": "1",
    "features": {"a": 1},
    "prediction": 1,
}
FIELDS = list(PredictionWire.__struct_fields__)


def as_pydantic(item: Any) -> dict[str, Any] | None:
    try:
        ev = PredictionIn.model_validate(item)
    except ValidationError:
        return None
    return {k: getattr(ev, k) for k in FIELDS}


def check_batch(items: list[Any]) -> bool:
    """Whether the batch took the typed path; if it did, every event is as pydantic reads it."""
    typed = _typed_predictions(items)
    if typed is None:
        return False
    assert [i for i, _ in typed] == list(range(len(items)))
    for (_, ev), item in zip(typed, items, strict=True):
        want = as_pydantic(item)
        assert want is not None, f"accepted an event PredictionIn refuses: {item!r}"
        got = {k: getattr(ev, k) for k in FIELDS}
        assert got == want
        for k in ("prediction", "business_value", "latency_ms"):
            assert type(got[k]) is type(want[k]), k
        if want["timestamp"] is not None:
            assert got["timestamp"].utcoffset() == want["timestamp"].utcoffset()
    return True


@pytest.mark.parametrize(
    ("extra", "typed"),
    [
        ({}, True),
        ({"prediction": 1.0}, True),
        ({"prediction": True}, True),
        ({"prediction": "yes"}, True),
        ({"prediction": [1, 2.5]}, True),
        ({"timestamp": "2026-01-02T03:04:05Z"}, True),
        ({"timestamp": "2026-01-02T03:04:05.25+02:00"}, True),
        ({"event_id": str(uuid.uuid4())}, True),
        ({"event_id": uuid.uuid4().hex}, True),
        ({"probabilities": {"yes": 1, "no": 0.0}}, True),
        ({"segment": {"region": "EU"}, "business_value": 3, "latency_ms": 0}, True),
        # refused by both: the per-event path names the reason
        ({"timestamp": "2026-01-02T03:04:05"}, False),
        ({"prediction": None}, False),
        ({"model_id": ""}, False),
        ({"model_id": "x" * 129}, False),
        ({"latency_ms": -1}, False),
        ({"unknown": 1}, False),
        ({"features": []}, False),
        ({"segment": {"a": 1}}, False),
        # accepted by PredictionIn only, or read differently: the per-event path decides
        ({"timestamp": 1_767_323_045}, False),
        ({"timestamp": "2026-01-02T03:04:05.123456789Z"}, False),
        ({"event_id": "{" + str(uuid.uuid4()) + "}"}, False),
        ({"probabilities": {"yes": "0.5"}}, False),
        ({"business_value": True}, False),
        ({"prediction": [True]}, False),
    ],
)
def test_an_event_takes_the_typed_path_only_when_it_reads_as_pydantic_reads_it(
    extra: dict[str, Any], typed: bool
) -> None:
    item = {**BASE, **extra}
    assert check_batch([item, dict(BASE)]) is typed
    if not typed:
        # one such event sends its whole batch through the per-event path
        assert _typed_predictions([dict(BASE), item]) is None


def test_a_stand_in_for_a_refused_or_malformed_event_declines_the_batch() -> None:
    class Refused:
        reason = "too large"

    assert _typed_predictions([dict(BASE), Refused()]) is None
    assert _typed_predictions([dict(BASE), [1, 2]]) is None


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
_TIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
    st.datetimes().map(lambda t: t.isoformat()),
    st.integers(0, 2**33),
    st.text(max_size=12),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"model_id": st.text(max_size=130), "model_version": st.text(max_size=3)},
            optional={
                "features": st.one_of(st.dictionaries(st.text(max_size=3), _SCALARS), _SCALARS),
                "prediction": st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3)),
                "event_id": st.one_of(
                    st.uuids().map(str), st.uuids().map(lambda u: u.hex), _SCALARS
                ),
                "timestamp": _TIMES,
                "probabilities": st.one_of(
                    st.none(), st.dictionaries(st.text(max_size=3), _SCALARS)
                ),
                "segment": st.one_of(st.dictionaries(st.text(max_size=3), _SCALARS), _SCALARS),
                "business_value": _SCALARS,
                "latency_ms": _SCALARS,
                "extra": _SCALARS,
            },
        ),
        min_size=1,
        max_size=4,
    )
)
def test_whatever_the_typed_path_accepts_pydantic_reads_the_same(items: list[Any]) -> None:
    check_batch(items)


_NUMBERS = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
_AWARE = st.builds(
    lambda t, minutes: t.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(-23 * 60, 23 * 60),
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "model_id": st.text(min_size=1, max_size=128),
                "model_version": st.text(min_size=1, max_size=64),
                "features": st.dictionaries(st.text(max_size=3), st.one_of(_SCALARS, _NUMBERS)),
                "prediction": st.one_of(
                    st.booleans(), _NUMBERS, st.text(max_size=3), st.lists(_NUMBERS, max_size=3)
                ),
            },
            optional={
                "event_id": st.one_of(st.none(), st.uuids().map(str)),
                "timestamp": st.one_of(st.none(), _AWARE),
                "probabilities": st.one_of(
                    st.none(), st.dictionaries(st.text(max_size=3), _NUMBERS)
                ),
                "segment": st.dictionaries(st.text(max_size=3), st.text(max_size=3)),
                "business_value": st.one_of(st.none(), _NUMBERS),
                "latency_ms": st.one_of(st.none(), st.floats(0, 1e9), st.integers(0, 10**6)),
            },
        ),
        min_size=1,
        max_size=6,
    )
)
def test_well_formed_batches_take_the_typed_path_with_pydantic_s_values(items: list[Any]) -> None:
    assert check_batch(items)
