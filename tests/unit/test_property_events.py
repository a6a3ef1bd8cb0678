"""Properties of the event models (driftline_core.events, the models of every topic of the
catalogue): an event survives its own encoding, and bytes off a topic either decode into a
valid event or raise one of the two documented errors (`decode`'s docstring), which a
consumer turns into a DLQ record with a reason. Bounded for CI (max_examples below)."""

from __future__ import annotations

import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from driftline_core.events import ActualEvent, PredictionEvent
from driftline_core.events.catalogue import TOPICS
from driftline_core.events.envelope import decode, encode

BOUNDED = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
model_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)
names = st.text(string.ascii_letters + string.digits + "_ -.", min_size=1, max_size=12)
texts = st.text(max_size=20)  # any code point, NUL and control characters included
times = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9000, 1, 1),
    timezones=st.just(UTC) | st.builds(lambda m: _tz(m), st.integers(-720, 840)),
)
feature_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), finite, texts, st.lists(finite)
)
predictions = st.one_of(
    st.booleans(), st.integers(-(2**53), 2**53), finite, texts, st.lists(finite, max_size=4)
)


def _tz(minutes: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(minutes=minutes))


prediction_events = st.builds(
    PredictionEvent,
    event_id=st.uuids(),
    tenant_id=ids,
    occurred_at=times,
    model_id=model_ids,
    model_version=st.text(min_size=1, max_size=64),
    features=st.dictionaries(names, feature_values, max_size=8),
    prediction=predictions,
    probabilities=st.none() | st.dictionaries(names, finite, max_size=4),
    segment=st.dictionaries(names, texts, max_size=3),
    business_value=st.none() | finite,
    latency_ms=st.none() | st.floats(min_value=0, allow_infinity=False),
)
actual_events = st.builds(
    ActualEvent,
    event_id=st.uuids(),
    tenant_id=ids,
    occurred_at=times,
    model_id=model_ids,
    prediction_event_id=st.uuids(),
    actual=predictions,
    segment=st.dictionaries(names, texts, max_size=3),
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _as_sent(ev: BaseModel) -> Any:
    """An event as a consumer compares it: its JSON form (times to the microsecond)."""
    return orjson.loads(encode(ev))


@BOUNDED
@given(prediction_events)
def test_a_prediction_event_survives_its_encoding(ev: PredictionEvent) -> None:
    back = decode(PredictionEvent, encode(ev))
    assert back == ev
    assert _as_sent(back) == _as_sent(ev)


@BOUNDED
@given(actual_events)
def test_an_actual_event_survives_its_encoding(ev: ActualEvent) -> None:
    assert decode(ActualEvent, encode(ev)) == ev


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.name)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_an_event_or_a_documented_error(spec: Any, raw: bytes) -> None:
    # anything else raised here would escape a consumer's handler instead of becoming a
    # dead letter whose reason is the error's text
    try:
        outcome: Any = decode(spec.model, raw)
    except (orjson.JSONDecodeError, ValidationError) as e:
        outcome = str(e)
    assert isinstance(outcome, spec.model) or (isinstance(outcome, str) and outcome)


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.name)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_objects_with_the_model_fields_are_an_event_or_a_validation_error(
    spec: Any, data: st.DataObject
) -> None:
    """JSON objects with the model's own field names (so validation goes past the first
    field) and arbitrary values: valid ones survive their encoding, the rest are refused."""
    fields = list(spec.model.model_fields)
    chosen = data.draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    obj = {name: data.draw(json_values) for name in chosen}
    obj.setdefault("tenant_id", data.draw(st.sampled_from(["acme", "", "a\x00b", 7])))
    try:
        ev = decode(spec.model, orjson.dumps(obj))
    except ValidationError as e:
        refused = e.errors()
    else:
        refused = []
        assert decode(spec.model, encode(ev)) == ev
    assert refused or isinstance(ev, spec.model)


def test_the_generators_make_valid_events_of_several_shapes() -> None:
    """The strategies above are not vacuous: they reach text and list features, and
    events with and without probabilities."""
    seen: dict[str, bool] = {"text": False, "list": False, "probs": False, "no_probs": False}

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(prediction_events)
    def look(ev: PredictionEvent) -> None:
        for v in ev.features.values():
            seen["text"] |= isinstance(v, str)
            seen["list"] |= isinstance(v, list)
        seen["probs" if ev.probabilities is not None else "no_probs"] = True
        assert uuid.UUID(str(ev.event_id))

    look()
    assert all(seen.values()), seen
