"""Per-window drift verdicts for every feature of a model, from its reference and a window
profile. Default tests follow Evidently's rules for choosing (KS, chi-squared or Z for small
references; Wasserstein or Jensen-Shannon beyond 1,000 rows) but every threshold is
calibrated for the window at hand (see `thresholds`), so drift-free windows are flagged at
the chosen family-wise rate whatever their size. A rise in the missing rate is drift too.

Pure numerics: the reference comes in as arrays, windows as `window` profiles."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

from . import drift
from .profile import PREDICTION
from .thresholds import (
    _BINNED,
    FLOORS,
    GRID,
    ThresholdSpec,
    ThresholdTable,
    binned_threshold,
    bonferroni,
    cached,
    table_for,
)
from .window import CategoricalWindow, NumericWindow

__all__ = ["GRID", "Detector", "FeatureReference", "Verdict"]

SMALL_REFERENCE = 1000
MISSING_FLOOR = 0.02  # at least 2 points more missing (and significant at alpha)
Test = Literal[
    "auto",
    "ks",
    "psi",
    "jensen_shannon",
    "wasserstein",
    "hellinger",
    "chi_squared",
    "z",
    "total_variation",
]


@dataclass(frozen=True)
class FeatureReference:
    name: str
    kind: Literal["numeric", "categorical"]
    n: int  # reference rows with a value
    missing_rate: float
    edges: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    bin_counts: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    sample: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    std: float = 1.0
    lo: float | None = None
    hi: float | None = None
    categories: tuple[str, ...] = ()
    category_counts: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    grid_quantiles: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def quantiles(self) -> npt.NDArray[np.float64]:
        if self.grid_quantiles.size:
            return self.grid_quantiles
        return np.quantile(self.sample, GRID) if self.sample.size else np.zeros(GRID.size)

    @classmethod
    def from_values(
        cls,
        name: str,
        values: npt.ArrayLike,
        *,
        categorical: bool = False,
        bins: int = 10,
        sample_size: int = 2000,
        seed: int = 3,
        lo: float | None = None,
        hi: float | None = None,
    ) -> FeatureReference:
        """A reference from raw data (tests, and references computed in-process)."""
        raw = np.asarray(values, dtype=object)
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in raw])
        present = raw[~missing]
        rate = float(missing.mean()) if raw.size else 0.0
        if categorical:
            cats, counts = np.unique(present.astype(str), return_counts=True)
            return cls(
                name,
                "categorical",
                int(present.size),
                rate,
                categories=tuple(cats),
                category_counts=counts.astype(float),
            )
        x = present.astype(float)
        edges = np.unique(np.quantile(x, np.arange(1, bins) / bins))
        counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
        rng = np.random.default_rng(seed)
        sample = x if x.size <= sample_size else rng.choice(x, sample_size, replace=False)
        return cls(
            name,
            "numeric",
            int(x.size),
            rate,
            edges=edges,
            bin_counts=counts.astype(float),
            sample=np.sort(sample),
            std=float(x.std()),
            lo=lo,
            hi=hi,
            grid_quantiles=np.quantile(x, GRID),
        )

    @classmethod
    def from_profile(cls, name: str, p: dict[str, Any]) -> FeatureReference:
        """From a stored reference profile (driftline-stats ProfileBuilder's output); the
        reference quantiles come from its KLL sketch of all the rows."""
        n, missing = int(p["count"]), int(p["missing"])
        rate = missing / (n + missing) if n + missing else 0.0
        if p["kind"] in ("categorical", "boolean"):
            cats = dict(p["categories"])
            return cls(
                name,
                "categorical",
                n,
                rate,
                categories=tuple(cats),
                category_counts=np.asarray(list(cats.values()), float),
            )
        sketch = kll_doubles_sketch.deserialize(base64.b64decode(p["kll"]))
        return cls(
            name,
            "numeric",
            n,
            rate,
            edges=np.asarray(p["histogram"]["edges"], float),
            bin_counts=np.asarray(p["histogram"]["counts"], float),
            sample=np.sort(np.asarray(p["sample"], float)),
            std=float(p["std"]),
            grid_quantiles=np.asarray(sketch.get_quantiles(GRID.tolist()), float),
        )

    def to_dict(self, sample_size: int = 500) -> dict[str, Any]:
        """Compact form (~10 KB per numeric feature) that travels on driftline.registry.v1."""
        sample = self.sample
        if sample.size > sample_size:
            sample = np.quantile(sample, (np.arange(sample_size) + 0.5) / sample_size)
        return {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "missing_rate": self.missing_rate,
            "edges": self.edges.tolist(),
            "bin_counts": self.bin_counts.tolist(),
            "sample": np.round(sample, 9).tolist(),
            "std": self.std,
            "lo": self.lo,
            "hi": self.hi,
            "categories": list(self.categories),
            "category_counts": self.category_counts.tolist(),
            "grid_quantiles": self.quantiles.tolist() if self.kind == "numeric" else [],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureReference:
        return cls(
            d["name"],
            d["kind"],
            int(d["n"]),
            float(d["missing_rate"]),
            edges=np.asarray(d["edges"], float),
            bin_counts=np.asarray(d["bin_counts"], float),
            sample=np.asarray(d["sample"], float),
            std=float(d["std"]),
            lo=d["lo"],
            hi=d["hi"],
            categories=tuple(d["categories"]),
            category_counts=np.asarray(d["category_counts"], float),
            grid_quantiles=np.asarray(d["grid_quantiles"], float),
        )

    def new_window(self) -> NumericWindow | CategoricalWindow:
        if self.kind == "numeric":
            return NumericWindow(edges=self.edges, lo=self.lo, hi=self.hi)
        return CategoricalWindow(categories=list(self.categories))


@dataclass(frozen=True)
class Verdict:
    feature: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool


class Detector:
    def __init__(
        self,
        references: list[FeatureReference],
        *,
        family_alpha: float = 0.01,
        tests: dict[str, Test] | None = None,
        thresholds: dict[str, float] | None = None,
    ) -> None:
        self.refs = {r.name: r for r in references}
        self.alpha = bonferroni(family_alpha, 2 * len(references))  # values and missingness
        self.tests = tests or {}
        self.fixed = thresholds or {}
        self.specs = {
            r.name: spec for r in references if (spec := self._spec(r)) is not None
        }  # bootstrapped thresholds: computed ahead (`precompute`), else at first use
        self._tables: dict[str, ThresholdTable] = {}
        self._complete = not self.specs

    def _spec(self, ref: FeatureReference) -> ThresholdSpec | None:
        """What this feature's bootstrapped threshold depends on (None: it needs none)."""
        test = self.choose(ref)
        if ref.name in self.fixed:
            return None
        if ref.kind == "numeric" and test == "wasserstein":
            data = np.ascontiguousarray(ref.sample, np.float64).tobytes()
            return ThresholdSpec("wasserstein", self.alpha, ref.n, data, FLOORS["wasserstein"])
        if test not in _BINNED:
            return None
        counts = ref.bin_counts if ref.kind == "numeric" else np.append(ref.category_counts, 0.0)
        clipped = np.clip(np.asarray(counts, float), 1e-9, None)
        if clipped.size == 0:
            return None
        shares = np.round(clipped / clipped.sum(), 6).astype(np.float64)
        n_ref = int(min(float(clipped.sum()), 1e6))
        return ThresholdSpec(test, self.alpha, n_ref, shares.tobytes(), FLOORS.get(test, 0.0))

    def missing(self) -> dict[str, ThresholdSpec]:
        """Specs (by fingerprint) whose tables this detector does not hold yet."""
        if self._complete:
            return {}
        out = {}
        for name, spec in self.specs.items():
            if name in self._tables:
                continue
            table = cached(spec.fingerprint)
            if table is not None:
                self._tables[name] = table
            else:
                out[spec.fingerprint] = spec
        self._complete = not out
        return out

    def precompute(self) -> None:
        """Every table of this detector, now (a window close then never computes one)."""
        for name, spec in self.specs.items():
            if name not in self._tables:
                self._tables[name] = table_for(spec)
        self._complete = True

    @property
    def ready(self) -> bool:
        """Whether every table is held (a window close then computes none)."""
        return self._complete or not self.missing()

    def _threshold(self, name: str, n: int) -> float | None:
        spec = self.specs.get(name)
        if spec is None:
            return None
        table = self._tables.get(name)
        if table is None:  # not precomputed (yet): computed now, once
            table = self._tables[name] = table_for(spec)
        return max(spec.floor, table.at(n))

    def choose(self, ref: FeatureReference) -> Test:
        chosen = self.tests.get(ref.name, "auto")
        if chosen != "auto":
            return chosen
        small = ref.n <= SMALL_REFERENCE
        if ref.kind == "numeric":
            return "ks" if small else "wasserstein"
        if len(ref.categories) == 2 and small:
            return "z"
        return "chi_squared" if small else "jensen_shannon"

    def evaluate(
        self, windows: dict[str, NumericWindow | CategoricalWindow]
    ) -> tuple[list[Verdict], float]:
        """Verdicts per feature (values, or missingness where that is what moved) and the
        share of drifted features. The prediction (`PREDICTION`) gets a verdict too, but it is
        not a feature: it does not count in the share."""
        verdicts = []
        for name, ref in self.refs.items():
            w = windows.get(name)
            if w is None or w.n == 0:
                continue
            v = self._values(ref, w)
            m = self._missing(ref, w)
            verdicts.append(m if (m.drifted and not v.drifted) else v)
        feats = [v for v in verdicts if v.feature != PREDICTION]
        share = sum(v.drifted for v in feats) / len(feats) if feats else 0.0
        return verdicts, share

    def _values(self, ref: FeatureReference, w: NumericWindow | CategoricalWindow) -> Verdict:
        test = self.choose(ref)
        fixed = self.fixed.get(ref.name)
        if isinstance(w, NumericWindow):
            if test == "ks":
                d, p = drift.ks_from_quantiles(ref.quantiles, w.quantiles(GRID), ref.n, w.n)
                return Verdict(ref.name, "ks", d, p, self.alpha, p < self.alpha)
            if test == "wasserstein":
                stat = drift.wasserstein_from_quantiles(ref.quantiles, w.quantiles(GRID), ref.std)
                thr = fixed or self._threshold(ref.name, w.n) or FLOORS["wasserstein"]
                return Verdict(ref.name, "wasserstein", stat, None, thr, stat > thr)
            return self._binned(ref.name, test, ref.bin_counts, w.counts, fixed)
        counts = w.with_unseen()
        ref_counts = np.append(ref.category_counts, 0.0)
        if test == "chi_squared":
            chi, p_chi = drift.chi_squared(ref_counts, counts)
            return Verdict(
                ref.name,
                "chi_squared",
                float(chi),
                float(p_chi),
                self.alpha,
                float(p_chi) < self.alpha,
            )
        if test == "z":
            z, p_z = drift.z_test_proportions(
                ref.category_counts[0], ref.category_counts.sum(), counts[0], counts.sum()
            )
            return Verdict(ref.name, "z", float(z), float(p_z), self.alpha, float(p_z) < self.alpha)
        return self._binned(ref.name, test, ref_counts, counts, fixed)

    def _binned(
        self,
        name: str,
        test: str,
        ref_counts: npt.ArrayLike,
        counts: npt.ArrayLike,
        fixed: float | None,
    ) -> Verdict:
        stat = float(np.asarray(getattr(drift, test)(ref_counts, counts)))
        n = int(np.sum(counts))
        thr = (
            fixed
            or self._threshold(name, n)
            or binned_threshold(
                test, np.clip(np.asarray(ref_counts, float), 1e-9, None), n, self.alpha
            )
        )
        return Verdict(name, test, stat, None, thr, stat > thr)

    def _missing(self, ref: FeatureReference, w: NumericWindow | CategoricalWindow) -> Verdict:
        total = w.n + w.missing
        p0 = ref.missing_rate
        ref_total = ref.n / (1 - p0) if p0 < 1 else ref.n
        _z, p = drift.z_test_proportions(p0 * ref_total, ref_total, w.missing, total)
        moved = float(w.missing / total - p0) if total else 0.0
        drifted = float(p) < self.alpha and moved > MISSING_FLOOR
        return Verdict(ref.name, "missing_rate", moved, float(p), MISSING_FLOOR, drifted)
