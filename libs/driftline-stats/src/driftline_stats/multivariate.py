"""Multivariate drift by PCA reconstruction error (the method NannyML popularised).

The reference's numeric features are standardised and projected on the principal components
that explain `variance` of their variance; a row's reconstruction error is the distance
between it and its projection back. A change in how features move together raises the
error even when every marginal looks the same, which per-feature tests cannot see.

The components are fitted on half of a uniform sample of reference rows and the error's
distribution is measured on the other half, so the baseline is not flattered by overfitting.
A window keeps the sum and the sum of squares of its rows' errors (mergeable, 3 numbers).
It is flagged when its mean error is above the reference mean by more than chance allows for
its size (one-sided z at alpha) and by at least `MIN_RISE` of the reference mean.

Missing values are imputed with the reference mean, as NannyML does; categorical features
are not part of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

__all__ = ["MIN_RISE", "PCAReference", "PCAWindow"]

MIN_RISE = 0.1  # a mean error at least 10% above the reference's, whatever the window size


@dataclass
class PCAWindow:
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def merge(self, other: PCAWindow) -> None:
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total, "total_sq": self.total_sq}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PCAWindow:
        return cls(int(d["n"]), float(d["total"]), float(d["total_sq"]))


@dataclass(frozen=True)
class PCAReference:
    features: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    components: npt.NDArray[np.float64]  # (k, features)
    error_mean: float
    error_std: float
    rows: int

    @classmethod
    def fit(
        cls,
        features: list[str],
        rows: npt.ArrayLike,
        *,
        variance: float = 0.65,
        seed: int = 5,
    ) -> PCAReference | None:
        """From a sample of reference rows (NaN = missing); None when it cannot be fitted
        (fewer than two features or too few complete rows)."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(features) or len(features) < 2 or x.shape[0] < 40:
            return None
        mean = np.nanmean(x, axis=0)
        x = np.where(np.isnan(x), mean, x)
        scale = x.std(axis=0)
        keep = scale > 0
        if keep.sum() < 2:
            return None
        x, mean, scale = x[:, keep], mean[keep], scale[keep]
        names = tuple(f for f, k in zip(features, keep, strict=True) if k)
        z = (x - mean) / scale
        rng = np.random.default_rng(seed)
        order = rng.permutation(z.shape[0])
        fit_rows, test_rows = z[order[: z.shape[0] // 2]], z[order[z.shape[0] // 2 :]]
        _u, s, vt = np.linalg.svd(fit_rows - fit_rows.mean(axis=0), full_matrices=False)
        explained = np.cumsum(s**2) / np.sum(s**2)
        k = min(int(np.searchsorted(explained, variance)) + 1, len(names) - 1)
        comps = vt[:k]
        ref = cls(names, mean, scale, comps, 0.0, 0.0, int(x.shape[0]))
        err = ref.errors(test_rows, standardised=True)
        return cls(names, mean, scale, comps, float(err.mean()), float(err.std(ddof=1)), ref.rows)

    def errors(self, x: npt.NDArray[np.float64], *, standardised: bool = False) -> Any:
        """Reconstruction error per row of x (columns in `features` order, NaN = missing)."""
        if not standardised:
            x = np.where(np.isnan(x), self.mean, x)
            x = (x - self.mean) / self.scale
        recon = (x @ self.components.T) @ self.components
        return np.sqrt(((x - recon) ** 2).sum(axis=1))

    def update(self, w: PCAWindow, x: npt.NDArray[np.float64]) -> None:
        """Add rows (columns in `features` order) to a window. Rows where every feature is
        missing are left out."""
        x = x[~np.all(np.isnan(x), axis=1)]
        if x.size == 0:
            return
        e = self.errors(x)
        finite = np.isfinite(e)
        e = e[finite]
        w.n += int(e.size)
        w.total += float(e.sum())
        w.total_sq += float((e * e).sum())

    def threshold(self, n: int, alpha: float) -> float:
        # the baseline is itself estimated from the held-out half: both uncertainties count
        held_out = max(self.rows - self.rows // 2, 1)
        spread = self.error_std * np.sqrt(1 / max(n, 1) + 1 / held_out)
        by_chance = self.error_mean + float(norm.ppf(1 - alpha)) * spread
        return float(max(by_chance, self.error_mean * (1 + MIN_RISE)))

    def verdict(self, w: PCAWindow, alpha: float) -> tuple[float, float, bool]:
        """(window mean error, threshold, drifted)."""
        thr = self.threshold(w.n, alpha)
        return w.mean, thr, bool(w.n) and w.mean > thr

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "pca_reconstruction_error",
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "components": self.components.tolist(),
            "error_mean": self.error_mean,
            "error_std": self.error_std,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PCAReference:
        return cls(
            tuple(d["features"]),
            np.asarray(d["mean"], float),
            np.asarray(d["scale"], float),
            np.asarray(d["components"], float).reshape(-1, len(d["features"])),
            float(d["error_mean"]),
            float(d["error_std"]),
            int(d["rows"]),
        )
