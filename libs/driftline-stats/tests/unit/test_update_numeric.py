"""`update_numeric` (all of a batch's numeric profiles at once) leaves each window exactly as
`NumericWindow.update` of its own row does, and a categorical profile counts a list of
strings as `update` of the same values through numpy did (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import driftline_stats.window as window
from driftline_stats.window import CategoricalWindow, NumericWindow, update_numeric


def _window(edges: list[float], lo: float | None, hi: float | None) -> NumericWindow:
    return NumericWindow(edges=np.unique(np.asarray(edges, dtype=float)), lo=lo, hi=hi)


def _copy(w: NumericWindow) -> NumericWindow:
    return NumericWindow.from_compact(w.to_compact())


def _state(w: NumericWindow) -> dict[str, object]:
    d = w.to_dict()
    d.pop("kll")  # KLL compaction is randomised; its count is compared instead
    d["sketch_n"] = w.sketch.n
    d["sketch_min_max"] = (
        (w.sketch.get_min_value(), w.sketch.get_max_value()) if w.sketch.n else None
    )
    return d


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]),
)
specs = st.tuples(
    st.lists(st.floats(-10, 10), max_size=12),
    st.one_of(st.none(), st.floats(-5, 0)),
    st.one_of(st.none(), st.floats(0, 5)),
    st.lists(st.floats(-3, 3), max_size=8),  # values the window held before
)


@settings(max_examples=150, deadline=None)
@given(
    windows=st.lists(specs, min_size=1, max_size=6),
    n=st.integers(0, 80),
    data=st.data(),
    tiny_chunks=st.booleans(),
)
def test_each_window_ends_as_its_own_update_leaves_it(
    windows: list[tuple[list[float], float | None, float | None, list[float]]],
    n: int,
    data: st.DataObject,
    tiny_chunks: bool,
) -> None:
    rows = np.array(
        [data.draw(st.lists(values, min_size=n, max_size=n)) for _ in windows], dtype=float
    ).reshape(len(windows), n)
    one, many = [], []
    for edges, lo, hi, before in windows:
        w = _window(edges, lo, hi)
        w.update(np.asarray(before, dtype=float))
        one.append(_copy(w))
        many.append(_copy(w))
    for w, row in zip(one, rows, strict=True):
        w.update(row)
    at_once = window._COMPARED_AT_ONCE
    if tiny_chunks:  # the comparisons of values with edges taken a few at a time
        window._COMPARED_AT_ONCE = 7
    try:
        update_numeric(many, rows)
    finally:
        window._COMPARED_AT_ONCE = at_once
    assert [_state(w) for w in many] == [_state(w) for w in one]


def test_bins_moments_and_range_match_numpy() -> None:
    """Against an independent computation: numpy's histogram on the same edges."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 500))
    ws = [NumericWindow(edges=np.array([-1.0, 0.0, 1.0]), lo=-2.0, hi=2.0) for _ in range(3)]
    ws[1] = NumericWindow(edges=np.array([0.5]))
    update_numeric(ws, x)
    for w, row in zip(ws, x, strict=True):
        bins = np.concatenate(([-np.inf], w.edges, [np.inf]))
        # numpy's bins are [a, b): a value equal to an edge goes to the bin after it
        expected, _ = np.histogram(row, bins=bins)
        assert w.counts.tolist() == expected.tolist()
        assert w.n == 500
        assert w.mean == pytest.approx(row.mean(), rel=1e-12)
        assert w.std == pytest.approx(row.std(), rel=1e-12)
        assert (w.min, w.max) == (row.min(), row.max())
        if w.lo is not None and w.hi is not None:
            assert w.out_of_range == int(((row < w.lo) | (row > w.hi)).sum())


def test_one_row_per_window_is_required() -> None:
    with pytest.raises(ValueError, match="one row of values per window"):
        update_numeric([NumericWindow(edges=np.array([0.0]))], np.zeros((2, 3)))


words = st.lists(st.sampled_from(["a", "b", "c", "new1", "new2", "Ä", "b "]), max_size=80)


@settings(max_examples=100, deadline=None)
@given(words, st.integers(0, 3))
def test_a_list_of_strings_counts_as_numpy_counted_it(values: list[str], max_unseen: int) -> None:
    fast = CategoricalWindow(categories=["a", "b", "c"], max_unseen=max_unseen)
    fast.update(values)
    cats, n = np.unique(np.asarray(values, dtype=str), return_counts=True)
    slow = CategoricalWindow(categories=["a", "b", "c"], max_unseen=max_unseen)
    for c, k in zip(cats.tolist(), n.tolist(), strict=True):  # as `update` did before
        i = slow._index.get(c)
        if i is not None:
            slow.counts[i] += k
        elif c in slow.unseen or len(slow.unseen) < slow.max_unseen:
            slow.unseen[c] = slow.unseen.get(c, 0) + k
        else:
            slow.unseen_other += k
    assert fast.counts.tolist() == slow.counts.tolist()
    assert fast.unseen == slow.unseen
    assert fast.unseen_other == slow.unseen_other
    assert fast.n == len(values)


def test_values_that_are_not_strings_keep_their_spelling() -> None:
    """1, 1.0 and True are one key of a Counter; counted as strings they stay apart."""
    w = CategoricalWindow(categories=["1", "1.0"])
    w.update([1, 1.0, True, "1"])
    assert w.counts.tolist() == [2, 1]
    assert w.unseen == {"True": 1}
