"""The columnar fast path gives the windows the per-record path gives, event for event,
and hands back to the per-record path every group it cannot decode cleanly."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from driftline_core.events.batch import decode_batch, encode_batch
from driftline_drift_detection.columnar import batch_columns, batch_problems, decoder_for
from driftline_drift_detection.decoding import decode_prediction
from driftline_drift_detection.windows import WindowManager
from driftline_stats.detector import FeatureReference
from driftline_stats.profile import PREDICTION

REFS = [
    FeatureReference.from_values("x", np.random.default_rng(0).normal(size=500)),
    FeatureReference.from_values("y", np.random.default_rng(1).normal(size=500) * 10),
    FeatureReference.from_values("colour", ["red", "blue", "red", "green"], categorical=True),
    FeatureReference.from_values(PREDICTION, np.random.default_rng(2).uniform(size=500)),
]
MODEL = ("t1", "m1")


def _event(t: float, x: float | None, y: float | None, c: str | None, **extra: Any) -> bytes:
    feats: dict[str, Any] = {"x": x, "colour": c, "unprofiled": "ignored"}
    if y is not None:
        feats["y"] = y
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "tenant_id": MODEL[0],
            "model_id": MODEL[1],
            "model_version": extra.pop("version", "1"),
            "occurred_at": t,
            "features": feats,
            "prediction": extra.pop("prediction", 0.25),
            **extra,
        }
    )


def _state(wm: WindowManager) -> dict[str, Any]:
    out: dict[str, Any] = {"too_late": wm.too_late, "dirty": sorted(map(str, wm.dirty))}
    m = wm.models[MODEL]
    out["watermark"] = m.watermark
    for key, w in wm.windows.items():
        d = w.to_json()
        for p in d["profiles"].values():
            if p.pop("kll", None) is not None:  # KLL compaction is randomised
                pass
        d["sketch_n"] = {n: p.sketch.n for n, p in w.profiles.items() if hasattr(p, "sketch")}
        out[str(key)] = d
    return out


def _managers(closed_until: float) -> tuple[WindowManager, WindowManager]:
    a, b = WindowManager(3600), WindowManager(3600)
    for wm in (a, b):
        wm.configure(MODEL, 60, 5, REFS)
        wm.models[MODEL].closed_until = closed_until
    return a, b


values = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))
rows = st.lists(
    st.tuples(
        st.floats(0, 600),  # event time: several windows, some behind the watermark
        values,
        st.one_of(st.none(), st.floats(-5, 5)),
        st.sampled_from([None, "red", "blue", "green", "violet"]),
        st.sampled_from(["1", "2"]),
        st.one_of(st.none(), st.floats(0, 100)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=100, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(batches=st.lists(rows, min_size=1, max_size=3), closed_until=st.sampled_from([-1.0, 60.0]))
def test_columns_and_records_give_identical_windows(
    batches: list[list[tuple[Any, ...]]], closed_until: float
) -> None:
    per_record, columnar = _managers(closed_until)
    dec = decoder_for(REFS)
    for batch in batches:
        raw = [
            _event(t, x, y, c, version=v, **({} if bv is None else {"business_value": bv}))
            for t, x, y, c, v, bv in batch
        ]
        counted = per_record.add(MODEL, 0, [decode_prediction(r) for r in raw], 0.0)
        cols = dec.decode_group(*MODEL, list(raw))
        assert cols is not None
        assert columnar.add_columns(MODEL, 0, cols, 0.0) == counted
    assert _state(columnar) == _state(per_record)


@pytest.mark.parametrize(
    "bad",
    [
        _event(1.0, "not a number", 1.0, "red"),  # type error: counted per feature
        _event(1.0, 1.0, 1.0, "red", prediction=[0.1, 0.9]),
        _event(1.0, 1.0, 1.0, 3),  # a category that is not a string
        b'{"event_id": ""}',
        b"not json",
        _event(1.0, 1.0, 1.0, "a\x00b"),
        _event(math.inf, 1.0, 1.0, "red"),
        orjson.dumps({**orjson.loads(_event(1.0, 1.0, 1.0, "red")), "model_id": "other"}),
        orjson.dumps({**orjson.loads(_event(1.0, 1.0, 1.0, "red")), "occurred_at": "2026-01-01"}),
    ],
)
def test_a_group_with_any_record_it_cannot_decode_goes_to_the_per_record_path(
    bad: bytes,
) -> None:
    good = _event(2.0, 1.0, 2.0, "red")
    assert decoder_for(REFS).decode_group(*MODEL, [good]) is not None
    assert decoder_for(REFS).decode_group(*MODEL, [good, bad, good]) is None
    assert decoder_for(REFS).decode_group(*MODEL, [good, None]) is None


def test_a_string_prediction_on_a_numeric_output_profile_changes_nothing() -> None:
    _, wm = _managers(-1.0)
    cols = decoder_for(REFS).decode_group(*MODEL, [_event(1.0, 1.0, 1.0, "red", prediction="yes")])
    assert cols is not None
    assert wm.add_columns(MODEL, 0, cols, 0.0) is None
    assert wm.windows == {}
    assert wm.models[MODEL].watermark == -math.inf


def _sdk_events(batch: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    for t, x, y, c, _, bv in batch:
        feats: dict[str, Any] = {"x": x, "colour": c, "unprofiled": "ignored"}
        if y is not None:
            feats["y"] = y
        ev: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "timestamp": t,
            "features": feats,
            "prediction": 0.25,
        }
        if bv is not None:
            ev["business_value"] = bv
        out.append(ev)
    return out


def _as_records(events: list[dict[str, Any]]) -> list[bytes]:
    return [
        orjson.dumps(
            {
                **{k: v for k, v in e.items() if k != "timestamp"},
                "tenant_id": MODEL[0],
                "model_id": MODEL[1],
                "model_version": "1",
                "occurred_at": e["timestamp"],
            }
        )
        for e in events
    ]


mixed_values = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-50, 50))


@settings(max_examples=100, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.floats(0, 600),
                mixed_values,
                st.one_of(st.none(), st.floats(-5, 5)),
                st.sampled_from([None, "red", "blue", "green", "violet"]),
                st.just("1"),
                st.one_of(st.none(), st.floats(0, 100)),
            ),
            min_size=1,
            max_size=40,
        ),
        min_size=1,
        max_size=3,
    ),
    closed_until=st.sampled_from([-1.0, 60.0]),
)
def test_batch_records_and_per_event_records_give_identical_windows(
    batches: list[list[tuple[Any, ...]]], closed_until: float
) -> None:
    """The same events sent as per-event JSON records and as batch records (columnar path,
    and the per-event path a batch takes for models that need whole events)."""
    per_record, columnar = _managers(closed_until)
    expanded, _ = _managers(closed_until)
    for rows_ in batches:
        events = _sdk_events(rows_)
        counted = per_record.add(MODEL, 0, [decode_prediction(r) for r in _as_records(events)], 0.0)
        batch = decode_batch(encode_batch(*MODEL, "1", events))
        assert batch_problems(batch) == {}
        cols = batch_columns(decoder_for(REFS), batch, None)
        assert cols is not None
        assert columnar.add_columns(MODEL, 0, cols, 0.0) == counted
        assert expanded.add(MODEL, 0, batch.events(), 0.0) == counted
    assert _state(columnar) == _state(per_record)
    assert _state(expanded) == _state(per_record)


def test_a_batch_names_its_bad_events_and_keeps_the_others() -> None:
    events = _sdk_events([(1.0, 1.0, 1.0, "red", "1", None)] * 4)
    events[2]["timestamp"] = math.inf
    events[3]["features"]["colour"] = "re\x00d"
    batch = decode_batch(encode_batch(*MODEL, "1", events))
    batch.event_id[1] = ""  # another producer's batch (the SDK fills in missing ids)
    problems = batch_problems(batch)
    assert sorted(problems) == [1, 2, 3]
    assert "event_id" in problems[1]
    assert "occurred_at" in problems[2]
    assert "NUL" in problems[3]
    cols = batch_columns(decoder_for(REFS), batch, np.array([0], dtype=np.intp))
    assert cols is not None
    assert cols.n == 1


def test_a_numeric_feature_sent_as_strings_takes_the_per_event_path() -> None:
    events = _sdk_events([(1.0, 1.0, 1.0, "red", "1", None)] * 2)
    events[0]["features"]["x"] = "one"
    batch = decode_batch(encode_batch(*MODEL, "1", events))
    assert batch_columns(decoder_for(REFS), batch, None) is None
    per_record, expanded = _managers(-1.0)
    per_record.add(MODEL, 0, [decode_prediction(r) for r in _as_records(events)], 0.0)
    expanded.add(MODEL, 0, batch.events(), 0.0)
    assert _state(expanded) == _state(per_record)
    (w,) = expanded.windows.values()
    assert w.type_errors == {"x": 1}


def test_integer_class_predictions_keep_their_spelling_on_every_path() -> None:
    """A classifier's output 1 is the category "1" (not "1.0") on every path."""
    refs = [*REFS[:3], FeatureReference.from_values(PREDICTION, ["0", "1"], categorical=True)]
    events = _sdk_events([(1.0, 1.0, 1.0, "red", "1", None)] * 3)
    for e, p in zip(events, [0, 1, 1], strict=True):
        e["prediction"] = p
    states = []
    for path in ("records", "columns", "batch"):
        wm = WindowManager(3600)
        wm.configure(MODEL, 60, 5, refs)
        if path == "records":
            wm.add(MODEL, 0, [decode_prediction(r) for r in _as_records(events)], 0.0)
        elif path == "columns":
            cols = decoder_for(refs).decode_group(*MODEL, _as_records(events))
            assert cols is not None
            wm.add_columns(MODEL, 0, cols, 0.0)
        else:
            batch = decode_batch(encode_batch(*MODEL, "1", events))
            bcols = batch_columns(decoder_for(refs), batch, None)
            assert bcols is not None
            wm.add_columns(MODEL, 0, bcols, 0.0)
        (w,) = wm.windows.values()
        out = w.profiles[PREDICTION]
        states.append((out.counts.tolist(), dict(out.unseen)))  # type: ignore[union-attr]
    assert states == [([1, 2], {})] * 3


def test_a_nul_is_found_in_every_text_column_of_a_batch() -> None:
    """The NUL check looks at all strings of a column at once; mixed columns (numbers
    beside strings) and segments are looked at too."""
    events = _sdk_events([(1.0, 1.0, 1.0, "red", "1", None)] * 5)
    events[1]["prediction"] = "ye\x00s"  # among numeric predictions
    events[2]["segment"] = {"region": "E\x00U"}
    events[3]["features"]["colour"] = None  # missing values beside strings are no problem
    events[4]["prediction"] = 0
    problems = batch_problems(decode_batch(encode_batch(*MODEL, "1", events)))
    assert sorted(problems) == [1, 2]
    assert problems[1].startswith("not a prediction event: prediction: a string holds NUL")
    assert problems[2].startswith("not a prediction event: segment: a string holds NUL")
    clean = _sdk_events([(1.0, 1.0, 1.0, None, "1", None)] * 3)
    clean[0]["prediction"] = "yes"
    assert batch_problems(decode_batch(encode_batch(*MODEL, "1", clean))) == {}
