"""Per-window classification metrics equal scikit-learn's on the same labels (to 1e-9;
ROC-AUC within the histogram's binning bound): binary with a declared positive class,
multiclass macro averages over the classes seen, log loss with clipping, and the case the
demo hit (string classes, a positive class that does not sort last)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from driftline_stats.performance import AUC_BINS, ClassificationWindow


def _binning_bound(y: np.ndarray, score: np.ndarray) -> float:
    """Half the share of (positive, negative) pairs in one bin: the AUC's largest error."""
    bins = np.minimum((score * AUC_BINS).astype(int), AUC_BINS - 1)
    pos, neg = np.bincount(bins[y], minlength=AUC_BINS), np.bincount(bins[~y], minlength=AUC_BINS)
    return float((pos * neg).sum()) / (y.sum() * (~y).sum()) / 2


@pytest.mark.parametrize(("positive", "negative"), [("1", "0"), ("default", "repaid")])
def test_binary_metrics_equal_sklearn(positive: str, negative: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.random(4000) < 0.3
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    pred = score >= 0.5
    w = ClassificationWindow(positive=positive)
    for a, p, s in zip(y, pred, score, strict=True):
        w.add(
            positive if a else negative,
            positive if p else negative,
            {positive: float(s), negative: 1 - float(s)},
        )
    m = w.metrics()
    yt = np.where(y, positive, negative)
    yp = np.where(pred, positive, negative)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp), abs=1e-9)
    assert m["precision"] == pytest.approx(
        skm.precision_score(yt, yp, pos_label=positive), abs=1e-9
    )
    assert m["recall"] == pytest.approx(skm.recall_score(yt, yp, pos_label=positive), abs=1e-9)
    assert m["f1"] == pytest.approx(skm.f1_score(yt, yp, pos_label=positive), abs=1e-9)
    labels = sorted([positive, negative])
    proba = np.column_stack([score if c == positive else 1 - score for c in labels])
    assert m["log_loss"] == pytest.approx(skm.log_loss(yt, proba, labels=labels), abs=1e-9)
    auc = skm.roc_auc_score(y, score)
    assert abs(m["roc_auc"] - auc) <= _binning_bound(y, score) + 1e-12


def test_log_loss_clips_certain_mistakes_like_sklearn() -> None:
    w = ClassificationWindow(positive="1")
    w.add(1, 0, {"1": 0.0, "0": 1.0})
    w.add(0, 0, {"1": 0.2, "0": 0.8})
    expected = skm.log_loss([1, 0], [[1.0, 0.0], [0.8, 0.2]], labels=[0, 1])
    assert w.metrics()["log_loss"] == pytest.approx(expected, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["a", "b", "c", "e"])),
        min_size=1,
        max_size=200,
    )
)
def test_macro_metrics_without_a_positive_class_equal_sklearn(pairs: list[tuple[str, str]]) -> None:
    w = ClassificationWindow()
    for a, p in pairs:
        w.add(a, p)
    m = w.metrics()
    yt, yp = [a for a, _ in pairs], [p for _, p in pairs]
    kw = {"average": "macro", "zero_division": 0}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp), abs=1e-9)
    assert m["precision"] == pytest.approx(skm.precision_score(yt, yp, **kw), abs=1e-9)
    assert m["recall"] == pytest.approx(skm.recall_score(yt, yp, **kw), abs=1e-9)
    assert m["f1"] == pytest.approx(skm.f1_score(yt, yp, **kw), abs=1e-9)


def test_merged_windows_give_the_metrics_of_one_window() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(1000) < 0.5
    score = rng.random(1000)
    whole, left, right = (ClassificationWindow(positive="1") for _ in range(3))
    for k, (a, s) in enumerate(zip(y, score, strict=True)):
        probs = {"1": float(s), "0": 1 - float(s)}
        whole.add(int(a), int(s >= 0.5), probs)
        (left if k % 2 else right).add(int(a), int(s >= 0.5), probs)
    left.merge(right)
    for name, value in whole.metrics().items():
        assert left.metrics()[name] == pytest.approx(value, abs=1e-12)
