"""PSI against its textbook formula, and its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftline_stats import psi as population_stability_index


def test_psi_matches_the_formula_on_shares():
    ref, cur = [50, 30, 20], [30, 30, 40]
    expected = sum(
        (c / 100 - r / 100) * math.log((c / 100) / (r / 100)) for r, c in zip(ref, cur, strict=True)
    )
    assert population_stability_index(ref, cur) == pytest.approx(expected, abs=1e-12)


def test_identical_distributions_have_zero_psi_and_empty_bins_are_smoothed():
    assert population_stability_index([5, 5, 0], [50, 50, 0]) == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(population_stability_index([10, 0], [0, 10]))


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        population_stability_index([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        population_stability_index([0, 0], [1, 1])
