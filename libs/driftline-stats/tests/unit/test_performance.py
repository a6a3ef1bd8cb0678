"""Performance metrics against direct computation (numpy, scipy), merge properties, and the
Page-Hinkley detector on streams with and without a change."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from driftline_stats.performance import (
    AUC_BINS,
    ClassificationWindow,
    PageHinkley,
    RegressionWindow,
    label,
)


def binary_stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    # scores on bin centres, so the histogram AUC has no within-bin ties to approximate
    raw = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 0.9999)
    score = (np.floor(raw * AUC_BINS) + 0.5) / AUC_BINS
    return y, score


def test_binary_metrics_equal_direct_computation():
    y, score = binary_stream(5000, 1)
    w = ClassificationWindow(positive="1")
    pred = score >= 0.5
    for a, p, s in zip(y, pred, score, strict=True):
        w.add(int(a), int(p), {"1": float(s), "0": 1 - float(s)})
    m = w.metrics()
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    assert math.isclose(m["accuracy"], float((pred == y).mean()), abs_tol=1e-12)
    assert math.isclose(m["precision"], tp / (tp + fp), abs_tol=1e-12)
    assert math.isclose(m["recall"], tp / (tp + fn), abs_tol=1e-12)
    assert math.isclose(m["f1"], 2 * tp / (2 * tp + fp + fn), abs_tol=1e-12)
    p_true = np.where(y, score, 1 - score)
    assert math.isclose(m["log_loss"], float(-np.log(p_true).mean()), rel_tol=1e-9)
    u = mannwhitneyu(score[y], score[~y]).statistic  # U / (n1 n0) is ROC-AUC, ties halved
    assert math.isclose(m["roc_auc"], u / (y.sum() * (~y).sum()), abs_tol=1e-12)


def test_multiclass_metrics_are_macro_averaged():
    w = ClassificationWindow()
    pairs = [("a", "a")] * 5 + [("a", "b")] * 1 + [("b", "b")] * 3 + [("c", "a")] * 1
    for a, p in pairs:
        w.add(a, p)
    m = w.metrics()
    # per class precision a 5/6, b 3/4, c 0; recall a 5/6, b 1, c 0
    assert math.isclose(m["accuracy"], 0.8)
    assert math.isclose(m["precision"], (5 / 6 + 3 / 4 + 0) / 3)
    assert math.isclose(m["recall"], (5 / 6 + 1 + 0) / 3)
    assert "roc_auc" not in m


def test_labels_are_spelled_one_way():
    assert label(True) == "true"
    assert label(1.0) == "1"
    assert label(1) == "1"
    assert label("x") == "x"


def test_regression_metrics_equal_numpy():
    rng = np.random.default_rng(3)
    actual = rng.normal(10, 3, 1000)
    actual[::97] = 0.0  # MAPE skips zero actuals
    predicted = actual + rng.normal(0, 1, 1000)
    w = RegressionWindow()
    for a, p in zip(actual, predicted, strict=True):
        w.add(a, p)
    m = w.metrics()
    err = predicted - actual
    nz = actual != 0
    assert math.isclose(m["mae"], float(np.abs(err).mean()), rel_tol=1e-12)
    assert math.isclose(m["rmse"], float(np.sqrt((err**2).mean())), rel_tol=1e-12)
    assert math.isclose(m["mape"], float(np.abs(err[nz] / actual[nz]).mean()), rel_tol=1e-12)


pairs = st.lists(
    st.tuples(st.sampled_from(["0", "1"]), st.sampled_from(["0", "1"]), st.floats(0, 1)),
    max_size=40,
)


def filled(items: list[tuple[str, str, float]]) -> ClassificationWindow:
    w = ClassificationWindow(positive="1")
    for a, p, s in items:
        w.add(a, p, {"1": s, "0": 1 - s})
    return w


@settings(max_examples=60, deadline=None)
@given(pairs, pairs, pairs)
def test_classification_windows_merge_associatively_into_the_union(a, b, c):
    left = filled(a)
    left.merge(filled(b))
    left.merge(filled(c))
    bc = filled(b)
    bc.merge(filled(c))
    right = filled(a)
    right.merge(bc)
    union = filled(a + b + c)
    for w in (left, right):
        assert w.to_dict()["confusion"] == union.to_dict()["confusion"]
        assert (w.pos_hist == union.pos_hist).all()
        assert (w.neg_hist == union.neg_hist).all()
        assert math.isclose(w.log_loss_sum, union.log_loss_sum, rel_tol=1e-9, abs_tol=1e-9)
    back = ClassificationWindow.from_dict(union.to_dict())
    assert back.to_dict() == union.to_dict()


def test_page_hinkley_is_quiet_on_a_stable_stream_and_fires_after_a_change():
    rng = np.random.default_rng(7)
    ph = PageHinkley()
    stable = rng.random(20_000) < 0.1
    assert not any(ph.update(float(e)) for e in stable)
    worse = rng.random(2_000) < 0.3
    fired = [i for i, e in enumerate(worse) if ph.update(float(e))]
    assert fired, "no alarm after the error rate tripled"
    assert fired[0] < 600, fired[:3]
    assert ph.last_alarm["error_mean"] > 0.1


def test_page_hinkley_state_round_trips():
    ph = PageHinkley()
    for e in [0, 1, 0, 0, 1]:
        ph.update(float(e))
    other = PageHinkley()
    other.load(ph.to_dict())
    assert other.to_dict() == ph.to_dict()
