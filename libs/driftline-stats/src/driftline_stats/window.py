"""Mergeable per-feature window profiles, updated with whole numpy batches.

Numeric: counts on the reference's histogram bins (so binned tests need no raw data), a KLL
quantile sketch (Apache DataSketches), moments, min/max, and missing / non-finite /
out-of-range counts. Categorical: counts of the reference's categories and of unseen ones.
Two profiles of the same feature and window merge into the profile of the union."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from datasketches import kll_doubles_sketch

__all__ = ["CategoricalWindow", "NumericWindow", "update_numeric"]

KLL_K = 400


@dataclass
class NumericWindow:
    edges: npt.NDArray[np.float64]  # inner bin edges from the reference (len = bins - 1)
    lo: float | None = None  # expected range (out-of-range counting)
    hi: float | None = None
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = np.inf
    max: float = -np.inf
    missing: int = 0
    non_finite: int = 0
    out_of_range: int = 0
    sketch: Any = None

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.float64)
        if self.counts.size == 0:
            self.counts = np.zeros(self.edges.size + 1, np.int64)
        if self.sketch is None:
            self.sketch = kll_doubles_sketch(KLL_K)

    def update(self, values: npt.ArrayLike, missing: int = 0) -> None:
        x = np.asarray(values, dtype=np.float64)
        self.missing += missing + int(np.isnan(x).sum())
        finite = np.isfinite(x)
        self.non_finite += int((~finite & ~np.isnan(x)).sum())
        x = x[finite]
        if x.size == 0:
            return
        if self.lo is not None:
            self.out_of_range += int((x < self.lo).sum())
        if self.hi is not None:
            self.out_of_range += int((x > self.hi).sum())
        self.counts += np.bincount(
            np.searchsorted(self.edges, x, side="right"), minlength=self.counts.size
        )
        self._add_moments(x.size, float(x.mean()), float(((x - x.mean()) ** 2).sum()))
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        self.sketch.update(x)

    def _add_moments(self, n_b: int, mean_b: float, m2_b: float) -> None:
        n_a, total = self.n, self.n + n_b
        if total == 0:
            return
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * n_a * n_b / total
        self.n = total

    def merge(self, other: NumericWindow) -> None:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge windows profiled on different reference bins")
        self.counts += other.counts
        self._add_moments(other.n, other.mean, other.m2)
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.missing += other.missing
        self.non_finite += other.non_finite
        self.out_of_range += other.out_of_range
        self.sketch.merge(other.sketch)

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0

    def quantiles(self, qs: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(self.sketch.get_quantiles(list(np.asarray(qs, float))), np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "lo": self.lo,
            "hi": self.hi,
            "counts": self.counts.tolist(),
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
            "missing": self.missing,
            "non_finite": self.non_finite,
            "out_of_range": self.out_of_range,
            "kll": base64.b64encode(self.sketch.serialize()).decode(),
        }

    def to_compact(self) -> dict[str, Any]:
        """`to_dict` in binary form (for MessagePack): arrays as float64/int64 bytes, the
        sketch as its own compact serialisation."""
        return {
            "edges": self.edges.astype("<f8").tobytes(),
            "lo": self.lo,
            "hi": self.hi,
            "counts": self.counts.astype("<i8").tobytes(),
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
            "missing": self.missing,
            "non_finite": self.non_finite,
            "out_of_range": self.out_of_range,
            "kll": self.sketch.serialize(),
        }

    @classmethod
    def from_compact(cls, d: dict[str, Any]) -> NumericWindow:
        return cls(
            edges=np.frombuffer(d["edges"], "<f8").astype(np.float64),
            lo=d["lo"],
            hi=d["hi"],
            counts=np.frombuffer(d["counts"], "<i8").astype(np.int64),
            n=d["n"],
            mean=d["mean"],
            m2=d["m2"],
            min=d["min"],
            max=d["max"],
            missing=d["missing"],
            non_finite=d["non_finite"],
            out_of_range=d["out_of_range"],
            sketch=kll_doubles_sketch.deserialize(bytes(d["kll"])),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericWindow:
        return cls(
            edges=np.asarray(d["edges"]),
            lo=d["lo"],
            hi=d["hi"],
            counts=np.asarray(d["counts"], np.int64),
            n=d["n"],
            mean=d["mean"],
            m2=d["m2"],
            min=d["min"],
            max=d["max"],
            missing=d["missing"],
            non_finite=d["non_finite"],
            out_of_range=d["out_of_range"],
            sketch=kll_doubles_sketch.deserialize(base64.b64decode(d["kll"])),
        )


@dataclass
class CategoricalWindow:
    categories: list[str]  # the reference's categories, in a fixed order
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    unseen: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    max_unseen: int = 256  # distinct unseen values kept by name; the rest are summed

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.categories)}
        if self.counts.size == 0:
            self.counts = np.zeros(len(self.categories), np.int64)
        self.unseen_other = 0

    def update(self, values: npt.ArrayLike, missing: int = 0) -> None:
        if isinstance(values, list):
            tally = Counter(values)
            if all(type(c) is str for c in tally):  # else 1, 1.0 and True share a key
                self.missing += missing
                self.add_counts(tally)
                return
        cats, n = np.unique(np.asarray(values, dtype=str), return_counts=True)
        self.missing += missing
        self._add(cats.tolist(), n.tolist())

    def add_counts(self, counts: Mapping[str, int]) -> None:
        """`update` with values already counted (`collections.Counter` of strings): the
        same counts, unseen values named in sorted order as `update` names them."""
        items = sorted(counts.items())
        self._add([c for c, _ in items], [k for _, k in items])

    def _add(self, cats: list[str], n: list[int]) -> None:
        for c, k in zip(cats, n, strict=True):
            i = self._index.get(c)
            if i is not None:
                self.counts[i] += k
            elif c in self.unseen or len(self.unseen) < self.max_unseen:
                self.unseen[c] = self.unseen.get(c, 0) + k
            else:
                self.unseen_other += k

    def merge(self, other: CategoricalWindow) -> None:
        if self.categories != other.categories:
            raise ValueError("cannot merge windows profiled on different reference categories")
        self.counts += other.counts
        self.missing += other.missing
        for c, k in other.unseen.items():
            if c in self.unseen or len(self.unseen) < self.max_unseen:
                self.unseen[c] = self.unseen.get(c, 0) + k
            else:
                self.unseen_other += k
        self.unseen_other += other.unseen_other

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + sum(self.unseen.values()) + self.unseen_other

    @property
    def unseen_total(self) -> int:
        return sum(self.unseen.values()) + self.unseen_other

    def with_unseen(self) -> npt.NDArray[np.int64]:
        """Counts on the reference's categories plus one bucket for everything unseen."""
        return np.append(self.counts, self.unseen_total)


