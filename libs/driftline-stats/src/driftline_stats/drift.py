"""Drift statistics between a reference and a window. Binned ones take counts on the same
bins and accept a 2-D array of windows (one per row), so thresholds can be calibrated by
simulating thousands of windows at once. Each equals scipy's computation where scipy has
one (tests check it to 1e-9)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "chi_squared",
    "hellinger",
    "jensen_shannon",
    "ks_exact",
    "ks_from_quantiles",
    "psi",
    "total_variation",
    "wasserstein_from_quantiles",
    "z_test_proportions",
]

Arr = npt.NDArray[np.float64]
EPS = 1e-4  # floor for empty bins in PSI (and only there: the others handle zeros)


def _shares(counts: npt.ArrayLike) -> Arr:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError("counts must be 1-D (or a batch of rows) with at least one bin")
    total = c.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("each distribution needs at least one observation")
    return np.asarray(c / total, dtype=np.float64)


def _pair(ref: npt.ArrayLike, cur: npt.ArrayLike) -> tuple[Arr, Arr]:
    p, q = _shares(ref), _shares(cur)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError("reference and current counts must be on the same bins (same length)")
    return p, q


def psi(ref: npt.ArrayLike, cur: npt.ArrayLike, eps: float = EPS) -> Arr | float:
    """Population Stability Index on bin shares, empty bins floored at `eps`."""
    p, q = _pair(ref, cur)
    p, q = np.clip(p, eps, None), np.clip(q, eps, None)
    out = np.sum((q - p) * np.log(q / p), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def jensen_shannon(ref: npt.ArrayLike, cur: npt.ArrayLike) -> Arr | float:
    """Jensen-Shannon distance, base 2 (0..1); = scipy.spatial.distance.jensenshannon."""
    p, q = _pair(ref, cur)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=-1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=-1)
    out = np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0))
    return float(out) if np.ndim(out) == 0 else out


def hellinger(ref: npt.ArrayLike, cur: npt.ArrayLike) -> Arr | float:
    p, q = _pair(ref, cur)
    out = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1) / 2)
    return float(out) if np.ndim(out) == 0 else out


def total_variation(ref: npt.ArrayLike, cur: npt.ArrayLike) -> Arr | float:
    p, q = _pair(ref, cur)
    out = 0.5 * np.abs(p - q).sum(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def chi_squared(ref: npt.ArrayLike, cur: npt.ArrayLike) -> tuple[float, float]:
    """Two-sample chi-squared test of homogeneity on the 2 x k table of counts (the
    reference is a sample too): (statistic, p). = scipy.stats.chi2_contingency without
    continuity correction; categories neither sample has are left out."""
    table = np.vstack([np.asarray(ref, np.float64), np.asarray(cur, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, float(special.chdtrc(table.shape[1] - 1, stat))


def z_test_proportions(
    ref_k: float, ref_n: float, cur_k: npt.ArrayLike, cur_n: npt.ArrayLike
) -> tuple[Arr | float, Arr | float]:
    """Two-proportion z-test (pooled), for binary features: (z, two-sided p)."""
    k, n = np.asarray(cur_k, np.float64), np.asarray(cur_n, np.float64)
    p1, p2 = ref_k / ref_n, k / n
    pooled = (ref_k + k) / (ref_n + n)
    se = np.sqrt(pooled * (1 - pooled) * (1 / ref_n + 1 / n))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p2 - p1) / se, 0.0)
    pval = 2 * special.ndtr(-np.abs(z))  # the normal tail as a ufunc: no per-call overhead
    if np.ndim(z) == 0:
        return float(z), float(pval)
    return z, pval


def ks_exact(ref: npt.ArrayLike, cur: npt.ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov on raw values (scipy; exact p for small samples)."""
    r = stats.ks_2samp(np.asarray(ref, float), np.asarray(cur, float))
    return float(r.statistic), float(r.pvalue)


def ks_from_quantiles(
    ref_q: npt.ArrayLike, cur_q: npt.ArrayLike, n_ref: int, n_cur: int
) -> tuple[float, float]:
    """KS between two distributions known by quantiles on the same grid (from sketches):
    the largest gap between their CDFs, evaluated at every quantile point of both; p from
    the asymptotic Kolmogorov distribution. The sketch's rank error (~1.3% at k=200) bounds
    the error of the statistic."""
    a, b = np.sort(np.asarray(ref_q, float)), np.sort(np.asarray(cur_q, float))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    d = float(np.max(np.abs(fa - fb)))
    en = np.sqrt(n_ref * n_cur / (n_ref + n_cur))
    return d, float(special.kolmogorov(d * en))


def wasserstein_from_quantiles(ref_q: npt.ArrayLike, cur_q: npt.ArrayLike, scale: float) -> float:
    """W1 = integral of |Q_ref(u) - Q_cur(u)| du, from quantiles on a common grid of
    midpoints u_i = (i + 0.5) / m, divided by `scale` (the reference's standard deviation)
    so thresholds do not depend on units. For two equal-size samples, their sorted values
    are these quantiles and this equals scipy.stats.wasserstein_distance."""
    a, b = np.sort(np.asarray(ref_q, float)), np.sort(np.asarray(cur_q, float))
    if a.size != b.size:
        raise ValueError("quantiles must be on the same grid")
    w = float(np.mean(np.abs(a - b)))
    return w / scale if scale > 0 else w
