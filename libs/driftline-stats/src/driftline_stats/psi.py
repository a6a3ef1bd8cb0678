"""Population Stability Index over binned counts (vectorised; smoothing of empty bins)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["population_stability_index"]


def population_stability_index(
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    *,
    epsilon: float = 1e-4,
) -> float:
    """PSI = sum((c - r) * ln(c / r)) over bin shares, with empty bins floored at `epsilon`.

    Both inputs are counts on the same bins (e.g. the reference's quantile edges).
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1 or ref.size == 0:
        raise ValueError("reference and current counts must be 1-D arrays of the same length")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("both distributions need at least one observation")
    r = np.clip(ref / ref.sum(), epsilon, None)
    c = np.clip(cur / cur.sum(), epsilon, None)
    return float(np.sum((c - r) * np.log(c / r)))
