"""PCA reconstruction error: sees a broken correlation that per-feature tests cannot, and
stays quiet on drift-free windows."""

from __future__ import annotations

import numpy as np

from driftline_stats.detector import Detector, FeatureReference
from driftline_stats.multivariate import PCAReference, PCAWindow
from driftline_stats.profile import ProfileBuilder


def rows(rng: np.random.Generator, n: int, corr: float = 0.9) -> np.ndarray:
    a = rng.normal(size=n)
    b = corr * a + np.sqrt(1 - corr**2) * rng.normal(size=n)
    c = rng.normal(2, 3, size=n)
    return np.c_[a, b, c]


def fitted(seed: int = 1) -> tuple[PCAReference, np.ndarray]:
    data = rows(np.random.default_rng(seed), 20_000)
    pb = ProfileBuilder({"a": "numeric", "b": "numeric", "c": "numeric"})
    pb.update({"a": data[:, 0], "b": data[:, 1], "c": data[:, 2]})
    profile = pb.finish()
    ref = PCAReference.from_dict(profile["multivariate"])
    return ref, data


def test_a_broken_correlation_is_flagged_while_each_feature_looks_the_same():
    ref, data = fitted()
    rng = np.random.default_rng(2)
    window = rows(rng, 1000, corr=-0.9)  # same marginals, opposite relation
    w = PCAWindow()
    ref.update(w, window)
    score, thr, drifted = ref.verdict(w, 0.01)
    assert drifted
    assert score > thr

    detector = Detector([FeatureReference.from_values(n, data[:, i]) for i, n in enumerate("abc")])
    wins = {r.name: r.new_window() for r in detector.refs.values()}
    for i, n in enumerate("abc"):
        wins[n].update(window[:, i])
    verdicts, _ = detector.evaluate(wins)
    assert not any(v.drifted for v in verdicts)


def test_drift_free_windows_are_rarely_flagged():
    ref, _ = fitted()
    rng = np.random.default_rng(3)
    alpha = 0.01 / 50  # what the service uses for 25 features (Bonferroni)
    for seed in range(5):  # several references: the baseline is a sample too
        ref, _ = fitted(seed + 10)
        flagged = 0
        for _ in range(300):
            w = PCAWindow()
            ref.update(w, rows(rng, 500))
            flagged += ref.verdict(w, alpha)[2]
        assert flagged <= 3, (seed, flagged)  # at most 1%


def test_missing_values_are_imputed_and_windows_merge():
    ref, _ = fitted()
    rng = np.random.default_rng(4)
    x = rows(rng, 200)
    x[::10, 1] = np.nan
    x[5] = np.nan  # a row with nothing is left out
    whole, a, b = PCAWindow(), PCAWindow(), PCAWindow()
    ref.update(whole, x)
    ref.update(a, x[:77])
    ref.update(b, x[77:])
    a.merge(b)
    assert whole.n == a.n == 199
    assert np.isclose(whole.total, a.total)
    assert np.isclose(whole.total_sq, a.total_sq)
    assert PCAReference.from_dict(ref.to_dict()).to_dict() == ref.to_dict()


def test_no_reference_when_it_cannot_be_fitted():
    assert PCAReference.fit(["a"], np.ones((100, 1))) is None
    assert PCAReference.fit(["a", "b"], np.ones((10, 2))) is None
