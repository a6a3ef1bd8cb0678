"""Model performance from labelled predictions, in mergeable per-window accumulators, and a
Page-Hinkley change detector on the error stream (concept drift).

Classification: a confusion matrix (accuracy; precision, recall and F1 for the declared
positive class of a binary task, else macro-averaged over the classes seen in the window's
labels or predictions, as scikit-learn's `average="macro"`; 0 where undefined, as its
`zero_division=0`), the summed log loss (probabilities clipped to [eps, 1 - eps], eps the
float64 machine epsilon, as scikit-learn), and for binary tasks with a
score the positive and negative classes' score histograms on 1,000 bins, from which ROC-AUC is
P(score of a positive > score of a negative) + P(tie) / 2: exact up to ties inside a bin
(|error| <= the share of pairs that share a bin). Regression: sums for MAE, RMSE and MAPE
(MAPE over non-zero actuals). Memory is fixed per window whatever the number of labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["AUC_BINS", "ClassificationWindow", "PageHinkley", "RegressionWindow", "label"]

AUC_BINS = 1000
_EPS = float(np.finfo(np.float64).eps)  # scikit-learn's clip for log loss


def label(v: Any) -> str:
    """One spelling per class: booleans as true/false, integral floats as integers."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass
class ClassificationWindow:
    positive: str | None = None  # binary tasks: the class precision/recall are about
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # actual -> predicted
    n: int = 0
    log_loss_sum: float = 0.0
    log_loss_n: int = 0
    pos_hist: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(AUC_BINS, np.int64))
    neg_hist: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(AUC_BINS, np.int64))

    def add(
        self,
        actual: Any,
        predicted: Any,
        probabilities: dict[str, float] | None = None,
    ) -> bool:
        """One labelled prediction; returns whether it was wrong (the error stream)."""
        a, p = label(actual), label(predicted)
        row = self.confusion.setdefault(a, {})
        row[p] = row.get(p, 0) + 1
        self.n += 1
        if probabilities:
            probs = {label(k): float(v) for k, v in probabilities.items()}
            if probs:  # a class without a probability counts as 0 (clipped to eps)
                self.log_loss_sum -= math.log(min(1 - _EPS, max(_EPS, probs.get(a, 0.0))))
                self.log_loss_n += 1
            pos = self.positive
            if pos is not None and pos in probs:
                b = min(AUC_BINS - 1, max(0, int(probs[pos] * AUC_BINS)))
                (self.pos_hist if a == pos else self.neg_hist)[b] += 1
        return a != p

    def merge(self, other: ClassificationWindow) -> None:
        for a, row in other.confusion.items():
            mine = self.confusion.setdefault(a, {})
            for p, k in row.items():
                mine[p] = mine.get(p, 0) + k
        self.n += other.n
        self.log_loss_sum += other.log_loss_sum
        self.log_loss_n += other.log_loss_n
        self.pos_hist += other.pos_hist
        self.neg_hist += other.neg_hist

    def metrics(self) -> dict[str, float]:
        if not self.n:
            return {}
        classes = sorted(set(self.confusion) | {p for r in self.confusion.values() for p in r})
        tp = {c: self.confusion.get(c, {}).get(c, 0) for c in classes}
        actual = {c: sum(self.confusion.get(c, {}).values()) for c in classes}
        predicted = {c: sum(r.get(c, 0) for r in self.confusion.values()) for c in classes}

        def prf(c: str) -> tuple[float, float, float]:
            t, pred, act = tp.get(c, 0), predicted.get(c, 0), actual.get(c, 0)
            p = t / pred if pred else 0.0
            r = t / act if act else 0.0
            f = 2 * t / (pred + act) if pred + act else 0.0  # = 2PR / (P + R)
            return p, r, f

        out = {"accuracy": sum(tp.values()) / self.n}
        if self.positive is not None:
            p, r, f = prf(self.positive)
        else:
            scores = [prf(c) for c in classes]
            p, r, f = (math.fsum(s[i] for s in scores) / len(scores) for i in range(3))
        out.update(precision=p, recall=r, f1=f)
        if self.log_loss_n:
            out["log_loss"] = self.log_loss_sum / self.log_loss_n
        auc = self.roc_auc()
        if auc is not None:
            out["roc_auc"] = auc
        return out

    def roc_auc(self) -> float | None:
        n_pos, n_neg = int(self.pos_hist.sum()), int(self.neg_hist.sum())
        if not n_pos or not n_neg:
            return None
        below = np.concatenate([[0], np.cumsum(self.neg_hist)[:-1]])  # negatives in lower bins
        wins = float((self.pos_hist * below).sum()) + 0.5 * float(
            (self.pos_hist * self.neg_hist).sum()
        )
        return wins / (n_pos * n_neg)

    def to_dict(self) -> dict[str, Any]:
        def nz(h: npt.NDArray[np.int64]) -> dict[str, int]:
            return {str(i): int(h[i]) for i in np.flatnonzero(h)}

        return {
            "task": "classification",
            "positive": self.positive,
            "confusion": self.confusion,
            "n": self.n,
            "log_loss_sum": self.log_loss_sum,
            "log_loss_n": self.log_loss_n,
            "pos_hist": nz(self.pos_hist),
            "neg_hist": nz(self.neg_hist),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassificationWindow:
        def hist(h: dict[str, int]) -> npt.NDArray[np.int64]:
            out = np.zeros(AUC_BINS, np.int64)
            for i, k in h.items():
                out[int(i)] = k
            return out

        return cls(
            d["positive"],
            {a: dict(r) for a, r in d["confusion"].items()},
            int(d["n"]),
            float(d["log_loss_sum"]),
            int(d["log_loss_n"]),
            hist(d["pos_hist"]),
            hist(d["neg_hist"]),
        )


@dataclass
class RegressionWindow:
    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    ape_sum: float = 0.0
    ape_n: int = 0

    def add(self, actual: float, predicted: float) -> float:
        """One labelled prediction; returns its absolute error (the error stream)."""
        err = float(predicted) - float(actual)
        self.n += 1
        self.abs_sum += abs(err)
        self.sq_sum += err * err
        if actual:
            self.ape_sum += abs(err / float(actual))
            self.ape_n += 1
        return abs(err)

    def merge(self, other: RegressionWindow) -> None:
        self.n += other.n
        self.abs_sum += other.abs_sum
        self.sq_sum += other.sq_sum
        self.ape_sum += other.ape_sum
        self.ape_n += other.ape_n

    def metrics(self) -> dict[str, float]:
        if not self.n:
            return {}
        out = {"mae": self.abs_sum / self.n, "rmse": math.sqrt(self.sq_sum / self.n)}
        if self.ape_n:
            out["mape"] = self.ape_sum / self.ape_n
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "regression",
            "n": self.n,
            "abs_sum": self.abs_sum,
            "sq_sum": self.sq_sum,
            "ape_sum": self.ape_sum,
            "ape_n": self.ape_n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegressionWindow:
        return cls(int(d["n"]), d["abs_sum"], d["sq_sum"], d["ape_sum"], int(d["ape_n"]))


@dataclass
class PageHinkley:
    """Page-Hinkley test for an increase in the mean of a stream (here: errors). `delta` is
    the change tolerated, `threshold` (lambda) how much cumulative excess raises an alarm,
    `min_samples` how many values come before any alarm. After an alarm it starts afresh."""

    delta: float = 0.005
    threshold: float = 50.0
    min_samples: int = 30
    n: int = 0
    mean: float = 0.0
    cum: float = 0.0
    cum_min: float = 0.0
    last_alarm: dict[str, float] = field(default_factory=dict)

    def update(self, x: float) -> bool:
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.cum += x - self.mean - self.delta
        self.cum_min = min(self.cum_min, self.cum)
        if self.n >= self.min_samples and self.cum - self.cum_min > self.threshold:
            self.last_alarm = {
                "statistic": self.cum - self.cum_min,
                "error_mean": self.mean,
                "samples": float(self.n),
            }
            self.reset()
            return True
        return False

    @property
    def statistic(self) -> float:
        return self.cum - self.cum_min

    def reset(self) -> None:
        self.n, self.mean, self.cum, self.cum_min = 0, 0.0, 0.0, 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "cum": self.cum, "cum_min": self.cum_min}

    def load(self, d: dict[str, Any]) -> None:
        self.n, self.mean = int(d["n"]), float(d["mean"])
        self.cum, self.cum_min = float(d["cum"]), float(d["cum_min"])
