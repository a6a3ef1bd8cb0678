"""Thresholds calibrated for the window at hand. Under no drift a window's counts on the
reference's bins are Multinomial(n, reference shares); simulating that gives the exact null
distribution of any binned statistic for this window size and these bins. The threshold is
its (1 - alpha) quantile, never below a floor of practical significance, so huge windows
are not flagged for differences nobody cares about. p-value tests use alpha directly.

alpha is per feature; with `family_alpha` over k features, Bonferroni gives alpha = a / k,
so at most `family_alpha` of drift-free windows have any feature flagged."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from . import drift

__all__ = ["FLOORS", "binned_threshold", "bonferroni"]

# effect sizes below which a shift is not worth an alert, whatever the window size
FLOORS = {
    "psi": 0.1,
    "jensen_shannon": 0.1,
    "hellinger": 0.1,
    "total_variation": 0.1,
    "wasserstein": 0.1,
}

_BINNED: dict[str, Callable[..., npt.NDArray[np.float64] | float]] = {
    "psi": drift.psi,
    "jensen_shannon": drift.jensen_shannon,
    "hellinger": drift.hellinger,
    "total_variation": drift.total_variation,
}


def bonferroni(family_alpha: float, features: int) -> float:
    return family_alpha / max(1, features)


@lru_cache(maxsize=4096)
def _null_quantile(
    test: str,
    shares: tuple[float, ...],
    n: int,
    n_ref: int,
    alpha: float,
    replicates: int,
    seed: int,
) -> float:
    """Both the reference and the window are samples of one distribution under no drift:
    simulate both. Categories the reference never saw keep probability zero."""
    rng = np.random.default_rng(seed)
    p = np.asarray(shares)
    p = p / p.sum()
    cur = rng.multinomial(n, p, size=replicates)
    ref = rng.multinomial(n_ref, p, size=replicates) + 1e-9
    values = np.asarray(_BINNED[test](ref, cur), dtype=np.float64)
    return float(np.quantile(values, 1 - alpha))


def binned_threshold(
    test: str,
    ref_counts: npt.ArrayLike,
    n: int,
    alpha: float,
    *,
    replicates: int | None = None,
    seed: int = 7,
    floor: float | None = None,
) -> float:
    """Threshold for a binned statistic on a window of n events (cached per bins and n;
    n is rounded to 2 significant digits so nearby window sizes share the work)."""
    if n <= 0:
        return float("inf")
    shares = tuple(np.round(np.asarray(ref_counts, float) / np.sum(ref_counts), 6).tolist())
    n_key = int(float(f"{n:.2g}"))
    reps = replicates or int(min(200_000, max(2_000, 20 / alpha)))
    n_ref = int(min(float(np.sum(ref_counts)), 1e6))
    q = _null_quantile(test, shares, max(1, n_key), n_ref, alpha, reps, seed)
    return max(q, FLOORS.get(test, 0.0) if floor is None else floor)
