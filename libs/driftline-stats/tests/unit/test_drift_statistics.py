"""Drift statistics equal scipy's where scipy computes the same thing (1e-9 on exact paths),
binned ones work on a batch of windows at once, and sketch paths stay within their bounds."""

from __future__ import annotations

import numpy as np
import pytest
from datasketches import kll_doubles_sketch
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftline_stats import drift

RNG = np.random.default_rng(42)
REF = RNG.integers(1, 500, size=12).astype(float)
CUR = RNG.integers(0, 500, size=12).astype(float)


def test_jensen_shannon_equals_scipy():
    assert drift.jensen_shannon(REF, CUR) == pytest.approx(
        jensenshannon(REF / REF.sum(), CUR / CUR.sum(), base=2), abs=1e-9
    )


def test_chi_squared_is_scipys_two_sample_test_of_homogeneity():
    stat, p = drift.chi_squared(REF, CUR)
    expected = stats.chi2_contingency(np.vstack([REF, CUR]), correction=False)
    assert stat == pytest.approx(expected.statistic, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, abs=1e-9)


def test_hellinger_total_variation_and_psi_match_their_formulas():
    p, q = REF / REF.sum(), CUR / CUR.sum()
    assert drift.hellinger(REF, CUR) == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(p * q))), abs=1e-9)
    assert drift.total_variation(REF, CUR) == pytest.approx(0.5 * np.abs(p - q).sum(), abs=1e-12)
    pc, qc = np.clip(p, 1e-4, None), np.clip(q, 1e-4, None)
    assert drift.psi(REF, CUR) == pytest.approx(np.sum((qc - pc) * np.log(qc / pc)), abs=1e-12)


def test_binned_statistics_accept_a_batch_of_windows():
    windows = RNG.multinomial(1000, REF / REF.sum(), size=50)
    for fn in (drift.psi, drift.jensen_shannon, drift.hellinger, drift.total_variation):
        batch = fn(REF, windows)
        assert batch.shape == (50,)
        assert batch[7] == pytest.approx(fn(REF, windows[7]), abs=1e-12)


def test_two_proportion_z_test_equals_the_textbook_formula():
    z, p = drift.z_test_proportions(300, 1000, 360, 1000)
    pooled = 660 / 2000
    z_ref = (0.36 - 0.30) / np.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert z == pytest.approx(z_ref, abs=1e-12)
    assert p == pytest.approx(2 * stats.norm.sf(abs(z_ref)), abs=1e-12)


def test_exact_ks_is_scipys():
    a, b = RNG.normal(size=300), RNG.normal(0.2, 1, size=200)
    d, p = drift.ks_exact(a, b)
    r = stats.ks_2samp(a, b)
    assert (d, p) == (pytest.approx(r.statistic, abs=1e-12), pytest.approx(r.pvalue, abs=1e-12))


def test_wasserstein_on_equal_samples_equals_scipy_and_is_normalised_by_scale():
    a, b = RNG.normal(size=2000), RNG.normal(0.3, 1.5, size=2000)
    assert drift.wasserstein_from_quantiles(a, b, scale=1.0) == pytest.approx(
        stats.wasserstein_distance(a, b), abs=1e-9
    )
    assert drift.wasserstein_from_quantiles(a, b, scale=2.0) == pytest.approx(
        stats.wasserstein_distance(a, b) / 2, abs=1e-9
    )


def test_sketch_ks_is_within_the_sketch_error_of_the_exact_statistic():
    a, b = RNG.normal(size=50_000), RNG.normal(0.05, 1, size=40_000)
    sa, sb = kll_doubles_sketch(200), kll_doubles_sketch(200)
    sa.update(a)
    sb.update(b)
    grid = np.linspace(0.0005, 0.9995, 1000)
    d, p = drift.ks_from_quantiles(
        sa.get_quantiles(grid.tolist()), sb.get_quantiles(grid.tolist()), a.size, b.size
    )
    exact = stats.ks_2samp(a, b).statistic
    assert abs(d - exact) < 2 * sa.normalized_rank_error(False) + 0.002
    assert 0 <= p <= 1