_COMPARED_AT_ONCE = 1 << 22  # value-edge comparisons held at once by `update_numeric`


def update_numeric(windows: Sequence[NumericWindow], rows: npt.NDArray[np.float64]) -> None:
    """`windows[j].update(rows[j])` for every j (`rows`: one row of values per window, NaN
    = missing), with a few array operations over all rows instead of a dozen per window.
    Each window ends exactly as `update` leaves it: sums are taken along contiguous rows
    (numpy's pairwise summation, as for the 1-d array `update` sums), a value goes in the
    bin after the edges at or below it (`searchsorted(side="right")`). A row holding NaN
    or infinities goes through `update` itself."""
    x = np.ascontiguousarray(rows, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(windows):
        raise ValueError("update_numeric takes one row of values per window")
    n = x.shape[1]
    if n == 0 or not windows:
        return
    clean = np.isfinite(x).all(axis=1)
    if not clean.all():
        for j in np.flatnonzero(~clean).tolist():
            windows[j].update(x[j])
        keep = np.flatnonzero(clean)
        windows = [windows[j] for j in keep.tolist()]
        x = x[keep]
        if not windows:
            return
    r = len(windows)
    lo = np.array([np.nan if w.lo is None else w.lo for w in windows])
    hi = np.array([np.nan if w.hi is None else w.hi for w in windows])
    below = (x < lo[:, None]).sum(axis=1)  # a NaN bound compares False: none
    above = (x > hi[:, None]).sum(axis=1)
    width = max(w.counts.size for w in windows)
    # at_or_above[:, k + 1]: values at or above edge k; +inf pads (rows with fewer edges)
    # have none, so each row's bins are differences of its own edges' counts
    edges = np.full((r, width - 1), np.inf)
    for j, w in enumerate(windows):
        edges[j, : w.edges.size] = w.edges
    at_or_above = np.zeros((r, width + 1), np.int64)
    at_or_above[:, 0] = n
    step = max(1, _COMPARED_AT_ONCE // max(1, r * (width - 1)))
    for a in range(0, n, step):
        part = x[:, None, a : a + step] >= edges[:, :, None]
        at_or_above[:, 1:width] += np.count_nonzero(part, axis=2)
    binned = at_or_above[:, :-1] - at_or_above[:, 1:]
    mean = x.sum(axis=1) / n
    dev = x - mean[:, None]
    dev *= dev
    m2 = dev.sum(axis=1)
    low, high = x.min(axis=1).tolist(), x.max(axis=1).tolist()
    for j, w in enumerate(windows):
        if w.lo is not None:
            w.out_of_range += int(below[j])
        if w.hi is not None:
            w.out_of_range += int(above[j])
        w.counts += binned[j, : w.counts.size]
        w._add_moments(n, float(mean[j]), float(m2[j]))
        w.min, w.max = min(w.min, low[j]), max(w.max, high[j])
        w.sketch.update(x[j])
