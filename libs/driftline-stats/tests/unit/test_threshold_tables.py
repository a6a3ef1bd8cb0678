"""Threshold tables (decision 43): computed ahead once per reference, they give the same
verdicts whether precomputed or computed at the first window close, read back exactly from
their bytes, follow the direct bootstrap at any window size, and a detector that holds its
tables never computes one when it evaluates."""

from __future__ import annotations

import numpy as np
import pytest
from datasketches import kll_doubles_sketch
from scipy.stats import norm

from driftline_stats import thresholds
from driftline_stats.detector import Detector, FeatureReference, Verdict
from driftline_stats.thresholds import GRID, ThresholdSpec, ThresholdTable, table_for
from driftline_stats.window import KLL_K


def refs(seed: int = 1) -> list[FeatureReference]:
    rng = np.random.default_rng(seed)
    return [
        FeatureReference.from_values("x", rng.gamma(2.0, 1.0, 5000)),
        FeatureReference.from_values("y", rng.normal(0, 1, 5000)),
        FeatureReference.from_values(
            "c", rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2]), categorical=True
        ),
    ]


def windows(det: Detector, seed: int, n: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {}
    for name, ref in det.refs.items():
        w = ref.new_window()
        if ref.kind == "numeric":
            w.update(rng.normal(0.1, 1.0, n) if name == "y" else rng.gamma(2.0, 1.0, n))
        else:
            w.update(rng.choice(["a", "b", "c"], n, p=[0.45, 0.35, 0.2]))
        out[name] = w
    return out


@pytest.mark.parametrize("n", [1, 2, 7, 200, 399, KLL_K])
def test_the_exact_side_reads_quantiles_as_the_sketch_does_up_to_its_size(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    sk = kll_doubles_sketch(KLL_K)
    sk.update(x)
    assert not sk.is_estimation_mode()
    by_sketch = np.asarray(sk.get_quantiles(GRID.tolist()))
    xs = np.sort(x)
    assert np.array_equal(by_sketch, xs[np.minimum((GRID * n).astype(int), n - 1)])


def test_a_table_reads_back_exactly_from_its_bytes_and_refuses_other_bytes():
    t = ThresholdTable(np.array([1.0, 2.0, 4.0]), np.array([0.9, 0.5, 0.25]))
    back = ThresholdTable.from_bytes(t.to_bytes())
    assert np.array_equal(back.sizes, t.sizes)
    assert np.array_equal(back.values, t.values)
    with pytest.raises(ValueError, match="not a threshold table"):
        ThresholdTable.from_bytes(t.to_bytes()[:-1])
    # log-log interpolation between sizes, the last value past the end, none for no events
    assert t.at(2) == pytest.approx(0.5)
    assert t.at(3) == pytest.approx(
        np.exp(np.interp(np.log(3), np.log([2, 4]), np.log([0.5, 0.25])))
    )
    assert t.at(1000) == pytest.approx(0.25)
    assert t.at(0) == float("inf")


def test_fingerprints_name_what_a_table_depends_on():
    a = Detector(refs(1))
    b = Detector(refs(1))
    c = Detector(refs(2))
    d = Detector(refs(1), family_alpha=0.05)
    assert set(a.specs) == {"x", "y", "c"}
    for name in a.specs:
        assert a.specs[name].fingerprint == b.specs[name].fingerprint
        assert a.specs[name].fingerprint != c.specs[name].fingerprint
        assert a.specs[name].fingerprint != d.specs[name].fingerprint
    # a fixed threshold needs no table
    assert "x" not in Detector(refs(1), thresholds={"x": 0.3}).specs


def test_verdicts_are_the_same_precomputed_or_computed_at_the_first_close(monkeypatch):
    lazy = Detector(refs(3))
    lazy_verdicts = [lazy.evaluate(windows(lazy, s, n))[0] for s, n in ((1, 150), (2, 2500))]
    thresholds._CACHE.clear()
    ahead = Detector(refs(3))
    ahead.precompute()
    assert ahead.ready

    def never(self: ThresholdSpec) -> ThresholdTable:
        raise AssertionError("a window close computed a threshold table")

    monkeypatch.setattr(ThresholdSpec, "compute", never)
    ahead_verdicts = [ahead.evaluate(windows(ahead, s, n))[0] for s, n in ((1, 150), (2, 2500))]

    # the thresholds are the same (statistics of windows past KLL_K values are not: a
    # sketch's compaction is randomised)
    def seen(vs: list[list[Verdict]]) -> list[list[tuple[str, str, float]]]:
        return [[(v.feature, v.test, v.threshold) for v in w] for w in vs]

    assert seen(ahead_verdicts) == seen(lazy_verdicts)
    assert [v.statistic for v in ahead_verdicts[0]] == [v.statistic for v in lazy_verdicts[0]]
    assert any(v.test == "wasserstein" for v in ahead_verdicts[0])
    assert any(v.test == "jensen_shannon" for v in ahead_verdicts[0])


def test_the_table_follows_the_direct_bootstrap_between_its_sizes():
    """At a size between two of the table's, the interpolated threshold is within the
    bootstrap's own noise of the (1 - alpha) log-normal quantile computed at that size."""
    ref = refs(4)[0]
    det = Detector([ref])
    spec = det.specs["x"]
    table = table_for(spec)
    n = 600  # between 512 and 724
    sample = np.frombuffer(spec.data)
    rng = np.random.default_rng(12345)
    m = min(spec.n_ref, 4000)
    w = np.empty(400)
    for i in range(400):
        sk = kll_doubles_sketch(KLL_K)
        sk.update(rng.choice(sample, n))
        r = np.sort(rng.choice(sample, m))
        w[i] = np.abs(
            np.asarray(sk.get_quantiles(GRID.tolist()))
            - r[np.minimum((GRID * m).astype(int), m - 1)]
        ).mean()
    logw = np.log(w / sample.std())
    direct = float(np.exp(logw.mean() + norm.ppf(1 - spec.alpha) * logw.std(ddof=1)))
    assert table.at(n) == pytest.approx(direct, rel=0.12)
    assert table.sizes[0] == 1
    assert np.all(np.diff(table.sizes) > 0)
    assert table.values[-1] < spec.floor  # stopped where the floor takes over
