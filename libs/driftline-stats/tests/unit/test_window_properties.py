"""Window profiles: merging is associative and equals profiling the union; the quantile
sketch stays within its rank-error bound (property tests with hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline_stats.window import CategoricalWindow, NumericWindow

EDGES = np.array([-1.0, 0.0, 1.0, 2.0])
floats = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=200)


def profile(values: list[float]) -> NumericWindow:
    w = NumericWindow(edges=EDGES, lo=-5, hi=5)
    w.update(np.asarray(values, dtype=float))
    return w


def same(a: NumericWindow, b: NumericWindow) -> bool:
    return (
        np.array_equal(a.counts, b.counts)
        and a.n == b.n
        and a.out_of_range == b.out_of_range
        and np.isclose(a.mean, b.mean, rtol=1e-9, atol=1e-6)
        and np.isclose(a.m2, b.m2, rtol=1e-7, atol=1e-3)
        and a.min == b.min
        and a.max == b.max
        and a.sketch.n == b.sketch.n
    )


@settings(max_examples=60, deadline=None)
@given(floats, floats, floats)
def test_numeric_merge_is_associative_and_equals_the_union(x, y, z):
    left = profile(x)
    left.merge(profile(y))
    left.merge(profile(z))
    yz = profile(y)
    yz.merge(profile(z))
    right = profile(x)
    right.merge(yz)
    assert same(left, right)
    assert same(left, profile(x + y + z))


cats = st.lists(st.sampled_from(["a", "b", "c", "new1", "new2"]), max_size=100)


@settings(max_examples=60, deadline=None)
@given(cats, cats, cats)
def test_categorical_merge_is_associative(x, y, z):
    def prof(v: list[str]) -> CategoricalWindow:
        w = CategoricalWindow(categories=["a", "b", "c"])
        if v:
            w.update(v)
        return w

    left = prof(x)
    left.merge(prof(y))
    left.merge(prof(z))
    whole = prof(x + y + z)
    assert np.array_equal(left.with_unseen(), whole.with_unseen())
    assert left.unseen == whole.unseen
    assert left.n == len(x + y + z)


@settings(max_examples=25, deadline=None)
@given(st.integers(1_000, 200_000), st.integers(0, 2**32 - 1))
def test_sketch_ranks_stay_within_the_error_bound(n, seed):
    x = np.random.default_rng(seed).standard_normal(n)
    w = NumericWindow(edges=EDGES)
    w.update(x)
    eps = w.sketch.normalized_rank_error(False)
    xs = np.sort(x)
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        v = w.quantiles([q])[0]
        rank = np.searchsorted(xs, v, side="right") / n
        assert abs(rank - q) <= 2 * eps  # bound holds with probability > 99%


def test_a_window_profile_is_small_and_round_trips():
    import orjson

    w = NumericWindow(edges=np.linspace(-2, 2, 9), lo=-10, hi=10)
    w.update(np.random.default_rng(1).normal(size=100_000))
    raw = orjson.dumps(w.to_dict())
    assert len(raw) <= 16 * 1024
    back = NumericWindow.from_dict(orjson.loads(raw))
    assert same(w, back)
