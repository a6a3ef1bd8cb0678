"""Checkpointed window state in binary (decision 44): it reads back as the same window as
its JSON form did (counts, moments, sketch, categories, unseen values, PCA, business value,
type errors, profile order), it is far smaller, and a window of 100,000 events stays within
16 KB per feature. Too-late events are named to the caller with the reason (no servers)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftline_drift_detection.windows import STATE_MAGIC, WindowManager, WindowState
from driftline_stats.detector import GRID, FeatureReference
from driftline_stats.multivariate import PCAWindow
from driftline_stats.window import CategoricalWindow, NumericWindow

RNG = np.random.default_rng(0)
REFS = [FeatureReference.from_values(f"x{j}", RNG.normal(size=4000)) for j in range(20)] + [
    FeatureReference.from_values(f"c{j}", RNG.choice(list("abcde"), 4000), categorical=True)
    for j in range(5)
]


def window(n: int) -> WindowState:
    rng = np.random.default_rng(n)
    w = WindowState(
        ("t", "m", "1", "", 600.0),
        300,
        2,
        events=n,
        late=3,
        type_errors={"x1": 2},
        profiles={r.name: r.new_window() for r in REFS},
        pca=PCAWindow(5, 1.5, 2.25),
        value_sum=12.5,
        value_n=4,
    )
    for p in w.profiles.values():
        if isinstance(p, NumericWindow):
            p.update(np.append(rng.normal(size=n), [np.nan, np.inf]))
        else:
            p.update(rng.choice([*"abcdefz", "new-1"], n))
            p.missing += 1
    return w


def same(a: WindowState, b: WindowState) -> None:
    assert a.key == b.key
    assert (a.length, a.partition, a.events, a.late) == (b.length, b.partition, b.events, b.late)
    assert (a.type_errors, a.value_sum, a.value_n) == (b.type_errors, b.value_sum, b.value_n)
    assert a.pca is not None
    assert b.pca is not None
    assert a.pca.to_dict() == b.pca.to_dict()
    assert list(a.profiles) == list(b.profiles)  # the same order: the same quality rows
    for name, p in a.profiles.items():
        q = b.profiles[name]
        if isinstance(p, NumericWindow):
            assert isinstance(q, NumericWindow)
            assert np.array_equal(p.edges, q.edges)
            assert np.array_equal(p.counts, q.counts)
            assert (p.n, p.mean, p.m2, p.min, p.max) == (q.n, q.mean, q.m2, q.min, q.max)
            assert (p.missing, p.non_finite, p.out_of_range) == (
                q.missing,
                q.non_finite,
                q.out_of_range,
            )
            assert p.quantiles(GRID).tolist() == q.quantiles(GRID).tolist()
        else:
            assert isinstance(p, CategoricalWindow)
            assert isinstance(q, CategoricalWindow)
            assert p.categories == q.categories
            assert np.array_equal(p.counts, q.counts)
            assert (p.unseen, p.unseen_other, p.missing) == (q.unseen, q.unseen_other, q.missing)


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_binary_state_reads_back_as_the_json_state_does(n):
    w = window(n)
    raw = w.to_bytes()
    assert raw.startswith(STATE_MAGIC)
    back = WindowState.from_bytes(w.key, raw)
    same(w, back)
    if n:  # JSON wrote an empty profile's min/max (inf) as null; binary keeps them
        same(WindowState.from_json(w.key, orjson.loads(orjson.dumps(w.to_json()))), back)
    with pytest.raises(ValueError, match="not a checkpointed window state"):
        WindowState.from_bytes(w.key, orjson.dumps(w.to_json()))


def test_a_window_of_100k_events_is_within_16_kb_per_feature_and_smaller_than_json():
    w = window(100_000)
    raw = w.to_bytes()
    as_json = orjson.dumps(w.to_json())
    assert len(raw) / len(w.profiles) <= 16 * 1024
    assert len(raw) < 0.8 * len(as_json)


def test_too_late_events_are_named_with_the_reason():
    wm = WindowManager(idle_close_s=30)
    wm.configure(("t", "m"), length=60, grace=10, refs=REFS[:1])
    wm.add(("t", "m"), 0, [{"occurred_at": 5.0, "model_version": "1", "features": {}}], 0)
    wm.add(("t", "m"), 0, [{"occurred_at": 75.0, "model_version": "1", "features": {}}], 0)
    [first] = wm.ready(1)
    wm.close(first)
    rejected: list[tuple[int, str]] = []
    events = [
        {"occurred_at": t, "model_version": "1", "features": {"x0": 1.0}} for t in (61.0, 30.0)
    ]
    assert wm.add(("t", "m"), 0, events, 2, rejected) == 1
    assert [i for i, _ in rejected] == [1]
    assert "too late" in rejected[0][1]
    assert "1970-01-01T00:00:00+00:00 - 1970-01-01T00:01:00+00:00" in rejected[0][1]
    assert wm.too_late == 1
